"""Map spec parameters to and from the unit interval, and back from MLflow strings.

Used where a search needs one numeric scale for every parameter: the Gaussian
process (``tuning.search.gp``), the range narrowing of the two-stage job
(``tuning.search.two_stage``) and warm starts from earlier jobs (``tuning.search.warm_start``).

The unit scale of each parameter:

- ``uniform``: linear in [low, high];
- ``loguniform`` / ``lograndint``: linear in log(value), so a GP or a narrowed
  range treats 0.01 -> 0.1 like 0.1 -> 1;
- ``randint`` / ``lograndint``: the integers low .. high-1 each own an equal cell of
  [0, 1]; decoding floors into the cell, encoding takes the cell centre;
- ``choice``: value i of k owns the cell [i/k, (i+1)/k) (an index range; the order
  of the values carries no meaning, which is the price of a GP over categories).
"""

from __future__ import annotations

import math
from typing import Any

from tuning.search.params import (
    ChoiceParam,
    LogUniformParam,
    RandIntParam,
    UniformParam,
    is_log,
    is_tuned,
)

__all__ = ["clip", "contains", "from_unit", "is_log", "is_tuned", "parse_value", "to_unit"]


def _bounds(param: Any) -> tuple[float, float]:
    """The interval the unit scale spans, in (log-)value space."""
    low, high = float(param.low), float(param.high)  # integer cells cover [low, high)
    if is_log(param):
        return math.log(low), math.log(high)
    return low, high


def to_unit(param: Any, value: Any) -> float:
    """A value of ``param`` -> its position in [0, 1]."""
    if isinstance(param, ChoiceParam):
        index = _choice_index(param, value)
        return (index + 0.5) / len(param.values)
    lo, hi = _bounds(param)
    x = float(value)
    if isinstance(param, RandIntParam):
        if is_log(param):
            # The cell of integer v is [log v, log(v + 1)); take its centre.
            x = 0.5 * (math.log(x) + math.log(x + 1))
        else:
            x = x + 0.5
    elif is_log(param):
        x = math.log(x)
    return min(1.0, max(0.0, (x - lo) / (hi - lo)))


def from_unit(param: Any, u: float) -> Any:
    """A position in [0, 1] -> a valid value of ``param`` (ints rounded, choices indexed)."""
    u = min(1.0, max(0.0, float(u)))
    if isinstance(param, ChoiceParam):
        return param.values[min(int(u * len(param.values)), len(param.values) - 1)]
    lo, hi = _bounds(param)
    x = lo + u * (hi - lo)
    if is_log(param):
        x = math.exp(x)
    if isinstance(param, RandIntParam):
        return int(min(max(math.floor(x), param.low), param.high - 1))
    x = min(max(x, param.low), param.high)
    if isinstance(param, UniformParam) and param.q:
        x = min(max(round(x / param.q) * param.q, param.low), param.high)
    return float(x)


def contains(param: Any, value: Any) -> bool:
    """True when ``value`` is a value ``param`` could take."""
    if not is_tuned(param):
        return value == param
    if isinstance(param, ChoiceParam):
        return any(_same(v, value) for v in param.values)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return False
    if isinstance(param, RandIntParam):
        return x == int(x) and param.low <= x < param.high
    return param.low <= x <= param.high


def parse_value(param: Any, text: str) -> Any:
    """An MLflow param string (``str`` or ``repr`` of the value) -> a typed value.

    Raises:
        ValueError: the text is no value of this parameter's type.
    """
    if isinstance(param, ChoiceParam):
        for v in param.values:
            if text in (str(v), repr(v)):
                return v
        raise ValueError(f"{text!r} is not one of {param.values}")
    if isinstance(param, RandIntParam):
        x = float(text)
        if x != int(x):
            raise ValueError(f"{text!r} is not an integer")
        return int(x)
    if is_tuned(param):
        return float(text)
    # A constant: keep the spec's value when the text is that value.
    if text in (str(param), repr(param)):
        return param
    raise ValueError(f"{text!r} differs from the constant {param!r}")


def _choice_index(param: ChoiceParam, value: Any) -> int:
    for i, v in enumerate(param.values):
        if _same(v, value):
            return i
    raise ValueError(f"{value!r} is not one of {param.values}")


def _same(a: Any, b: Any) -> bool:
    # 1 == True in Python; a choice of [1, true] must not mix them up.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - incomparable values are simply different
        return False


def clip(param: Any, value: Any) -> Any:
    """Project a value onto ``param``'s range (choices and constants are left alone)."""
    if isinstance(param, RandIntParam):
        return int(min(max(int(value), param.low), param.high - 1))
    if isinstance(param, (UniformParam, LogUniformParam)):
        return float(min(max(float(value), param.low), param.high))
    return value
