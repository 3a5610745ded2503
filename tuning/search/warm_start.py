"""Warm starts: give a searcher results it did not produce before it suggests anything.

Two sources feed it: an earlier job's finished child runs read back from MLflow
(``search.warm_start: {experiment: NAME}`` or ``{run_id: PARENT_RUN_ID}``,
read by :func:`tuning.tracking.store.load_observations`), and
stage 1 of a two-stage job (:mod:`tuning.job.two_stage`).

Ray's searchers have no common way to take (configuration, score) pairs:
``HyperOptSearch`` accepts ``points_to_evaluate`` but no ``evaluated_rewards``.
:class:`Prefilled` therefore replays each earlier result through the searcher's own
loop: the points are queued first in ``points_to_evaluate``; once Tune has
configured the searcher, each is suggested under a made-up trial id and completed
at once with its known score. The searcher
updates its model exactly as if the trial had run here, and the first trial Tune
starts gets the first new suggestion.

A multi-objective or constrained search (``MultiObjectiveSearch``) gets each earlier trial's
objectives and, when constrained, its constraint violation, all at one round: its best round
when the run holds them all (``val_<first>_best``, ``val_<m>_at_best``), else its last report.
Ray's ``evaluated_rewards`` would take them too, but its ``add_evaluated_point`` builds an
Optuna trial with one ``value`` (Ray 2.60), so the replay goes through ask / tell here as well.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ray.tune.search import Searcher

from tuning.search.codec import contains, is_tuned, parse_value
from tuning.search.optuna_samplers import VIOLATION_KEY

if TYPE_CHECKING:
    from tuning.spec import Spec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observation:
    """One evaluated configuration: the tuned parameters and the objective value.

    ``further`` holds the other result keys a multi-objective or constrained searcher reads
    (``val_<m>_at_best`` per further objective, ``val_constraint_violation``).
    """

    config: dict[str, Any]
    value: float
    further: dict[str, float] = field(default_factory=dict)


class Prefilled(Searcher):
    """Wraps a searcher and replays ``observations`` into it once its space is known.

    The wrapped searcher must have been built with the observations' configs at the
    head of its ``points_to_evaluate``, in the same order.
    """

    def __init__(self, searcher: Searcher, observations: list[Observation], max_t: int) -> None:
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher = searcher
        self.observations = list(observations)
        self.max_t = max_t
        self.replayed = 0

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        ok = self.searcher.set_search_properties(metric, mode, config, **spec)
        self._metric, self._mode = metric or self._metric, mode or self._mode
        if ok and self.replayed == 0:
            self._replay()
        return ok

    def _replay(self) -> None:
        for i, obs in enumerate(self.observations):
            trial_id = f"warm_start_{i:05d}"
            suggested = self.searcher.suggest(trial_id)
            if not isinstance(suggested, dict):  # FINISHED or a refusal: nothing to feed
                break
            # As a trial that ran all its reports (OptunaSearch reads training_iteration;
            # MultiObjectiveSearch tells a trial without training_done as pruned).
            key = self._metric if isinstance(self._metric, str) else self._metric[0]
            result = {**obs.further, key: obs.value, "training_iteration": self.max_t,
                      "training_done": True}
            self.searcher.on_trial_result(trial_id, result)
            self.searcher.on_trial_complete(trial_id, result=result)
            self.replayed += 1
        logger.info("warm start: fed %d earlier results to the searcher", self.replayed)

    # Everything else is the wrapped searcher's business.
    def suggest(self, trial_id: str) -> dict | None:
        return self.searcher.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def on_pause(self, trial_id: str) -> None:  # pausing schedulers call these
        self.searcher.on_pause(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        self.searcher.on_unpause(trial_id)

    def get_state(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "searcher"}

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)


def fit_to_space(spec: Spec, runs: list[tuple[dict[str, str], dict[str, float]]],
                 source: str = "MLflow") -> list[Observation]:
    """Turn (params, metrics) string maps into observations inside ``spec``'s space.

    Runs without the objective, or whose params fall outside the space, are skipped
    with one warning that says how many and shows the first reason. A multi-objective or
    constrained ``spec`` takes every objective (and constrained metric) of a run at one round
    (:func:`_at_one_round`).
    """
    key = spec.objective.result_key
    several = spec.objective.multi or bool(spec.objective.constraints)
    kept: list[Observation] = []
    reasons: list[str] = []
    for params, metrics in runs:
        if several:
            values = _at_one_round(spec, metrics)
            if isinstance(values, str):
                reasons.append(values)
                continue
        else:
            value = metrics.get(key)
            if value is None or math.isnan(value):
                reasons.append(f"no {key}")
                continue
        config, why = _config_in_space(spec.search_space, params)
        if config is None:
            reasons.append(why)
            continue
        kept.append(_observation(spec, config, values) if several else Observation(config, float(value)))
    if reasons:
        logger.warning("warm start: skipped %d of %d earlier trials from %s (first: %s)",
                       len(reasons), len(runs), source, reasons[0])
    return kept


def _at_one_round(spec: Spec, metrics: dict[str, float]) -> dict[str, float] | str:
    """The objectives and constrained metrics (registry names) of one earlier trial, all at its
    best round when the run holds them, else all at its last report; or why it has none."""
    obj = spec.objective
    names = [obj.metric, *obj.at_best]
    at_best = {obj.metric: metrics.get(f"val_{obj.metric}_best"),
               **{m: metrics.get(f"val_{m}_at_best") for m in obj.at_best}}
    last = {m: metrics.get(f"val_{m}") for m in names}
    for values in (at_best, last):
        if all(isinstance(v, (int, float)) and not math.isnan(v) for v in values.values()):
            return {m: float(v) for m, v in values.items()}
    return f"no {next(f'val_{m}' for m, v in last.items() if v is None or math.isnan(v))}"


def _observation(spec: Spec, config: dict[str, Any], values: dict[str, float]) -> Observation:
    """What a multi-objective / constrained searcher reads of one trial (its result keys)."""
    obj = spec.objective
    further = {f"val_{m}_at_best": values[m] for m in (obj.metrics or [])[1:]}
    if obj.constraints:
        further[VIOLATION_KEY] = sum(
            max(0.0, (c.min - values[c.metric]) if c.min is not None else 0.0,
                (values[c.metric] - c.max) if c.max is not None else 0.0) for c in obj.constraints)
    return Observation(config, values[obj.metric], further)


def _config_in_space(space: dict[str, Any], params: dict[str, str]) -> tuple[dict | None, str]:
    config: dict[str, Any] = {}
    for name, param in space.items():
        text = params.get(name)
        if text is None:
            if is_tuned(param):
                return None, f"no param {name}"
            continue  # a new constant: the searcher never sees constants
        try:
            value = parse_value(param, text)
        except ValueError as err:
            return None, f"{name}: {err}"
        if not contains(param, value):
            return None, f"{name}={text} is outside the search space"
        if is_tuned(param):
            config[name] = value
    return config, ""
