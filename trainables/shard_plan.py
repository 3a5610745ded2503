"""The driver's passes over sharded Parquet input: checks, conversions, split rule, no table.

:func:`plan_shards` is what :func:`trainables.data.load_dataset` is for one file, for
the shards of a data-parallel job; :mod:`trainables.shards` says how the passes, the
sample and the split rule work and how workers read the rows.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from trainables import events
from trainables.data import Split
from trainables.leaks import act_on_leaks, entity_candidates, find_leaks
from trainables.preprocess import DataError, Preprocessor, factorize_text
from trainables.roles import _label_token, amount_values, check_columns, parse_labels, time_values
from trainables.shards import HEAD_ROWS, SPLIT_NAMES, ShardPlan, StreamedDataset, _batches
from trainables.tables import check_shard_schemas, fs_paths, is_uri, reason, shard_files

__all__ = ["SAMPLE_ROWS", "plan_shards"]

#: Rows of the sample the column kinds, id / leak checks and entity warning use.
SAMPLE_ROWS = 50_000


def _files(path: str) -> tuple[list[str], str | None]:
    """The shard files of ``path`` and the folder for Hive partitions (None for a glob or a URI:
    their objects are listed, not walked as folders)."""
    from pathlib import Path

    files = shard_files(path)
    return files, (path if not is_uri(path) and Path(path).is_dir() else None)


@dataclass
class _FirstPass:
    rows: int = 0
    labels: dict[str, Any] = field(default_factory=dict)
    texts: dict[str, set[str]] = field(default_factory=dict)
    times: list[np.ndarray] = field(default_factory=list)
    sample: list[pd.DataFrame] = field(default_factory=list)


def _first_pass(files: list[str], root: str | None, where: str, target: str, time_column: str | None,
                na_values: tuple[str, ...], every: int) -> tuple[_FirstPass, list[str]]:
    seen = _FirstPass()
    columns: list[str] | None = None
    try:
        for batch in _batches(files, root):
            if columns is None:
                columns = list(batch.columns)
                if target not in columns:
                    raise DataError(f"target column {target!r} not in {where}; columns are {columns[:20]}")
            for value in pd.unique(batch[target]):
                seen.labels.setdefault(repr(value), value)
            for name in columns:
                col = batch[name]
                if name != target and not (pd.api.types.is_numeric_dtype(col) or
                                           pd.api.types.is_datetime64_any_dtype(col)):
                    seen.texts.setdefault(name, set()).update(factorize_text(col, na_values)[1].tolist())
            if time_column is not None and time_column in batch:
                seen.times.append(time_values(batch[time_column], f"time_column {time_column!r} in {where}"))
            positions = np.arange(seen.rows, seen.rows + len(batch))
            seen.sample.append(batch[positions % every == 0])
            seen.rows += len(batch)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow and OS errors both mean "unreadable"
        raise DataError(f"cannot read the Parquet shards of {where}: {reason(exc)}") from exc
    if not seen.rows or columns is None:
        raise DataError(f"the {len(files)} Parquet shards of {where} have no rows")
    return seen, columns


def plan_shards(*, path: str, target: str = "Class", drop: Sequence[str] = (), time_column: str | None = None,
                amount_column: str | None = None, positive_label: Any = None, split: str = "stratified",
                val_fraction: float = 0.2, test_fraction: float = 0.2, min_positives: int = 10,
                group_column: str | None = None, on_leak: str = "drop", na_values: Sequence[str] | None = None,
                seed: int = 0, **_unused: Any) -> StreamedDataset:
    """The job's data as passes over the shards: checks, conversions and split rule, no table.

    Takes :func:`trainables.data.load_dataset`'s arguments (the synthetic ones are
    ignored). Raises the same one-line :class:`DataError` s for bad labels, columns
    and splits.
    """
    from trainables.preprocess import NA_VALUES

    na = tuple(NA_VALUES if na_values is None else na_values)
    drop = [drop] if isinstance(drop, str) else list(drop)
    where = str(path)
    if split == "time" and group_column is not None:
        raise DataError("split 'time' with a group_column is not supported for sharded data-parallel input yet; "
                        "use split 'stratified' or one worker per trial")
    files, root = _files(where)
    check_shard_schemas(files, where)
    import pyarrow.dataset as ds

    fs, paths = fs_paths(files)
    total = ds.dataset(paths, format="parquet", filesystem=fs).count_rows()
    every = max(1, math.ceil(total / SAMPLE_ROWS))
    seen, columns = _first_pass(files, root, where, target, time_column, na, every)
    events.emit("data.shard_pass", path=where, rows=seen.rows, files=len(files))
    roles = {"time_column": time_column, "amount_column": amount_column, "group_column": group_column}
    check_columns(columns, where, target, drop, roles)
    uniques = pd.Series(list(seen.labels.values()), dtype=object)
    flags01 = parse_labels(uniques, positive_label, f"target column {target!r} in {where}")
    positive = tuple(sorted({_label_token(u) for u, f in zip(uniques, flags01) if f}))
    sample = pd.concat(seen.sample, ignore_index=True)
    ignore = [target, *drop, *(c for c in (time_column, group_column) if c)]
    pre = _with_full_levels(Preprocessor.fit(sample, ignore=ignore, na_values=na, where=where), seen.texts)
    if not pre.columns:
        raise DataError(f"{where} has no feature columns left after removing target, drop, time and group columns")
    cuts = None
    if split == "time":
        times = np.concatenate(seen.times)
        cuts = tuple(float(q) for q in np.quantile(times, [1 - val_fraction - test_fraction, 1 - test_fraction]))
    partitions = set(columns) - set(_file_columns(files[0]))
    plan = ShardPlan(files=tuple(files), filesystem_root=root,
                     key_columns=tuple(sorted(c for c in columns if c not in partitions)), target=target,
                     positive=positive, split="group" if (group_column and split != "time") else split,
                     seed=seed, fractions=(val_fraction, test_fraction), time_column=time_column, cuts=cuts,
                     group_column=group_column, amount_column=amount_column, preprocessor=pre, na_values=na,
                     partition_columns=tuple(sorted(partitions)))
    sample_y = plan.labels(sample)
    sample_split, _ = plan.assign(sample)
    exempt = [amount_column] if amount_column else []
    flags = find_leaks(sample, pre.transform(sample), pre, sample_y, np.flatnonzero(sample_split == 0),
                       exempt_id=exempt)
    plan = replace(plan, preprocessor=act_on_leaks(flags, pre, on_leak, where))
    entities = {} if group_column else entity_candidates(sample, exclude=[target, *drop, *(
        c for c in (time_column,) if c)], na_values=na)
    return _second_pass(plan, where, min_positives, tuple(flags), entities, every)


def _file_columns(file: str) -> list[str]:
    import pyarrow.parquet as pq

    fs, (on_fs,) = fs_paths([file])
    return [str(n) for n in pq.read_schema(on_fs, filesystem=fs).names]


def _with_full_levels(pre: Preprocessor, texts: dict[str, set[str]]) -> Preprocessor:
    """``pre`` with every category column's levels taken from the whole pass, not the sample."""
    columns = tuple(replace(c, levels=tuple(sorted(texts.get(c.name, set(c.levels)))))
                    if c.kind == "category" else c for c in pre.columns)
    return replace(pre, columns=columns)


def _second_pass(plan: ShardPlan, where: str, min_positives: int, flags: tuple[Any, ...],
                 entities: dict[str, str], every: int) -> StreamedDataset:
    ys: dict[int, list[np.ndarray]] = {0: [], 1: [], 2: []}
    heads: dict[int, list[pd.DataFrame]] = {0: [], 1: [], 2: []}
    test_amount: list[np.ndarray] = []
    test_rows: list[np.ndarray] = []
    digest, offset = 0, 0
    for batch in _batches(plan.files, plan.filesystem_root):
        y = plan.labels(batch)
        codes, hashes = plan.assign(batch)
        digest = (digest + int(hashes.sum(dtype=np.uint64))) % 2**64
        for code in (0, 1, 2):
            mask = codes == code
            ys[code].append(y[mask])
            if sum(len(h) for h in heads[code]) < HEAD_ROWS:
                heads[code].append(batch[mask].head(HEAD_ROWS))
        test = codes == 2
        test_rows.append(offset + np.flatnonzero(test))
        if plan.amount_column is not None:
            test_amount.append(amount_values(batch[plan.amount_column][test], plan.na_values,
                                             f"amount_column {plan.amount_column!r} in {where}"))
        offset += len(batch)
    splits = {}
    for code, name in enumerate(SPLIT_NAMES):
        y = np.concatenate(ys[code])
        positives = int(y.sum())
        if positives < min_positives:
            raise DataError(f"{name} split of {where} has {positives} positives, fewer than "
                            f"min_positives={min_positives}")
        if positives == len(y):
            raise DataError(f"{name} split of {where} has no negatives ({len(y)} rows)")
        head = pd.concat(heads[code], ignore_index=True).head(HEAD_ROWS)
        splits[name] = Split(X=plan.preprocessor.transform(head), y=y,
                             amount=np.concatenate(test_amount) if code == 2 and test_amount else None,
                             rows=np.concatenate(test_rows).astype(np.int64) if code == 2 else None)
    h = hashlib.sha1()
    h.update(repr(plan.preprocessor.to_dict()).encode())
    h.update(repr((plan.split, plan.seed, plan.fractions, plan.cuts, plan.positive)).encode())
    h.update(f"{offset}:{digest}".encode())
    for name in SPLIT_NAMES:
        h.update(f"{name}:{len(splits[name].y)}:{int(splits[name].y.sum())}".encode())
    pre = plan.preprocessor
    events.emit("data.shard_pass", path=where, rows=offset, files=len(plan.files), second=True)
    return StreamedDataset(**splits, feature_names=pre.feature_names, categorical=pre.categorical,
                           fingerprint=h.hexdigest()[:12], source=where, preprocessor=pre, flags=flags,
                           plan=plan, entities=entities, sample_every=every)
