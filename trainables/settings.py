"""The settings every trial of a job shares (besides its hyperparameters)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainables.objectives import OBJECTIVES, ObjectiveSettings
from trainables.thresholds import resolve_rule

__all__ = ["DEFAULT_EARLY_STOPPING_REPORTS", "TrainSettings"]

#: Suggested ``early_stopping_reports`` at ``report_every=10`` (80 rounds of patience). Measured
#: over random default-space configs with CV (claims file K=5, synthetic 30k rows 1% K=3): 8 lost
#: <= 0.0002 mean AUC-PR against training the whole budget; 3 lost 0.007 on slow learners.
DEFAULT_EARLY_STOPPING_REPORTS = 8


@dataclass(frozen=True)
class TrainSettings:
    """Everything a trial needs besides its hyperparameters (same for all trials).

    Attributes:
        num_boost_round: Round budget (a config's ``num_boost_round`` overrides it).
        report_every: Rounds between two reports to Tune.
        checkpoint_every: Reports between two checkpoints (the last report always saves).
        max_bin: Histogram bins of the quantised matrices.
        objective: Objective name (:data:`trainables.objectives.OBJECTIVES`).
        objective_settings: Budgets and costs of the objective.
        fixed_params: XGBoost parameters every trial gets (``training.params``).
        seed: XGBoost seed, and the seed of the stratified / group folds.
        fail_at_round: Fault injection for the reliability tests: raise once per trial here.
        cv_folds: 1 trains on train and reports on validation (the holdout); K > 1 trains K
            boosters in lockstep on the folds of all non-test rows and reports fold means.
        time_folds: Forward-chaining folds in time order (``split: time``) instead of
            stratified ones; entity groups are kept whole either way.
        early_stopping_reports: Stop boosting after this many reports without a better
            objective (None: train the whole budget).
        threshold_rule: Operating-threshold rule (:data:`trainables.thresholds.THRESHOLD_RULES`);
            None is the objective's default (``objective_settings.threshold`` means ``fixed``).
        threshold_value: The rule's value (FPR budget, alerts per 10,000 rows, threshold, recall).
        also_at_best: Further objectives of a multi-objective job (``objective.metrics`` after
            the first): each report carries ``val_<name>_at_best``, the value at the round where
            ``objective`` was best.
        constraints: ``(metric, min, max)`` bounds on metrics at the best round (``objective`` or
            one of ``also_at_best``; None: no bound); each report carries
            ``val_constraint_violation``, the sum of the amounts by which they are exceeded (0:
            feasible; nan before the first scored report).
    """

    num_boost_round: int = 300
    report_every: int = 10
    checkpoint_every: int = 1
    max_bin: int = 256
    objective: str = "aucpr"
    objective_settings: ObjectiveSettings = ObjectiveSettings()
    fixed_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    fail_at_round: int | None = None
    cv_folds: int = 1
    time_folds: bool = False
    early_stopping_reports: int | None = None
    threshold_rule: str | None = None
    threshold_value: float | None = None
    also_at_best: tuple[str, ...] = ()
    constraints: tuple[tuple[str, float | None, float | None], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.cv_folds, int) or self.cv_folds < 1:
            raise ValueError(f"evaluation.cv must be an integer >= 1, got {self.cv_folds!r}")
        if self.early_stopping_reports is not None and self.early_stopping_reports < 1:
            raise ValueError(f"early_stopping_reports must be >= 1 or null, got {self.early_stopping_reports}")
        if self.objective.removeprefix("val_") in OBJECTIVES:  # unknown names fail in evaluate
            self.rule()

    @property
    def mode(self) -> str:
        """``"max"`` or ``"min"``: the direction of the objective."""
        return OBJECTIVES[self.objective.removeprefix("val_")].mode

    @property
    def metric(self) -> str:
        """The objective's name without a ``val_`` prefix."""
        return self.objective.removeprefix("val_")

    def rule(self) -> tuple[str, float | None]:
        """The effective threshold ``(rule, value)``; raises ValueError on a bad combination."""
        return resolve_rule(self.metric, self.threshold_rule, self.threshold_value,
                            self.objective_settings)
