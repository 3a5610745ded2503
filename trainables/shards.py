"""Sharded Parquet input that the driver never holds whole: passes, a split rule, Ray Data.

For a data-parallel job (``resources.workers``) whose ``data.path`` is a folder or a
glob of Parquet shards (or an ``s3://`` prefix), :func:`trainables.shard_plan.plan_shards`
replaces the driver's ``read_table`` + split of :func:`trainables.data.load_dataset`:

* **Two streaming passes** over the shards (pyarrow, one record batch of
  :data:`BATCH_ROWS` at a time, in sorted file order) on the driver. The first
  collects the schema, the distinct labels, the distinct texts of every text column
  (so category levels, and their codes, agree across shards whatever levels each
  shard holds), the ``time_column`` values (one float64 per row, for the time
  cut-offs) and a deterministic sample: every k-th row, at most
  :data:`trainables.shard_plan.SAMPLE_ROWS`.
  The second applies the split rule to every row and keeps per split the labels
  (one byte a row), the test amounts and the test rows' file positions, and the
  first :data:`HEAD_ROWS` rows; the digest is an order-free sum of every row's hash.
* **The column kinds, the id / leak checks and the entity warning run on the sample**
  (a full pass would need every value of every column): a check that needs the
  whole column (all-distinct ids, counters) sees every k-th row in file order.
  Category levels come from the full pass, not the sample.
* **The split is a rule, not a list of rows**: a worker applies it to any batch of
  rows without the rest of the table. Stratified: a seeded 64-bit hash of the row's
  content (every file column, label included) gives each row a uniform number u;
  ``u < test_fraction`` is test, then validation, then train. Each class is split in
  the job's fractions in expectation (not exactly: positives are counted and checked
  against ``min_positives`` as before), and equal rows (duplicates) always land in one
  split. ``group_column``: the hash of the group's value instead, so a group never
  straddles splits. ``split: time``: the time cut-offs are the quantiles of the first
  pass's times; rows at or before the first go to train, then validation, then test.
* **Workers** read the shards with ``ray.data.read_parquet`` and
  :class:`SplitBatches` keeps one split's rows, converted by the driver's fitted
  :class:`~trainables.preprocess.Preprocessor` (the deployed model's own), with
  category codes as integers so no block's Arrow dictionary can re-code them. Test
  rows are dropped there: they never reach a trial.

The resulting :class:`StreamedDataset` is a :class:`~trainables.data.Dataset` whose
splits hold every row's labels (and the test split its amounts and positions) but
only the first :data:`HEAD_ROWS` rows' features: code that needs the features of a
whole split reads them with :func:`iter_split` / :func:`split_frame`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trainables import events
from trainables.data import Dataset
from trainables.preprocess import DataError, Preprocessor, factorize_text
from trainables.roles import _label_token, amount_values, time_values
from trainables.tables import fs_paths

logger = logging.getLogger(__name__)

__all__ = ["BATCH_ROWS", "HEAD_ROWS", "ShardPlan", "SplitBatches", "StreamedDataset", "decode", "iter_split",
           "predict_split", "ray_split", "row_hashes", "split_frame"]

#: Rows per record batch of the driver's passes (memory is a few batches).
BATCH_ROWS = 65_536
#: Rows of each split whose features the driver keeps (model signature, examples).
HEAD_ROWS = 100
SPLIT_NAMES = ("train", "val", "test")
#: Extra columns of the workers' batches: label, amount.
Y_COLUMN, AMOUNT_COLUMN, SPLIT_COLUMN = "__tuning_y", "__tuning_amount", "__tuning_split"


# ------------------------------------------------------------------ the rule
@dataclass(frozen=True)
class ShardPlan:
    """What a worker needs to read its split's rows: files, rule, conversions.

    Attributes:
        files: The shard files (sorted), or URIs.
        filesystem_root: The folder the files sit in, for Hive partition columns; None for a glob.
        key_columns: File columns the row hash covers (sorted; partition columns excluded).
        target: Label column.
        positive: Label tokens meaning fraud (``trainables.roles`` tokens).
        split: ``"stratified"``, ``"group"`` or ``"time"``.
        seed: Hash seed.
        fractions: Validation and test fractions.
        time_column: Ordering column (``split="time"``).
        cuts: Time cut-offs: train up to the first, validation up to the second.
        group_column: Entity column; its value's hash places the row.
        amount_column: Amount column, copied to each batch's amount.
        preprocessor: The job's fitted conversions.
        na_values: Missing tokens.
        partition_columns: Columns from ``key=value`` folders (sorted).
    """

    files: tuple[str, ...]
    filesystem_root: str | None
    key_columns: tuple[str, ...]
    target: str
    positive: tuple[str, ...]
    split: str
    seed: int
    fractions: tuple[float, float]
    time_column: str | None
    cuts: tuple[float, float] | None
    group_column: str | None
    amount_column: str | None
    preprocessor: Preprocessor
    na_values: tuple[str, ...]
    partition_columns: tuple[str, ...] = ()

    def labels(self, batch: pd.DataFrame) -> np.ndarray:
        """0/1 labels of a batch (DataError on a missing or unknown label)."""
        codes, uniques = pd.factorize(batch[self.target], use_na_sentinel=True)
        tokens = [_label_token(u) for u in uniques]
        if (codes < 0).any() or any(t is None for t in tokens):
            raise DataError(f"target column {self.target!r} has rows with missing, NaN or infinite labels")
        positive = np.append(np.array([t in self.positive for t in tokens], dtype=bool), False)
        return positive[codes].astype(np.int8)

    def assign(self, batch: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Split code per row (0 train, 1 validation, 2 test) and each row's content hash."""
        hashes = row_hashes(batch, self.key_columns, self.seed)
        val, test = self.fractions
        if self.split == "time":
            t = time_values(batch[self.time_column], f"time_column {self.time_column!r}")
            first, second = self.cuts
            return np.where(t <= first, 0, np.where(t <= second, 1, 2)).astype(np.int8), hashes
        key = hashes
        if self.group_column is not None:
            key = _group_hashes(batch[self.group_column], hashes, self.seed, self.na_values)
        u = (key >> np.uint64(11)).astype(np.float64) * 2.0**-53
        return np.where(u < test, 2, np.where(u < test + val, 1, 0)).astype(np.int8), hashes


def row_hashes(batch: pd.DataFrame, columns: Sequence[str], seed: int) -> np.ndarray:
    """A seeded 64-bit hash of each row's content, the same however the batch was read.

    Numbers are hashed as float64 and everything else as its text, so pyarrow's and
    Ray Data's pandas conversions (``str`` vs ``object``, date units) agree.
    """
    canon = pd.DataFrame({c: _canonical(batch[c]) for c in columns}, index=pd.RangeIndex(len(batch)))
    return pd.util.hash_pandas_object(canon, index=False, hash_key=_hash_key(seed)).to_numpy(dtype=np.uint64)


def _canonical(col: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) \
            and not isinstance(col.dtype, pd.CategoricalDtype):
        return pd.Series(col.to_numpy(dtype=np.float64, na_value=np.nan))
    text = col.astype(str).to_numpy(dtype=object)
    text[pd.isna(col).to_numpy()] = "\x00"  # missing: one token, whatever pandas calls it
    return pd.Series(text)


def _group_hashes(col: pd.Series, rows: np.ndarray, seed: int, na_values: Sequence[str]) -> np.ndarray:
    """The hash of each row's group value; a row without one is a group of its own (its row hash)."""
    codes, texts = factorize_text(col, na_values)
    per_text = pd.util.hash_array(texts.astype(object), hash_key=_hash_key(seed + 1)) if len(texts) else \
        np.zeros(0, dtype=np.uint64)
    return np.where(codes >= 0, np.append(per_text, np.uint64(0))[codes], rows).astype(np.uint64)


def _hash_key(seed: int) -> str:
    return hashlib.md5(f"tuning-split-{seed}".encode()).hexdigest()[:16]


# ------------------------------------------------------------------ driver passes
def _batches(files: Sequence[str], root: str | None, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """The shards' rows as pandas batches, in sorted file order (pyarrow, bounded memory)."""
    import pyarrow.dataset as ds

    fs, paths = fs_paths(files)
    dataset = ds.dataset(paths, format="parquet", partitioning="hive", partition_base_dir=root, filesystem=fs)
    # use_threads=False: batches arrive in file order, so positions and the sample are stable.
    for batch in dataset.to_batches(columns=columns, batch_size=BATCH_ROWS, use_threads=False):
        if batch.num_rows:
            frame = batch.to_pandas()
            frame.columns = [str(c) for c in frame.columns]
            yield frame


@dataclass(frozen=True, eq=False)
class StreamedDataset(Dataset):
    """A :class:`Dataset` planned over shards: labels of every row, features of a few.

    Attributes:
        plan: How workers (and the driver's scoring pass) read a split's rows.
        entities: Entity-like columns found on the sample (``preflight.warn_entities``).
        sample_every: The sample's stride: every k-th row was checked for ids and leaks.
    """

    plan: ShardPlan | None = None
    entities: dict[str, str] = field(default_factory=dict)
    sample_every: int = 1
    streamed: bool = True


# ------------------------------------------------------------------ reading one split
class SplitBatches:
    """``map_batches`` function: a batch of raw rows to one split's converted rows.

    Output: the features (category features as int32 codes into the preprocessor's
    levels, -1 missing), the label, the amount (NaN without an amount column) and the
    split code (0 train, 1 validation, 2 test).
    """

    def __init__(self, plan: ShardPlan, codes: Sequence[int]) -> None:
        self.plan, self.codes = plan, tuple(codes)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        batch = batch.reset_index(drop=True)
        # A shard outside the key=value folders: Ray Data gives its rows no partition
        # column, where the driver's pyarrow pass gave them a missing value.
        for name in getattr(self.plan, "partition_columns", ()):  # getattr: plans pickled before
            if name not in batch.columns:
                batch[name] = None
        split, _ = self.plan.assign(batch)
        keep = np.isin(split, self.codes)
        rows = batch[keep].reset_index(drop=True)
        X = self.plan.preprocessor.transform(rows)
        for name in self.plan.preprocessor.categorical:
            X[name] = X[name].cat.codes.astype(np.int32)
        X[Y_COLUMN] = self.plan.labels(rows) if len(rows) else np.zeros(0, dtype=np.int8)
        amount = self.plan.amount_column
        X[AMOUNT_COLUMN] = (amount_values(rows[amount], self.plan.na_values, f"amount_column {amount!r}")
                            if amount and len(rows) else np.full(len(rows), np.nan))
        X[SPLIT_COLUMN] = split[keep]
        return X


def decode(frame: pd.DataFrame, pre: Preprocessor) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """:class:`SplitBatches` output back to (X with ``category`` columns, y, amount, split code)."""
    X = frame[pre.feature_names].reset_index(drop=True)
    for col in pre.columns:
        if col.kind == "category":
            X[col.feature] = pd.Categorical.from_codes(X[col.feature].to_numpy(dtype=np.int64),
                                                       dtype=pd.CategoricalDtype(list(col.levels)))
    return (X, frame[Y_COLUMN].to_numpy(dtype=np.int8), frame[AMOUNT_COLUMN].to_numpy(dtype=np.float64),
            frame[SPLIT_COLUMN].to_numpy(dtype=np.int8))


def ray_split(plan: ShardPlan, names: Sequence[str]) -> Any:
    """A Ray Data dataset of the rows of the splits ``names`` (never ``test`` for a trial);
    one dataset for several splits, so the shards are read once per Train run.

    Read and converted on whichever nodes run the read tasks; the driver only builds
    the (lazy) plan. The tasks ask for little CPU: a data-parallel trial's workers
    hold the CPUs, and the rows must still flow.
    """
    import ray.data

    codes = [SPLIT_NAMES.index(n) for n in names]
    files = list(plan.files)
    kwargs: dict[str, Any] = {}
    if plan.filesystem_root is not None:
        from ray.data.datasource.partitioning import Partitioning

        kwargs["partitioning"] = Partitioning("hive", base_dir=plan.filesystem_root)
    context = ray.data.DataContext.get_current()
    before = context.use_datasource_v2
    # Ray Data 2.60's V2 reader lists files in a 1-CPU task that no argument changes: on
    # a cluster whose CPUs the trial's workers hold it never runs. The V1 reader's tasks
    # take ``num_cpus`` (the dataset keeps a copy of the context it was made with).
    bars = context.enable_progress_bars
    context.use_datasource_v2, context.enable_progress_bars = False, False  # bars: one per trial, noise
    try:
        data = ray.data.read_parquet(files, num_cpus=0.05, file_extensions=None, **kwargs)
    finally:
        context.use_datasource_v2, context.enable_progress_bars = before, bars
    return data.map_batches(SplitBatches(plan, codes), batch_format="pandas", num_cpus=0.05)


def iter_split(data: StreamedDataset, name: str) -> Iterator[tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]]:
    """(X, y, amount) batches of one split, read on the driver batch by batch, in file order."""
    plan = data.plan
    convert = SplitBatches(plan, [SPLIT_NAMES.index(name)])
    for batch in _batches(plan.files, plan.filesystem_root):
        out = convert(batch)
        if len(out):
            yield decode(out, plan.preprocessor)


def head_rows(data: StreamedDataset, rows: int) -> pd.DataFrame:
    """The first ``rows`` raw rows of the shards (file order), as read: what ``Split.rows``
    positions below ``rows`` refer to. Reads only the batches that hold them."""
    plan, parts, held = data.plan, [], 0
    for batch in _batches(plan.files, plan.filesystem_root):
        parts.append(batch.iloc[: rows - held])
        held += len(parts[-1])
        if held >= rows:
            break
    events.emit("data.head_read", rows=held)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def split_frame(data: StreamedDataset, name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """One split's whole (X, y): for tests and small jobs only (it holds the split)."""
    parts = list(iter_split(data, name))
    return pd.concat([p[0] for p in parts], ignore_index=True), np.concatenate([p[1] for p in parts])


def predict_split(data: StreamedDataset, name: str, boosters: Sequence[Any]) -> list[np.ndarray]:
    """Each booster's scores of one split's rows (file order), read batch by batch."""
    import xgboost as xgb

    out: list[list[np.ndarray]] = [[] for _ in boosters]
    for X, *_ in iter_split(data, name):
        matrix = xgb.DMatrix(X, enable_categorical=True)
        for i, booster in enumerate(boosters):
            out[i].append(booster.predict(matrix))
    events.emit("data.split_scored", split=name)
    return [np.concatenate(o) if o else np.zeros(0) for o in out]
