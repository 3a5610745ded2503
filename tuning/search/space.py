"""Turn the spec's ``search_space`` into Ray Tune domains."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from ray import tune

from tuning.search.params import ChoiceParam, LogUniformParam, RandIntParam, UniformParam, is_tuned

if TYPE_CHECKING:
    from tuning.spec import Spec


def to_domain(param: Any) -> Any:
    """One spec entry -> a Ray Tune domain (a plain value stays a constant)."""
    if isinstance(param, UniformParam):
        if param.q:
            return tune.quniform(param.low, param.high, param.q)
        return tune.uniform(param.low, param.high)
    if isinstance(param, LogUniformParam):
        return tune.loguniform(param.low, param.high)
    if isinstance(param, RandIntParam):
        if param.type == "lograndint":
            return tune.lograndint(param.low, param.high)
        return tune.randint(param.low, param.high)
    if isinstance(param, ChoiceParam):
        if param.type == "grid":
            return tune.grid_search(list(param.values))
        return tune.choice(list(param.values))
    return param


def grid_values(param: Any, points: int) -> list[Any]:
    """Discretise one entry for grid search: ``points`` values across a numeric range.

    Log-scaled parameters get log-spaced values; integer ranges are de-duplicated.
    """
    if isinstance(param, ChoiceParam):
        return list(param.values)
    if isinstance(param, LogUniformParam):
        return [float(v) for v in np.geomspace(param.low, param.high, points)]
    if isinstance(param, UniformParam):
        return [float(v) for v in np.linspace(param.low, param.high, points)]
    if isinstance(param, RandIntParam):
        top = param.high - 1  # randint excludes its upper bound
        if param.type == "lograndint":
            raw = np.geomspace(param.low, top, points)
        else:
            raw = np.linspace(param.low, top, points)
        return sorted({int(round(v)) for v in raw})
    return [param]


def param_space(spec: Spec) -> dict[str, Any]:
    """The Ray Tune ``param_space`` of a spec."""
    if spec.search.algorithm == "grid":
        return {
            name: tune.grid_search(grid_values(p, spec.search.grid_points))
            if is_tuned(p)
            else p
            for name, p in spec.search_space.items()
        }
    return {name: to_domain(p) for name, p in spec.search_space.items()}


def grid_size(spec: Spec) -> int:
    """Number of configurations a grid search over this spec visits."""
    return math.prod(
        len(grid_values(p, spec.search.grid_points))
        for p in spec.search_space.values()
        if is_tuned(p)
    )
