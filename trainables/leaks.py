"""Columns that would let a model cheat or learn nothing, found before any trial.

``find_leaks`` flags row ids, row counters (plain, or restarting per class on a
label-sorted file), single columns that separate the classes on the training
split, and empty or constant columns. ``entity_candidates`` is a separate,
looser heuristic for the preflight: columns whose repeated values look like a
customer or card, which should become ``group_column`` so one entity never sits
on both sides of a split.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainables.preprocess import NA_VALUES, Column, DataError, Preprocessor, date_format, factorize_text

logger = logging.getLogger(__name__)

KINDS = ("constant", "counter", "class_counter", "id", "separates")

# Ids. Strings: a level seen in one row teaches nothing, so 90% distinct values is an
# id (or free text, like a street address). Integers carry order and magnitude, so
# only (almost) every value distinct marks one: policy_number (1000 of 1000) is
# flagged, insured_zip (995 of 1000) is kept - a zip is a place, nearby zips are
# nearby places, and XGBoost splits it by ranges, which is real (if weak) geography.
# Floats (amounts, premiums) are measurements and never ids.
STRING_ID_SHARE = 0.9
INTEGER_ID_SHARE = 0.999
ID_MIN_VALUES = 100  # fewer rows are all distinct by chance (ages of 30 people)
COUNTER_MIN_VALUES = 20  # strictly monotone over 20 rows is no accident
CLASS_COUNTER_MIN_VALUES = 5  # per class; both classes must run in order
SEPARATION_MIN_POSITIVES = 5  # with fewer, a column separates by chance
# A categorical separates only if its positive levels hold >= 5 positives each on
# average: singleton levels separating the classes is coincidence (or an id).
SEPARATION_ROWS_PER_LEVEL = 5

# Entity hints: a name word, or a high-cardinality text column with repeats.
ENTITY_WORDS = frozenset(
    {"account", "card", "customer", "user", "policy", "holder", "device", "email", "client", "member"}
)
ID_WORDS = frozenset({"id", "key", "uuid", "guid"})
NUMBER_WORDS = frozenset({"no", "nr", "num", "number"})  # an id only next to an entity word: card_no
ENTITY_MIN_DISTINCT = 10  # fewer distinct values are categories (policy_state), not entities
ENTITY_TEXT_MIN_DISTINCT = 100
ENTITY_SHARE = (0.001, 0.9)  # distinct share of a text column that looks like an entity


@dataclass(frozen=True)
class LeakFlag:
    """One flagged column.

    Attributes:
        column: The raw column name.
        kind: One of :data:`KINDS`.
        detail: What was seen, for the message.
    """

    column: str
    kind: str
    detail: str

    @property
    def message(self) -> str:
        """One line naming the column, the kind and what was seen."""
        return f"column {self.column!r} flagged as {self.kind}: {self.detail}"


def find_leaks(
    raw: pd.DataFrame,
    features: pd.DataFrame,
    pre: Preprocessor,
    y: np.ndarray,
    train: np.ndarray,
    *,
    exempt_id: Iterable[str] = (),
) -> list[LeakFlag]:
    """Flag the feature columns of ``pre``; at most one flag per column, the first kind that fits.

    Args:
        raw: The raw frame in file order (integers are read from it exactly).
        features: ``pre.transform(raw)``.
        pre: The preprocessor, before any flagged column is removed.
        y: Labels of all rows.
        train: Positions of the training rows (for the separation check).
        exempt_id: Columns never flagged as id or counter (the declared amount).
    """
    exempt = set(exempt_id)
    flags = []
    for col in pre.columns:
        values = features[col.feature]
        flag = _constant(col, values)
        if flag is None and col.name not in exempt:
            flag = _counter_or_id(col, raw[col.name], values, y)
        if flag is None:
            flag = _separates(col, values.iloc[train], y[train])
        if flag is not None:
            flags.append(flag)
    return flags


def act_on_leaks(flags: list[LeakFlag], pre: Preprocessor, on_leak: str, where: str) -> Preprocessor:
    """Apply ``on_leak``: drop the flagged columns from ``pre``, warn and keep them, or refuse.

    Raises:
        DataError: With ``"error"``, naming every flagged column and kind; with
            ``"drop"``, when no feature is left.
    """
    if not flags:
        return pre
    if on_leak == "error":
        listed = "; ".join(f.message for f in flags)
        raise DataError(f"{where}: {listed}; drop them or set on_leak to 'drop' or 'warn'")
    for flag in flags:
        action = "dropped from the features" if on_leak == "drop" else "kept (on_leak='warn')"
        logger.warning("%s: %s - %s", where, flag.message, action)
    if on_leak == "warn":
        return pre
    pre = pre.without(f.column for f in flags)
    if not pre.columns:
        raise DataError(f"{where} has no feature columns left once the flagged columns are dropped; see on_leak")
    return pre


def entity_candidates(
    frame: pd.DataFrame, *, exclude: Iterable[str] = (), na_values: Iterable[str] = NA_VALUES
) -> dict[str, str]:
    """Columns that look like an entity id with repeated values, each with the reason.

    Integers need an id-like name (``customer_id``, ``card_no``): integer measurements
    (age, tenure, whole-dollar amounts) have the same distinct-value profile as ids.
    Text qualifies by name, or by being high-cardinality with repeats (a merchant,
    a device). Floats and dates never do.
    """
    skip = set(exclude)
    na = frozenset(v.strip() for v in na_values)
    out: dict[str, str] = {}
    for name in frame.columns:
        col = frame[name]
        if name in skip or pd.api.types.is_float_dtype(col) or pd.api.types.is_bool_dtype(col):
            continue
        if pd.api.types.is_datetime64_any_dtype(col) or pd.api.types.is_timedelta64_dtype(col):
            continue
        integer = pd.api.types.is_integer_dtype(col)
        codes, texts = factorize_text(col, na)
        counts = np.bincount(codes[codes >= 0], minlength=len(texts))
        n, distinct = int(counts.sum()), len(texts)
        if distinct < ENTITY_MIN_DISTINCT or distinct >= n or (not integer and date_format(texts, counts)):
            continue
        words = set(_words(str(name)))
        # months_as_customer (an integer) is a tenure, policy_csl (text) a category: an
        # integer needs an id word; a number word counts only next to an entity word.
        entity = bool(words & ENTITY_WORDS)
        by_name = bool(words & ID_WORDS) or (entity and (not integer or bool(words & NUMBER_WORDS)))
        share = distinct / n
        by_values = (
            not integer and distinct >= ENTITY_TEXT_MIN_DISTINCT and ENTITY_SHARE[0] <= share <= ENTITY_SHARE[1]
        )
        if by_name or by_values:
            why = "its name looks like an id" if by_name else "many distinct text values that repeat"
            out[str(name)] = f"{why}: {distinct} distinct values in {n} rows ({n / distinct:.1f} rows each)"
    return out


def _words(name: str) -> list[str]:
    """``CustomerID`` / ``card_no`` / ``user-id`` -> lowercase words; ``userid`` -> also ``user``, ``id``."""
    words = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)]
    glued = []
    for word in words:
        for suffix in ID_WORDS | NUMBER_WORDS:
            if word.endswith(suffix) and word[: -len(suffix)] in ENTITY_WORDS:
                glued += [word[: -len(suffix)], suffix]
    return words + glued


def _constant(col: Column, values: pd.Series) -> LeakFlag | None:
    """All missing, or one value in every row."""
    if values.nunique(dropna=False) > 1:
        return None
    if values.isna().all():
        return LeakFlag(col.name, "constant", f"empty: all {len(values)} values are missing")
    value = values.iloc[0]
    shown = repr(value) if isinstance(value, str) else f"{float(value):g}"
    return LeakFlag(col.name, "constant", f"the same value {shown} in all {len(values)} rows")


def _counter_or_id(col: Column, raw: pd.Series, values: pd.Series, y: np.ndarray) -> LeakFlag | None:
    """Row counters and near-unique ids (integers and strings only)."""
    if col.kind == "category":
        codes = values.cat.codes.to_numpy()
        n, distinct = int((codes >= 0).sum()), len(np.unique(codes[codes >= 0]))
        if n >= ID_MIN_VALUES and distinct >= STRING_ID_SHARE * n:
            return LeakFlag(col.name, "id", f"{distinct} distinct strings in {n} rows: a row id or free text")
        return None
    if not col.integer:
        return None
    # Exact integers from the raw column (float32 merges ids above 2**24).
    exact = raw.to_numpy(dtype=np.float64, na_value=np.nan) if pd.api.types.is_numeric_dtype(raw) else None
    full = values.to_numpy(dtype=np.float64) if exact is None else exact
    present = ~np.isnan(full)
    v = full[present]
    if len(v) >= COUNTER_MIN_VALUES and _strictly_monotone(v):
        return LeakFlag(col.name, "counter", "strictly monotone in file order: a row counter (a time? use time_column)")
    per_class = [full[present & (y == c)] for c in (0, 1)]
    if all(len(p) >= CLASS_COUNTER_MIN_VALUES and _strictly_monotone(p) for p in per_class):
        return LeakFlag(
            col.name, "class_counter", "monotone within each class in file order: a counter on a label-sorted file"
        )
    distinct = len(np.unique(v))
    if len(v) >= ID_MIN_VALUES and distinct >= INTEGER_ID_SHARE * len(v):
        return LeakFlag(col.name, "id", f"{distinct} distinct integers in {len(v)} rows: a row id")
    return None


def _strictly_monotone(v: np.ndarray) -> bool:
    d = np.diff(v)
    return bool((d > 0).all() or (d < 0).all())


def _separates(col: Column, values: pd.Series, y: np.ndarray) -> LeakFlag | None:
    """One column alone classifies every training row correctly (missing counts as a value)."""
    positives = int(y.sum())
    if positives < SEPARATION_MIN_POSITIVES or len(y) - positives < SEPARATION_MIN_POSITIVES:
        return None
    is_pos = y == 1
    if col.kind == "category":
        codes = values.cat.codes.to_numpy()
        pos_levels, neg_levels = set(np.unique(codes[is_pos])), set(np.unique(codes[~is_pos]))
        if pos_levels & neg_levels or len(pos_levels) > max(1, positives // SEPARATION_ROWS_PER_LEVEL):
            return None
        shown = sorted("<missing>" if c < 0 else values.cat.categories[c] for c in pos_levels)[:3]
        return LeakFlag(col.name, "separates", f"levels {shown} occur only in fraud on the training split")
    v = values.to_numpy(dtype=np.float64)
    missing = np.isnan(v)
    if missing[is_pos].any() and missing[~is_pos].any():
        return None  # missing on both sides: no single rule gets every row right
    pos, neg = v[is_pos & ~missing], v[~is_pos & ~missing]
    if pos.size and neg.size and not (pos.max() < neg.min() or neg.max() < pos.min()):
        return None
    if not pos.size:
        detail = "every fraud is missing, no legit row is"
    elif not neg.size:
        detail = "every legit row is missing, no fraud is"
    else:
        detail = f"fraud in [{pos.min():g}, {pos.max():g}], legit in [{neg.min():g}, {neg.max():g}]"
    return LeakFlag(col.name, "separates", f"{detail} on the training split (a post-event field?)")
