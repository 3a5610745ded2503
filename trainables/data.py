"""Fraud data for the trainables: a synthetic generator, a file loader and the splits.

``load_dataset`` is called once per tuning job on the driver; the resulting
:class:`Dataset` goes to the Ray object store and every trial reads its arrays.
Only numpy and pandas are imported here: workers import this module, and
scikit-learn / xgboost take seconds to import in a fresh worker process.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainables.synthetic import make_synthetic  # noqa: F401 - part of this module's API

logger = logging.getLogger(__name__)

SOURCES = ("synthetic", "file")
SPLITS = ("stratified", "time")
FORMATS = ("csv", "parquet")

# XGBoost rejects feature names containing these characters.
_NAME_FIXES = str.maketrans({"[": "_", "]": "_", "<": "_"})
# Spellings accepted for a binary label without ``positive_label`` (lowercased, stripped).
_POLARITY = {
    **dict.fromkeys(("1", "true", "t", "yes", "y", "fraud", "fraudulent", "positive", "pos"), 1),
    **dict.fromkeys(("0", "false", "f", "no", "n", "legit", "legitimate", "genuine", "negative", "neg"), 0),
}
_BOOLEAN = {"1": 1, "true": 1, "0": 0, "false": 0}


class DataError(ValueError):
    """Bad data: message is one line naming the file/column and what is wrong."""


# eq=False: the generated __eq__/__hash__ would compare DataFrames elementwise and fail.
@dataclass(frozen=True, eq=False)
class Split:
    """One split of the data, rows aligned across fields.

    Attributes:
        X: Features only; string columns are pandas ``category``, numeric ``float32``.
        y: Labels as ``int8`` 0/1.
        amount: Values of the amount column (for cost objectives), or None.
    """

    X: pd.DataFrame
    y: np.ndarray
    amount: np.ndarray | None = None


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
    """

    train: Split
    val: Split
    test: Split
    feature_names: list[str]
    categorical: list[str]
    fingerprint: str
    source: str

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


def read_table(path: str | os.PathLike[str], fmt: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file.

    Args:
        path: The file.
        fmt: ``"csv"`` or ``"parquet"``; None picks by suffix (``.csv``, ``.csv.gz``,
            ``.parquet``, ``.pq``).

    Returns:
        The frame, with string column names.

    Raises:
        DataError: If the file is missing, unreadable, empty or of unknown format.
    """
    p = Path(path)
    if fmt is None:
        suffixes = [s.lower() for s in p.suffixes]
        fmt = "csv" if ".csv" in suffixes else "parquet" if {".parquet", ".pq"} & set(suffixes) else None
        if fmt is None:
            raise DataError(f"cannot tell the format of {p} from its suffix; pass format as one of {list(FORMATS)}")
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise DataError(f"unknown data format {fmt!r} for {p}; valid: {list(FORMATS)}")
    # A URI (s3://, gs://, file://...) goes to pandas unchanged: fsspec reads it, and
    # Path() would collapse its "//".
    uri = "://" in str(path)
    source: Any = str(path) if uri else p
    if not uri and not p.is_file():
        raise DataError(f"data file {p} {'is not a file' if p.exists() else 'does not exist'}")
    try:
        frame = pd.read_csv(source) if fmt == "csv" else pd.read_parquet(source)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {p} is empty") from None
    # Readers raise many types (pyarrow, parser, unicode, OS errors); all mean "unreadable".
    except Exception as exc:  # noqa: BLE001
        reason = " ".join(str(exc).split())[:200]
        raise DataError(f"cannot read data file {p} as {fmt}: {type(exc).__name__}: {reason}") from exc
    if frame.empty:
        raise DataError(f"data file {p} has no rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


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
) -> Dataset:
    """Load synthetic or file data, clean it for XGBoost and split it.

    Features keep NaNs (XGBoost learns a default direction); infinities become
    NaN with a warning; strings become ``category`` with categories from the
    whole frame, so every split shares them. ``time_column`` is never a
    feature: absolute time does not carry over to future data and lets the model
    memorise periods. Synthetic data leaves it unset so ``Time`` stays a feature,
    as in the Kaggle data. ``amount_column`` stays a feature (unless in ``drop``)
    and is also copied to ``Split.amount``; for synthetic data it defaults to
    ``"Amount"``.

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

    Returns:
        The prepared dataset.

    Raises:
        DataError: On bad arguments or bad data; the message names the file or column.
    """
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r}; valid: {list(SOURCES)}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; valid: {list(SPLITS)}")
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
    return _prepare(
        frame,
        where=where,
        target=target,
        drop=drop,
        time_column=time_column,
        amount_column=amount_column,
        positive_label=positive_label,
        split=split,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        min_positives=min_positives,
    )


def _prepare(
    frame: pd.DataFrame,
    *,
    where: str,
    target: str,
    drop: Sequence[str],
    time_column: str | None,
    amount_column: str | None,
    positive_label: str | int | bool | None,
    split: str,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    min_positives: int,
) -> Dataset:
    """Validate columns, build features and labels, split, and check the splits."""
    columns = list(frame.columns)
    drop = [drop] if isinstance(drop, str) else list(drop)  # drop="id" means one column, not 'i' and 'd'
    if target not in columns:
        raise DataError(f"target column {target!r} not found in {where}; available columns: {_preview(columns)}")
    unknown = [c for c in drop if c not in columns]
    if unknown:
        raise DataError(f"drop columns {unknown} not found in {where}; available columns: {_preview(columns)}")
    for role, name in (("time_column", time_column), ("amount_column", amount_column)):
        if name is not None and name not in columns:
            raise DataError(f"{role} {name!r} not found in {where}; available columns: {_preview(columns)}")
        if name is not None and name == target:
            raise DataError(f"{role} {name!r} in {where} is the target column")
    if target in drop:
        raise DataError(f"cannot drop the target column {target!r} of {where}")

    y = _parse_labels(frame[target], positive_label, f"target column {target!r} in {where}")
    times = _time_values(frame[time_column], f"time_column {time_column!r} in {where}") if time_column else None
    amount = None
    if amount_column is not None:
        if not pd.api.types.is_numeric_dtype(frame[amount_column]):
            raise DataError(f"amount_column {amount_column!r} in {where} is not numeric ({frame[amount_column].dtype})")
        amount = frame[amount_column].to_numpy(dtype=np.float64, na_value=np.nan)
    excluded = {target, *drop, *([time_column] if time_column else [])}
    X = _features(frame[[c for c in columns if c not in excluded]], where)

    train_idx, val_idx, test_idx = _split_indices(y, times, split, val_fraction, test_fraction, seed)
    splits = {}
    for name, idx in (("train", train_idx), ("val", val_idx), ("test", test_idx)):
        part = Split(
            X=X.iloc[idx].reset_index(drop=True), y=y[idx], amount=None if amount is None else amount[idx]
        )
        positives = int(part.y.sum())
        if positives < min_positives:
            raise DataError(
                f"{name} split of {where} has {positives} positives, fewer than min_positives={min_positives}"
            )
        if positives == len(part.y):
            raise DataError(f"{name} split of {where} has no negatives ({len(part.y)} rows)")
        splits[name] = part
    _warn_on_leaks(splits["train"], where)
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    return Dataset(
        **splits,
        feature_names=list(X.columns),
        categorical=categorical,
        fingerprint=_fingerprint(splits),
        source=where,
    )


def _preview(items: Sequence[Any], limit: int = 20) -> str:
    """Render a list for a one-line message, cut after ``limit`` items."""
    shown = ", ".join(repr(i) for i in list(items)[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}] ({len(items)} total)"


def _label_token(value: Any) -> str | None:
    """Normalise one label value (``1``, ``1.0``, ``" True "``, ``True``) to a token; None if missing."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip().lower()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return _label_token(number)  # "1.0" and "1" are the same label; "nan" is missing


def _parse_labels(labels: pd.Series, positive_label: Any, what: str) -> np.ndarray:
    """Map a label column to int8 0/1, or raise DataError naming ``what``."""
    # Normalise the distinct values only: a million rows usually hold two.
    codes, uniques = pd.factorize(labels, use_na_sentinel=True)
    if len(uniques) > 50:
        raise DataError(f"{what} has more than two classes: {_preview(uniques, 5)} distinct values")
    tokens = [_label_token(u) for u in uniques]
    missing = np.append(np.array([t is None for t in tokens], dtype=bool), True)[codes]  # code -1 is NaN
    if missing.any():
        raise DataError(f"{what} has {int(missing.sum())} rows with missing, NaN or infinite labels")
    classes = sorted(set(tokens), key=str)
    if len(classes) == 1:
        raise DataError(f"{what} is constant (every row is {classes[0]!r}); need two classes")
    if len(classes) > 2:
        raise DataError(f"{what} has more than two classes: {classes}")
    if positive_label is not None:
        positive = _label_token(positive_label)
        if positive not in classes:
            # positive_label=1 on a true/false column (or True on 0/1): the same boolean, spelt differently.
            same = [c for c in classes if positive in _BOOLEAN and _BOOLEAN.get(c) == _BOOLEAN[positive]]
            if len(same) != 1:
                raise DataError(f"positive_label {positive_label!r} not found in {what}; labels are {classes}")
            positive = same[0]
    else:
        polarity = sorted(_POLARITY.get(c, -1) for c in classes)
        if polarity != [0, 1]:
            raise DataError(f"{what} has unrecognised labels {classes}; pass positive_label to say which is fraud")
        positive = next(c for c in classes if _POLARITY[c] == 1)
    is_positive = np.append(np.array([t == positive for t in tokens], dtype=bool), False)
    return is_positive[codes].astype(np.int8)


def _time_values(column: pd.Series, what: str) -> np.ndarray:
    """Return a float64 ordering key for a numeric or datetime column."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        try:
            stamps = pd.to_datetime(column) if not pd.api.types.is_datetime64_any_dtype(column) else column
        except (ValueError, TypeError) as exc:
            raise DataError(f"{what} is neither numeric nor parseable as dates ({type(exc).__name__})") from None
        if stamps.isna().any():
            raise DataError(f"{what} has {int(stamps.isna().sum())} rows with missing or infinite times")
        values = stamps.astype("int64").to_numpy(dtype=np.float64)
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise DataError(f"{what} has {bad} rows with missing or infinite times")
    return values


def _features(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Convert feature columns: numbers to float32 (inf to NaN), strings to category."""
    if frame.shape[1] == 0:
        raise DataError(f"{where} has no feature columns left after removing target, drop and time columns")
    out: dict[str, Any] = {}
    for name in frame.columns:
        col = frame[name]
        clean = name.translate(_NAME_FIXES)
        if clean in out:
            raise DataError(f"column {name!r} in {where} clashes with another column once '[', ']', '<' become '_'")
        if pd.api.types.is_datetime64_any_dtype(col) or pd.api.types.is_timedelta64_dtype(col):
            raise DataError(f"column {name!r} in {where} holds dates; drop it or pass it as time_column")
        if isinstance(col.dtype, pd.CategoricalDtype):
            out[clean] = col
        elif pd.api.types.is_numeric_dtype(col):
            values = col.to_numpy(dtype=np.float32, na_value=np.nan)
            inf = np.isinf(values)
            if inf.any():
                # XGBoost refuses inf unless it is the missing marker; NaN keeps the row usable.
                logger.warning("column %r in %s: %d infinite values treated as missing", name, where, int(inf.sum()))
                values = np.where(inf, np.float32(np.nan), values)
            out[clean] = values
        elif pd.api.types.is_string_dtype(col) and not pd.api.types.is_object_dtype(col):
            out[clean] = col.astype("category")
        else:
            # Mixed objects (1, "a", True): one string spelling each, so categories sort and hash.
            out[clean] = col.map(str, na_action="ignore").astype("category")
        if isinstance(out[clean].dtype, pd.CategoricalDtype) and len(col) >= 100 and col.nunique() == len(col):
            # One level per row generalises to nothing and bloats every tree: an ID left in.
            logger.warning("column %r in %s has a distinct value in every row; an ID? consider drop", name, where)
    renamed = [n for n in frame.columns if n != n.translate(_NAME_FIXES)]
    if renamed:
        logger.info("%s: replaced '[', ']', '<' with '_' in column names %s (XGBoost forbids them)", where, renamed)
    return pd.DataFrame(out)


def _split_indices(
    y: np.ndarray, times: np.ndarray | None, split: str, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return train, validation and test row indices."""
    if split == "time":
        assert times is not None  # load_dataset requires time_column for this split
        order = np.argsort(times, kind="stable")
        n_test, n_val = round(len(y) * test_fraction), round(len(y) * val_fraction)
        n_train = len(y) - n_test - n_val
        return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]
    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n_test, n_val = round(idx.size * test_fraction), round(idx.size * val_fraction)
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    # Sorted, so each split keeps the file's row order (often time order).
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    return train, val, test


def _warn_on_leaks(train: Split, where: str) -> None:
    """Warn when one numeric feature alone separates the classes on the training split."""
    if int(train.y.sum()) < 5:  # with a handful of positives, separation happens by chance
        return
    numeric = train.X.select_dtypes(include="number")
    if numeric.shape[1] == 0:
        return
    grouped = numeric.groupby(train.y)
    low, high = grouped.min(), grouped.max()
    separates = (high.loc[0] < low.loc[1]) | (high.loc[1] < low.loc[0])
    leaks = list(separates[separates].index)
    if leaks:
        logger.warning(
            "%s: feature(s) %s alone separate fraud from legit on the training split; "
            "likely a leak (row counter, post-event field) - consider drop",
            where,
            leaks,
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
