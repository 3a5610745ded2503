"""The columns with a role besides "feature": the label, the time, the amount, the entity.

Each function turns one raw column into the array the splits need, or raises a
one-line :class:`~trainables.preprocess.DataError` naming the column.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from trainables.preprocess import DataError, factorize_text

logger = logging.getLogger(__name__)

# Spellings accepted for a binary label without ``positive_label`` (lowercased, stripped).
_POLARITY = {
    **dict.fromkeys(("1", "true", "t", "yes", "y", "fraud", "fraudulent", "positive", "pos"), 1),
    **dict.fromkeys(("0", "false", "f", "no", "n", "legit", "legitimate", "genuine", "negative", "neg"), 0),
}
_BOOLEAN = {"1": 1, "true": 1, "0": 0, "false": 0}


def preview(items: Sequence[Any], limit: int = 20) -> str:
    """Render a list for a one-line message, cut after ``limit`` items."""
    shown = ", ".join(repr(i) for i in list(items)[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}] ({len(items)} total)"


def check_columns(columns: list[str], where: str, target: str, drop: list[str], roles: dict[str, str | None]) -> None:
    """Every named column exists, and no role is the target."""
    if target not in columns:
        raise DataError(f"target column {target!r} not found in {where}; available columns: {preview(columns)}")
    unknown = [c for c in drop if c not in columns]
    if unknown:
        raise DataError(f"drop columns {unknown} not found in {where}; available columns: {preview(columns)}")
    for role, name in roles.items():
        if name is not None and name not in columns:
            raise DataError(f"{role} {name!r} not found in {where}; available columns: {preview(columns)}")
        if name is not None and name == target:
            raise DataError(f"{role} {name!r} in {where} is the target column")
    if target in drop:
        raise DataError(f"cannot drop the target column {target!r} of {where}")


def parse_labels(labels: pd.Series, positive_label: Any, what: str) -> np.ndarray:
    """Map a label column to int8 0/1, or raise DataError naming ``what``."""
    # Normalise the distinct values only: a million rows usually hold two.
    codes, uniques = pd.factorize(labels, use_na_sentinel=True)
    if len(uniques) > 50:
        raise DataError(f"{what} has more than two classes: {preview(uniques, 5)} distinct values")
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


def time_values(column: pd.Series, what: str) -> np.ndarray:
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


def amount_values(column: pd.Series, na_values: Sequence[str], what: str) -> np.ndarray:
    """Return float64 amounts (NaN where missing); text must be numbers or missing tokens."""
    if pd.api.types.is_numeric_dtype(column) and not isinstance(column.dtype, pd.CategoricalDtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    codes, texts = factorize_text(column, na_values)
    numbers = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(numbers).any() or len(texts) == 0:
        raise DataError(f"{what} is not numeric ({column.dtype})")
    return np.append(numbers, np.nan)[codes]


def group_codes(column: pd.Series, na_values: Sequence[str], what: str) -> np.ndarray:
    """Return int64 entity codes: equal codes are the same entity.

    A row without an entity (missing, or a missing token) is an entity of its own:
    it cannot share anything with other rows that we could know of.
    """
    codes, texts = factorize_text(column, na_values)
    missing = codes < 0
    if missing.any():
        logger.warning("%s: %d rows without a value each count as their own group", what, int(missing.sum()))
        codes = codes.copy()
        codes[missing] = len(texts) + np.arange(int(missing.sum()))
    return codes
