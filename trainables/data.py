"""Fraud data for the trainables: a synthetic generator, a file loader and the splits.

``load_dataset`` is called once per tuning job on the driver; the resulting
:class:`Dataset` goes to the Ray object store and every trial reads its arrays.
The conversions live in :mod:`trainables.preprocess` (they travel with the
deployed model), the leak checks in :mod:`trainables.leaks`, the splits and folds
in :mod:`trainables.folds`. A data-parallel job on sharded Parquet never comes here:
:func:`trainables.shard_plan.plan_shards` plans it in passes over the shards, and the
workers read their rows themselves (:mod:`trainables.shards`). Only numpy and pandas
are imported here: workers import this module, and scikit-learn / xgboost take seconds
to import in a fresh worker process.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from trainables.folds import split_indices
from trainables.leaks import LeakFlag, act_on_leaks, find_leaks
from trainables.preprocess import NA_VALUES, DataError, Preprocessor
from trainables.roles import amount_values, check_columns, group_codes, parse_labels, time_values
from trainables.synthetic import make_synthetic  # noqa: F401 - part of this module's API
from trainables.tables import FORMATS, read_table  # noqa: F401 - part of this module's API

logger = logging.getLogger(__name__)

__all__ = ["FORMATS", "LEAK_ACTIONS", "SOURCES", "SPLITS", "DataError", "Dataset", "Split", "load_dataset",
           "make_synthetic", "read_table"]

SOURCES = ("synthetic", "file")
SPLITS = ("stratified", "time")
LEAK_ACTIONS = ("drop", "warn", "error")


# eq=False: the generated __eq__/__hash__ would compare DataFrames elementwise and fail.
@dataclass(frozen=True, eq=False)
class Split:
    """One split of the data, rows aligned across fields.

    Attributes:
        X: Features only; string columns are pandas ``category``, numeric ``float32``.
        y: Labels as ``int8`` 0/1.
        amount: Values of the amount column (for cost objectives), or None.
        groups: Entity code per row (equal codes, same entity) with ``group_column``, or None.
        times: Ordering key per row (float64) with ``time_column``, or None.
        rows: Positions of these rows in the input frame (file order), or None.
    """

    X: pd.DataFrame
    y: np.ndarray
    amount: np.ndarray | None = None
    groups: np.ndarray | None = None
    times: np.ndarray | None = None
    rows: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/validation/test splits plus what the tracking side needs to know.

    Attributes:
        train: Rows the model is fitted on.
        val: Rows used for early stopping and the tuning objective.
        test: Held-out rows, reported once for the best model.
        feature_names: Column names of every split's ``X`` (sanitised for XGBoost).
        categorical: Names of the ``category`` features.
        fingerprint: Short stable hash of the prepared data; a cache key and MLflow tag.
        source: ``"synthetic"`` or the file path.
        preprocessor: Turns raw rows into ``X``: every split's ``X`` is its output.
        flags: Columns flagged as ids or leaks (dropped, or kept with ``on_leak="warn"``).
    """

    train: Split
    val: Split
    test: Split
    feature_names: list[str]
    categorical: list[str]
    fingerprint: str
    source: str
    preprocessor: Preprocessor | None = None
    flags: tuple[LeakFlag, ...] = ()

    def summary(self) -> dict[str, Any]:
        """Return flat, loggable counts: rows and positives per split, features, fraud rate."""
        out: dict[str, Any] = {}
        splits = {"train": self.train, "val": self.val, "test": self.test}
        for name, split in splits.items():
            out[f"{name}_rows"] = int(len(split.y))
            out[f"{name}_positives"] = int(split.y.sum())
        rows = sum(len(s.y) for s in splits.values())
        out["n_features"] = len(self.feature_names)
        out["n_categorical"] = len(self.categorical)
        out["fraud_rate"] = sum(int(s.y.sum()) for s in splits.values()) / rows
        return out

    def dev(self) -> Split:
        """Train then validation rows as one split: the rows ``folds.make_folds`` indices refer to."""
        parts = (self.train, self.val)

        def join(field: str) -> np.ndarray | None:
            values = [getattr(p, field) for p in parts]
            return None if any(v is None for v in values) else np.concatenate(values)

        X = pd.concat([p.X for p in parts], ignore_index=True)
        return Split(X=X, y=join("y"), amount=join("amount"), groups=join("groups"), times=join("times"),
                     rows=join("rows"))


def load_dataset(
    *,
    source: str = "synthetic",
    rows: int = 100_000,
    fraud_rate: float = 0.002,
    n_features: int = 30,
    seed: int = 0,
    path: str | None = None,
    format: str | None = None,  # noqa: A002 - mirrors the YAML key
    target: str = "Class",
    drop: Sequence[str] = (),
    time_column: str | None = None,
    amount_column: str | None = None,
    positive_label: str | int | bool | None = None,
    split: str = "stratified",
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    min_positives: int = 10,
    group_column: str | None = None,
    on_leak: str = "drop",
    na_values: Sequence[str] | None = None,
) -> Dataset:
    """Load synthetic or file data, clean it for XGBoost and split it.

    A :class:`~trainables.preprocess.Preprocessor` is fitted on the whole frame:
    missing tokens, date columns (to days since 1970), numbers to float32 (inf to
    NaN; XGBoost learns a default direction for NaN), strings to ``category`` with
    levels from the whole frame, so every split shares them. Every split's ``X`` is
    its output on that split's raw rows. ``time_column`` is never a feature:
    absolute time does not carry over to future data and lets the model memorise
    periods. Synthetic data leaves it unset so ``Time`` stays a feature, as in the
    Kaggle data. ``amount_column`` stays a feature (unless in ``drop``) and is also
    copied to ``Split.amount``; for synthetic data it defaults to ``"Amount"``.

    Args:
        source: ``"synthetic"`` or ``"file"``; a ``path`` implies ``"file"``.
        rows: Synthetic rows.
        fraud_rate: Synthetic fraud rate.
        n_features: Synthetic feature count.
        seed: Seed for the synthetic data and the stratified split.
        path: CSV or Parquet file.
        format: ``"csv"`` or ``"parquet"``; None picks by suffix.
        target: Label column.
        drop: Columns removed from the features (IDs, leaks).
        time_column: Column ordering the rows; required for ``split="time"``.
        amount_column: Transaction amount, for cost objectives.
        positive_label: The label value meaning fraud; others are legit. Needed
            when the two labels are not a recognised pair (0/1, true/false,
            yes/no, y/n, t/f, fraud/legit).
        split: ``"stratified"`` (random per class) or ``"time"`` (train earliest,
            then validation, then test).
        val_fraction: Share of rows for validation.
        test_fraction: Share of rows for test.
        min_positives: Fewest positives allowed in any split.
        group_column: Entity column (customer, card): all rows of one entity land in
            one split; never a feature.
        on_leak: What to do with columns :func:`trainables.leaks.find_leaks` flags:
            ``"drop"`` them from the features, ``"warn"`` and keep them, or ``"error"``.
        na_values: Text values meaning missing; None is
            :data:`trainables.preprocess.NA_VALUES` (pandas' list plus ``"?"``).

    Returns:
        The prepared dataset.

    Raises:
        DataError: On bad arguments or bad data; the message names the file or column.
    """
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r}; valid: {list(SOURCES)}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; valid: {list(SPLITS)}")
    if on_leak not in LEAK_ACTIONS:
        raise DataError(f"unknown on_leak {on_leak!r}; valid: {list(LEAK_ACTIONS)}")
    if not (0.0 < val_fraction and 0.0 < test_fraction and val_fraction + test_fraction < 1.0):
        raise DataError(
            f"val_fraction and test_fraction must be > 0 with a sum < 1, got {val_fraction} and {test_fraction}"
        )
    if split == "time" and time_column is None:
        raise DataError("split 'time' needs time_column")
    if path is not None or source == "file":
        if path is None:
            raise DataError("data source 'file' needs a path")
        frame, where = read_table(path, format), str(path)
    else:
        try:
            frame = make_synthetic(rows, fraud_rate, n_features, seed)
        except ValueError as exc:
            raise DataError(f"synthetic data: {exc}") from None
        where, amount_column = "synthetic", amount_column or "Amount"
    roles = {"time_column": time_column, "amount_column": amount_column, "group_column": group_column}
    return _prepare(
        frame,
        where=where,
        target=target,
        drop=[drop] if isinstance(drop, str) else list(drop),  # drop="id" is one column, not 'i' and 'd'
        roles=roles,
        positive_label=positive_label,
        split=split,
        fractions=(val_fraction, test_fraction),
        seed=seed,
        min_positives=min_positives,
        on_leak=on_leak,
        na_values=tuple(NA_VALUES if na_values is None else na_values),
    )


def _prepare(
    frame: pd.DataFrame,
    *,
    where: str,
    target: str,
    drop: list[str],
    roles: dict[str, str | None],
    positive_label: str | int | bool | None,
    split: str,
    fractions: tuple[float, float],
    seed: int,
    min_positives: int,
    on_leak: str,
    na_values: tuple[str, ...],
) -> Dataset:
    """Validate columns, fit the preprocessor, split, flag leaks and build the splits."""
    check_columns(list(frame.columns), where, target, drop, roles)
    time_column, amount_column, group_column = roles["time_column"], roles["amount_column"], roles["group_column"]
    y = parse_labels(frame[target], positive_label, f"target column {target!r} in {where}")
    times = time_values(frame[time_column], f"time_column {time_column!r} in {where}") if time_column else None
    amount = groups = None
    if amount_column is not None:
        amount = amount_values(frame[amount_column], na_values, f"amount_column {amount_column!r} in {where}")
    if group_column is not None:
        groups = group_codes(frame[group_column], na_values, f"group_column {group_column!r} in {where}")

    indices = split_indices(
        y, split=split, val_fraction=fractions[0], test_fraction=fractions[1], seed=seed, times=times, groups=groups
    )
    for name, idx in zip(("train", "val", "test"), indices):
        positives = int(y[idx].sum())
        if positives < min_positives:
            raise DataError(
                f"{name} split of {where} has {positives} positives, fewer than min_positives={min_positives}"
            )
        if positives == len(idx):
            raise DataError(f"{name} split of {where} has no negatives ({len(idx)} rows)")

    ignore = [target, *drop, *(c for c in (time_column, group_column) if c)]
    pre = Preprocessor.fit(frame, ignore=ignore, na_values=na_values, where=where)
    if not pre.columns:
        raise DataError(f"{where} has no feature columns left after removing target, drop, time and group columns")
    exempt = [amount_column] if amount_column else []  # declared money, not an id even if all distinct
    flags = find_leaks(frame, pre.transform(frame), pre, y, indices[0], exempt_id=exempt)
    pre = act_on_leaks(flags, pre, on_leak, where)

    splits = {}
    for name, idx in zip(("train", "val", "test"), indices):
        splits[name] = Split(
            X=pre.transform(frame.iloc[idx]),
            y=y[idx],
            amount=None if amount is None else amount[idx],
            groups=None if groups is None else groups[idx],
            times=None if times is None else times[idx],
            rows=np.asarray(idx, dtype=np.int64),
        )
    return Dataset(
        **splits,
        feature_names=pre.feature_names,
        categorical=pre.categorical,
        fingerprint=_fingerprint(splits),
        source=where,
        preprocessor=pre,
        flags=tuple(flags),
    )


def _fingerprint(splits: dict[str, Split]) -> str:
    """Hash column names, dtypes, shapes, all labels and a fixed sample of rows."""
    h = hashlib.sha1()
    first = splits["train"].X
    h.update(repr([(c, str(t)) for c, t in first.dtypes.items()]).encode())
    for name, part in splits.items():
        h.update(f"{name}:{part.X.shape}".encode())
        h.update(np.ascontiguousarray(part.y).tobytes())
        sample = np.unique(np.linspace(0, len(part.y) - 1, num=min(len(part.y), 256)).astype(np.int64))
        h.update(pd.util.hash_pandas_object(part.X.iloc[sample], index=False).to_numpy().tobytes())
        if part.amount is not None:
            h.update(np.ascontiguousarray(part.amount[sample]).tobytes())
    return h.hexdigest()[:12]
