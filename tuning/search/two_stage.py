"""The search side of the two-stage job (``search.algorithm: two_stage``): the narrowing.

Stage 1 samples ``search.stage1_samples`` configurations over the full space with
``search.stage1_with``: ``random`` (the default) or ``qmc`` (a scrambled Sobol
sequence, which covers the space more evenly for the same number of trials).
Stage 2 narrows every numeric range to the span of stage 1's top
``search.top_fraction`` trials, widened on each side by ``search.margin`` of the
original range and clipped to it (on the log scale for log parameters; choices
keep all their values), and runs ``search.refine_with`` (a refiner of the
registry: tpe, gp, optuna_tpe, cmaes) there for the rest of the budget, warm-started with ALL stage-1 results. Stage-1 points outside
the narrowed box are projected onto its edge, so the model still learns that the
region beyond that edge scored as they did.

Both stages run under the job's one MLflow parent run and in the job's one folder;
each child run carries tag ``tuning.stage`` (1 or 2), and the narrowed ranges are
logged on the parent (params ``stage2.<name>`` and artifact ``two_stage.json``).
:mod:`tuning.job.two_stage` runs the two stages; this module only computes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from tuning.search.codec import from_unit, is_tuned, to_unit
from tuning.search.params import ChoiceParam, RandIntParam
from tuning.search.warm_start import Observation

if TYPE_CHECKING:
    from tuning.spec import Spec


def narrow_space(space: dict[str, Any], observations: list[Observation], mode: str,
                 top_fraction: float, margin: float) -> dict[str, dict[str, Any]]:
    """The narrowed ranges: ``{name: {low, high, original_low, original_high}}``.

    Only numeric ranges appear; choices and constants stay as they are.
    """
    if not observations:
        return {}
    ranked = sorted(observations, key=lambda o: o.value, reverse=mode == "max")
    top = ranked[:max(1, math.ceil(top_fraction * len(ranked)))]
    out: dict[str, dict[str, Any]] = {}
    for name, param in space.items():
        if not is_tuned(param) or isinstance(param, ChoiceParam):
            continue
        units = [to_unit(param, o.config[name]) for o in top if name in o.config]
        if not units:
            continue
        lo_u, hi_u = max(0.0, min(units) - margin), min(1.0, max(units) + margin)
        low, high = from_unit(param, lo_u), from_unit(param, hi_u)
        if isinstance(param, RandIntParam):
            high = high + 1  # randint excludes its upper bound
            # Keep two integers at least: HyperOpt cannot sample a one-value range.
            if high - low < 2:
                high, low = (high + 1, low) if high < param.high else (high, max(param.low,
                                                                                 low - 1))
        if not low < high:  # a quantised range collapsed to one value: keep it whole
            low, high = param.low, param.high
        out[name] = {"low": low, "high": high, "original_low": param.low,
                     "original_high": param.high}
    return out


def stage2_space(spec: Spec, ranges: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The spec's ``search_space`` (as plain data) with the narrowed ranges put in."""
    raw = {}
    for name, param in spec.search_space.items():
        if hasattr(param, "model_dump"):
            raw[name] = param.model_dump(exclude_none=True)
            if name in ranges:
                raw[name].update(low=ranges[name]["low"], high=ranges[name]["high"])
        else:
            raw[name] = param
    return raw


def observations_of(results: Any, spec: Spec) -> list[Observation]:
    """(tuned config, last objective value) of every trial in a Tune result grid.

    The last value is what the searcher itself is told when a trial completes.
    """
    key = spec.objective.result_key
    tuned = [n for n, p in spec.search_space.items() if is_tuned(p)]
    out = []
    for result in results:
        value = (result.metrics or {}).get(key)
        if result.error is not None or not isinstance(value, (int, float)) or math.isnan(value):
            continue
        out.append(Observation({n: result.config[n] for n in tuned}, float(value)))
    return out
