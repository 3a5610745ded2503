"""The ``evaluation:`` section: how the model is chosen (cross-validation, the
operating threshold, calibration) and how the final verdict is computed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from trainables.thresholds import RULE_ALIASES, THRESHOLD_RULES
from tuning.spec.sections import Section, known

#: ``evaluation.cv: auto`` cross-validates when the non-test rows hold fewer positives
#: than this: a single validation split of a few hundred frauds ranks trials by noise.
#: Measured (docs/performance.md, "What cross-validation buys"): 5 folds gained +0.01
#: test AUC-PR on average at ~200 positives, nothing measurable at 500, 1,000 or 2,500,
#: and cost 1.6-3.9x the wall time.
CV_AUTO_MAX_POSITIVES = 500
CV_AUTO_FOLDS = 5
CALIBRATIONS = ("none", "isotonic", "sigmoid")


class ThresholdSpec(Section):
    """How the operating threshold is chosen on validation (out-of-fold with CV)."""

    rule: str
    value: float | None = Field(None, ge=0, description="max_fpr: FPR budget (default "
                                "objective.max_fpr); alerts: alerts per 10,000 rows; fixed: "
                                "the threshold; recall_floor: the recall (default "
                                "objective.min_recall)")

    @field_validator("rule")
    @classmethod
    def _known(cls, value: str) -> str:
        return known(RULE_ALIASES.get(value, value), THRESHOLD_RULES, "threshold rule")

    @model_validator(mode="after")
    def _value(self) -> ThresholdSpec:
        if self.rule in ("alerts", "fixed") and self.value is None:
            raise ValueError(f"rule {self.rule!r} needs a value")
        if self.rule == "fixed" and self.value is not None and self.value > 1:
            raise ValueError(f"rule 'fixed' takes a threshold in [0, 1], got {self.value}")
        return self


class EvaluationSpec(Section):
    """Model selection (cross-validation, threshold) and the final verdict on the test set."""

    cv: int | Literal["auto"] = Field(
        "auto", description=f"K-fold cross-validation inside each trial; auto: "
        f"{CV_AUTO_FOLDS} folds when the non-test rows hold fewer than "
        f"{CV_AUTO_MAX_POSITIVES} positives, else 1 (a single validation split)")
    threshold: ThresholdSpec | None = Field(
        None, description="default: the objective's rule (f1, max_fpr, cost, recall_floor)")
    calibrate: str = Field("none", description="isotonic | sigmoid: add a calibrated "
                           "probability to the model, fitted on validation / out-of-fold scores")
    refit: Literal["train_val", "train"] = Field(
        "train_val", description="train_val: refit on train+validation with the best rounds; "
        "train: the trial's own model (same data, params and rounds); with cv > 1 the refit "
        "uses all non-test rows")
    bootstrap: int = Field(200, ge=0, description="bootstrap replicates for the 95% intervals")
    seed: int = 0

    @field_validator("cv")
    @classmethod
    def _folds(cls, value: Any) -> Any:
        if value != "auto" and (isinstance(value, bool) or value < 1):
            raise ValueError(f"must be auto or a whole number >= 1, got {value!r}")
        return value

    @field_validator("calibrate")
    @classmethod
    def _calibration(cls, value: str) -> str:
        return known(value, CALIBRATIONS, "calibration")

    def folds_for(self, dev_positives: int) -> int:
        """The number of folds for non-test rows holding ``dev_positives`` positives."""
        if self.cv != "auto":
            return int(self.cv)
        return CV_AUTO_FOLDS if dev_positives < CV_AUTO_MAX_POSITIVES else 1
