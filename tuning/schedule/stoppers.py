"""Completion criteria: end the whole job early, and say why it ended.

``budget.target`` stops the job as soon as any report reaches the objective value;
``budget.no_improvement_trials`` stops it after that many completed trials in a
row did not beat the best so far; ``budget.time_budget_s`` is Tune's own
``time_budget_s``. The reason lands on the parent run as tag ``tuning.stop_reason``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ray.tune import Callback
from ray.tune.stopper import Stopper

from tuning._ray_compat import run_config

if TYPE_CHECKING:
    from tuning.spec import Spec

ALL_DONE = "all trials done"
TIME_BUDGET = "time budget"


class CompletionStopper(Callback, Stopper):
    """A Tune stopper that is also a callback: results arrive through the stopper
    call, trial completions through the callback; one object keeps both counts.

    Pass the same instance as ``RunConfig(stop=...)`` and in ``callbacks``.
    """

    def __init__(self, metric: str, mode: str, target: float | None = None,
                 no_improvement_trials: int | None = None) -> None:
        self.metric = metric
        self.mode = mode
        self.target = target
        self.no_improvement_trials = no_improvement_trials
        self.best: float | None = None
        self.since_best = 0
        self.reason: str | None = None
        self._trial_best: dict[str, float] = {}

    def _better(self, a: float, b: float | None) -> bool:
        return b is None or (a > b if self.mode == "max" else a < b)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        value = result.get(self.metric)
        if not isinstance(value, (int, float)) or math.isnan(value):
            return False
        if self._better(value, self._trial_best.get(trial_id)):
            self._trial_best[trial_id] = float(value)
        if self.target is not None and self.reason is None:
            reached = value >= self.target if self.mode == "max" else value <= self.target
            if reached:
                self.reason = f"target reached: {self.metric} {value:.6g} (target {self.target:g})"
        return False  # the stop is for all trials, through stop_all

    def stop_all(self) -> bool:
        return self.reason is not None

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.record_completed(self._trial_best.pop(trial.trial_id, None))

    def record_completed(self, value: float | None) -> None:
        """Count one completed trial whose best objective was ``value``."""
        if value is not None and self._better(value, self.best):
            self.best, self.since_best = value, 0
        else:
            self.since_best += 1
        n = self.no_improvement_trials
        if n is not None and self.since_best >= n and self.reason is None:
            self.reason = f"no improvement in {n} trials (best {self.metric} {self.best})"


def build_stopper(spec: Spec) -> CompletionStopper | None:
    """The job's completion criteria, or None when the budget sets none."""
    budget = spec.budget
    if budget.target is None and budget.no_improvement_trials is None:
        return None
    return CompletionStopper(spec.objective.tune_key, spec.objective.resolved_mode,
                             budget.target, budget.no_improvement_trials)


def job_stop_reason(spec: Spec, tuner: Any, n_trials: int) -> str:
    """Why the job ended: a completion criterion, the time budget, or all trials done."""
    stopper = getattr(tuner, "stopper", None)
    if stopper is None:
        config = run_config(tuner)
        stopper = None if config is None else config.stop
    reason = getattr(stopper, "reason", None)
    if reason:
        return reason
    if spec.budget.time_budget_s and n_trials < spec.budget.num_samples:
        return TIME_BUDGET
    return ALL_DONE
