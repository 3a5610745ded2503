"""The training conversions, fitted once on the raw frame and replayed on raw rows.

A :class:`Preprocessor` is fitted on the whole input frame as read (before the
split) and records every decision: which strings mean "missing", which text
columns hold dates, which columns are numbers and which categories, the
category levels, the XGBoost-safe feature names. ``transform`` replays them, so
the rows of a file scored by a deployed model get exactly the features the model
was trained on. This module travels with that model: it imports only the
standard library, numpy and pandas, and holds :class:`DataError` for that reason.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

# pandas' default ``na_values`` for read_csv, plus "?". A lone "?" is never a real
# category: exports write it for "unknown" (insurance_claims.csv does, in three
# columns). Applying the list ourselves, to every text column, makes a Parquet file
# and raw rows sent to a model behave like the CSV the model was trained on.
NA_VALUES: tuple[str, ...] = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null", "?",
)
KINDS = ("numeric", "category", "date")
# A text column is a date when this share of its non-missing rows parses with one
# format: a few typos stay missing instead of turning the column into categories.
DATE_SHARE = 0.95
_DATE_SAMPLES = 20  # distinct values a format is guessed from
_EPOCH = pd.Timestamp("1970-01-01")
_DAY = pd.Timedelta(days=1)
# XGBoost rejects feature names containing these characters.
_NAME_FIXES = str.maketrans({"[": "_", "]": "_", "<": "_"})
_VERSION = 1


class DataError(ValueError):
    """Bad data: message is one line naming the file/column and what is wrong."""


@dataclass(frozen=True)
class Column:
    """How one raw column becomes one feature.

    Attributes:
        name: The raw column name.
        feature: The feature name (``[``, ``]``, ``<`` replaced by ``_``).
        kind: ``"numeric"`` (float32), ``"category"`` or ``"date"`` (float32 days
            since 1970-01-01, fractions for the time of day; float32 resolves about
            3 minutes at today's dates, which is all XGBoost sees of any float).
        levels: The category levels, sorted; other values become missing.
        date_format: The strptime format of a text date; None when the fit frame
            held datetimes.
        integer: The raw values were whole numbers (the id checks use it).
    """

    name: str
    feature: str
    kind: str
    levels: tuple[str, ...] = ()
    date_format: str | None = None
    integer: bool = False


@dataclass(frozen=True)
class Preprocessor:
    """Raw rows to the training feature frame.

    Attributes:
        columns: One entry per feature, in feature order.
        ignored: Raw columns known to be no feature (target, dropped, flagged as
            leaks); rows may carry them, and any other extra column, freely.
        na_values: Text values that mean missing (compared after stripping spaces).
    """

    columns: tuple[Column, ...]
    ignored: tuple[str, ...] = ()
    na_values: tuple[str, ...] = NA_VALUES
    _na: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_na", frozenset(v.strip() for v in self.na_values))

    @classmethod
    def fit(cls, frame: pd.DataFrame, *, ignore: Iterable[str] = (), na_values: Sequence[str] = NA_VALUES,
            where: str = "data") -> Preprocessor:
        """Decide every column's conversion from the raw frame.

        Args:
            frame: The raw frame as read; every column not in ``ignore`` is a feature.
            ignore: Columns that are no feature (target, drop, time, group).
            na_values: Text values meaning missing.
            where: The data's name for messages.

        Raises:
            DataError: When two names clash once sanitised, or a column holds time spans.
        """
        skip = set(ignore)
        na = frozenset(v.strip() for v in na_values)
        columns: list[Column] = []
        seen: set[str] = set()
        for name in frame.columns:
            if name in skip:
                continue
            feature = str(name).translate(_NAME_FIXES)
            if feature in seen:
                raise DataError(f"column {name!r} in {where} clashes with another column once '[', ']', '<' become '_'")
            seen.add(feature)
            columns.append(_fit_column(frame[name], str(name), feature, na, where))
            infinite = _count_inf(frame[name])
            if infinite:
                logger.warning("column %r in %s: %d infinite values treated as missing", name, where, infinite)
        renamed = [c.name for c in columns if c.name != c.feature]
        if renamed:
            logger.info("%s: replaced '[', ']', '<' with '_' in column names %s (XGBoost forbids them)", where, renamed)
        dates = [c.name for c in columns if c.kind == "date"]
        if dates:
            logger.info("%s: date columns %s become days since 1970-01-01", where, dates)
        ignored = tuple(str(c) for c in frame.columns if c in skip)
        return cls(columns=tuple(columns), ignored=ignored, na_values=tuple(na_values))

    @property
    def required_columns(self) -> list[str]:
        """Raw columns every row must have."""
        return [c.name for c in self.columns]

    @property
    def feature_names(self) -> list[str]:
        """Columns of the transformed frame, in order."""
        return [c.feature for c in self.columns]

    @property
    def categorical(self) -> list[str]:
        """Feature names of the ``category`` features."""
        return [c.feature for c in self.columns if c.kind == "category"]

    def without(self, names: Iterable[str]) -> Preprocessor:
        """A copy with the raw columns ``names`` moved from the features to ``ignored``."""
        gone = set(names)
        kept = tuple(c for c in self.columns if c.name not in gone)
        moved = tuple(c.name for c in self.columns if c.name in gone)
        return replace(self, columns=kept, ignored=self.ignored + moved)

    def transform(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Convert raw rows to the training feature frame (same columns, order, dtypes, levels).

        Unseen category levels and missing tokens become missing; numbers arrive as
        any numeric dtype or as text. The result has a fresh ``RangeIndex``.

        Raises:
            DataError: When a required column is absent.
        """
        absent = [c.name for c in self.columns if c.name not in raw.columns]
        if absent:
            raise DataError(f"rows lack required column(s) {absent}; the model needs {len(self.columns)} columns")
        out = {c.feature: _convert(raw[c.name], c, self._na) for c in self.columns}
        return pd.DataFrame(out, index=pd.RangeIndex(len(raw)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description that :meth:`from_dict` restores."""
        columns = [{**asdict(c), "levels": list(c.levels)} for c in self.columns]
        return {"version": _VERSION, "na_values": list(self.na_values), "ignored": list(self.ignored),
                "columns": columns}

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Preprocessor:
        """Rebuild a preprocessor from :meth:`to_dict` output.

        Raises:
            DataError: On another version, a missing key or an unknown column kind.
        """
        if spec.get("version") != _VERSION:
            raise DataError(f"preprocessor version {spec.get('version')!r} is not supported (expected {_VERSION})")
        try:
            columns = tuple(Column(**{**c, "levels": tuple(c["levels"])}) for c in spec["columns"])
            pre = cls(columns=columns, ignored=tuple(spec["ignored"]), na_values=tuple(spec["na_values"]))
        except (KeyError, TypeError) as exc:
            raise DataError(f"malformed preprocessor description ({type(exc).__name__}: {exc})") from None
        bad = [c.name for c in pre.columns if c.kind not in KINDS]
        if bad:
            raise DataError(f"preprocessor columns {bad} have an unknown kind; valid: {list(KINDS)}")
        return pre


def factorize_text(column: pd.Series, na_values: Iterable[str] = NA_VALUES) -> tuple[np.ndarray, np.ndarray]:
    """Codes and distinct texts of a column, missing values and ``na_values`` as code -1.

    Works on the distinct values only: a million rows usually hold a few thousand.
    """
    na = na_values if isinstance(na_values, frozenset) else frozenset(v.strip() for v in na_values)
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    texts = np.array([str(u) for u in uniques], dtype=object)
    is_na = np.array([t.strip() in na for t in texts], dtype=bool)
    if is_na.any():
        keep = ~is_na
        remap = np.where(keep, np.cumsum(keep) - 1, -1)
        codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
        texts = texts[keep]
    if len(set(texts)) < len(texts):  # mixed objects: 1 and "1" are one text
        texts, merge = np.unique(texts, return_inverse=True)
        codes = np.where(codes >= 0, merge.reshape(-1)[np.maximum(codes, 0)], -1)
    return np.asarray(codes, dtype=np.int64), texts


def date_format(texts: np.ndarray, counts: np.ndarray | None = None) -> str | None:
    """The format at least :data:`DATE_SHARE` of the rows parse with, or None.

    Args:
        texts: Distinct non-missing values of a text column.
        counts: Rows per value (None: one each).
    """
    if len(texts) == 0:
        return None
    from pandas.tseries.api import guess_datetime_format  # public since pandas 2.1

    counts = np.ones(len(texts)) if counts is None else np.asarray(counts, dtype=np.float64)
    formats: list[str] = []
    for text in texts[:_DATE_SAMPLES]:
        for dayfirst in (False, True):
            with warnings.catch_warnings():  # "dayfirst=True but %m/%d/%Y": we try both on purpose
                warnings.simplefilter("ignore", UserWarning)
                fmt = guess_datetime_format(str(text).strip(), dayfirst=dayfirst)
            # A date needs a year: "Jan" or "12:30" alone is a category or a time of day.
            if fmt and ("%Y" in fmt or "%y" in fmt) and fmt not in formats:
                formats.append(fmt)
    best, best_share = None, 0.0
    for fmt in formats:
        parsed = _parse_dates(texts, fmt)
        share = float(counts[~np.isnan(parsed)].sum() / counts.sum())
        if share > best_share:
            best, best_share = fmt, share
    return best if best_share >= DATE_SHARE else None


def _fit_column(col: pd.Series, name: str, feature: str, na: frozenset[str], where: str) -> Column:
    """Choose the conversion of one raw column."""
    if pd.api.types.is_timedelta64_dtype(col):
        raise DataError(f"column {name!r} in {where} holds time spans; drop it or convert it to numbers")
    if pd.api.types.is_datetime64_any_dtype(col):
        return Column(name, feature, "date")
    if pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype):
        integer = pd.api.types.is_integer_dtype(col) and not pd.api.types.is_bool_dtype(col)
        return Column(name, feature, "numeric", integer=integer)
    # Text (str, object, category): dates first, so they never look like many categories.
    codes, texts = factorize_text(col, na)
    if len(texts) == 0:
        return Column(name, feature, "numeric")  # nothing but missing: NaN, not an empty category
    counts = np.bincount(codes[codes >= 0], minlength=len(texts))
    fmt = date_format(texts, counts)
    if fmt is not None:
        return Column(name, feature, "date", date_format=fmt)
    numbers = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    if col.nunique() > len(texts) and not np.isnan(numbers).any():
        # Numbers that are text only because a missing token ("?") kept pandas from
        # parsing them. Number-like text without a token (zip codes, MCCs stored as
        # strings) is a deliberate code and stays a category.
        whole = bool(np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)))
        return Column(name, feature, "numeric", integer=whole)
    return Column(name, feature, "category", levels=tuple(sorted(texts.tolist())))


def _count_inf(col: pd.Series) -> int:
    """Infinite values of a float column (0 for any other)."""
    if not pd.api.types.is_float_dtype(col):
        return 0
    return int(np.isinf(col.to_numpy(dtype=np.float64, na_value=np.nan)).sum())


def _convert(col: pd.Series, spec: Column, na: frozenset[str]) -> Any:
    """One raw column to its feature values."""
    if spec.kind == "category":
        codes, texts = factorize_text(col, na)
        position = {level: i for i, level in enumerate(spec.levels)}
        remap = np.array([position.get(t, -1) for t in texts] + [-1], dtype=np.int64)  # unseen -> missing
        dtype = pd.CategoricalDtype(list(spec.levels), ordered=False)
        return pd.Categorical.from_codes(remap[codes], dtype=dtype)
    if spec.kind == "date":
        if pd.api.types.is_datetime64_any_dtype(col):
            values = _days(col).to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            codes, texts = factorize_text(col, na)
            values = np.append(_parse_dates(texts, spec.date_format), np.nan)[codes]
    elif pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype):
        values = col.to_numpy(dtype=np.float32, na_value=np.nan)
    else:
        codes, texts = factorize_text(col, na)
        numbers = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
        values = np.append(numbers, np.nan)[codes]
    values = np.asarray(values, dtype=np.float32)
    # XGBoost refuses inf unless it is the missing marker; NaN keeps the row usable.
    return np.where(np.isinf(values), np.float32(np.nan), values)


def _parse_dates(texts: np.ndarray, fmt: str | None) -> np.ndarray:
    """Days since 1970-01-01 (float64, NaN when unparseable) of distinct texts."""
    if len(texts) == 0:
        return np.empty(0, dtype=np.float64)
    series = pd.Series([str(t).strip() for t in texts], dtype=object)
    try:
        # No format: the fit frame held datetimes, so text rows are serialised ones (ISO 8601).
        stamps = pd.to_datetime(series, format=fmt or "ISO8601", errors="coerce")
    except (ValueError, TypeError):  # mixed time zones, a format pandas rejects
        return np.full(len(texts), np.nan)
    return _days(stamps).to_numpy(dtype=np.float64, na_value=np.nan)


def _days(stamps: pd.Series) -> pd.Series:
    """Days since 1970-01-01 of a datetime series; aware times are taken in UTC."""
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return (stamps - _EPOCH) / _DAY
