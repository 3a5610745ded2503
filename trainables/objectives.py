"""Registry of tuning objectives and the one-pass evaluation that feeds them.

Each trial reports the same metric dict whatever it optimises, so schedulers,
searchers and MLflow see every objective's key; the objective only decides
which key is optimised and how the operating threshold is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainables import metrics
from trainables.thresholds import DEFAULT_RULES, THRESHOLD_RULES, resolve_rule, threshold_on_curve

__all__ = ["METRIC_MODES", "MODEL_METRICS", "OBJECTIVES", "THRESHOLD_RULES", "Objective",
           "ObjectiveSettings", "evaluate", "get_objective", "metric_mode"]

#: Metric names may carry this prefix (``val_aucpr``) as reported by trainables.
_PREFIX = "val_"


@dataclass(frozen=True)
class Objective:
    """A metric to tune and how its operating threshold is picked.

    Attributes:
        name: Key in :data:`OBJECTIVES` and in the dict :func:`evaluate` returns.
        mode: ``"max"`` or ``"min"``.
        threshold_rule: The default rule, one of :data:`THRESHOLD_RULES`
            (:data:`trainables.thresholds.DEFAULT_RULES`); never a bare 0.5.
        description: One line for ``tuning list`` and docs.
    """

    name: str
    mode: str
    threshold_rule: str
    description: str


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("aucpr", "max", DEFAULT_RULES["aucpr"],
                  "Area under the precision-recall curve (average precision)."),
        Objective("roc_auc", "max", DEFAULT_RULES["roc_auc"], "Area under the ROC curve."),
        Objective("logloss", "min", DEFAULT_RULES["logloss"],
                  "Mean binary cross-entropy of the probabilities."),
        Objective("f1", "max", DEFAULT_RULES["f1"], "F1 at the F1-optimal threshold."),
        Objective("recall_at_fpr", "max", DEFAULT_RULES["recall_at_fpr"],
                  "Recall at the lowest threshold whose FPR stays within max_fpr."),
        Objective("precision_at_recall", "max", DEFAULT_RULES["precision_at_recall"],
                  "Best precision among thresholds with recall >= min_recall."),
        Objective("cost", "min", DEFAULT_RULES["cost"],
                  "Minimum cost per transaction: missed frauds (fn_cost or amount) plus "
                  "fp_cost per false alert."),
    )
}


#: Trial metrics of the model itself rather than of its scores, reported by every trial
#: (``val_<name>``). They have no operating threshold, so they can be a further objective of
#: a multi-objective search (``objective.metrics``) but never the first one.
MODEL_METRICS: dict[str, Objective] = {
    "model_size": Objective("model_size", "min", "none",
                            "Tree nodes of the trial's model (fold mean with CV); deterministic."),
    "scoring_ms": Objective("scoring_ms", "min", "none",
                            "Measured milliseconds to score 1,000 validation rows (fold mean with "
                            "CV); noisy where trials share cores."),
}

#: ``"max"`` or ``"min"`` of every metric an objective may name.
METRIC_MODES: dict[str, str] = {name: o.mode for name, o in {**OBJECTIVES, **MODEL_METRICS}.items()}


def metric_mode(name: str) -> str:
    """The direction of a registry metric (``val_`` prefix allowed).

    Raises:
        ValueError: For an unknown name; the message lists the valid ones.
    """
    key = name.removeprefix(_PREFIX)
    if key not in METRIC_MODES:
        raise ValueError(f"unknown metric {name!r}; valid metrics: {', '.join(METRIC_MODES)}")
    return METRIC_MODES[key]


@dataclass(frozen=True)
class ObjectiveSettings:
    """Settings of the spec's ``objective:`` section besides the metric name.

    Attributes:
        max_fpr: FPR budget for ``recall_at_fpr``.
        min_recall: Recall floor for ``precision_at_recall``.
        fn_cost: Cost of a missed fraud when no per-row amounts are given.
        fp_cost: Cost of one false alert.
        threshold: A fixed operating threshold: an alias of threshold rule ``fixed``
            with this value; None leaves the rule to the objective's default.
    """

    max_fpr: float = 0.001
    min_recall: float = 0.8
    fn_cost: float = 100.0
    fp_cost: float = 1.0
    threshold: float | None = None

    def __post_init__(self) -> None:
        checks = (
            ("max_fpr", self.max_fpr, 0.0 <= self.max_fpr <= 1.0, "in [0, 1]"),
            ("min_recall", self.min_recall, 0.0 <= self.min_recall <= 1.0, "in [0, 1]"),
            ("fn_cost", self.fn_cost, self.fn_cost >= 0.0, ">= 0"),
            ("fp_cost", self.fp_cost, self.fp_cost >= 0.0, ">= 0"),
        )
        for name, value, ok, allowed in checks:
            if not ok:  # also catches nan, which fails every comparison
                raise ValueError(f"objective.{name} must be {allowed}, got {value}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"objective.threshold must be in [0, 1] or null, got {self.threshold}")


def get_objective(name: str) -> Objective:
    """Look up an objective by name; a ``val_`` prefix is accepted.

    Raises:
        ValueError: For an unknown name; the message lists the valid ones.
    """
    key = name[len(_PREFIX):] if name.startswith(_PREFIX) else name
    try:
        return OBJECTIVES[key]
    except KeyError:
        valid = ", ".join(sorted(OBJECTIVES))
        raise ValueError(
            f"unknown objective {name!r}; valid objectives: {valid} "
            f"(optionally prefixed with {_PREFIX!r})"
        ) from None


def evaluate(y_true: np.ndarray, scores: np.ndarray, objective: str,
             settings: ObjectiveSettings, amounts: np.ndarray | None = None,
             threshold: float | None = None, rule: str | None = None,
             rule_value: float | None = None) -> dict[str, float]:
    """Every objective's metric from one sort of the scores.

    Args:
        y_true: 0/1 validation labels.
        scores: Predicted fraud probabilities.
        objective: Objective name (``val_`` prefix allowed); its default threshold rule
            applies unless ``rule`` (or ``settings.threshold``) is given.
        settings: FPR budget, recall floor, costs and fixed threshold.
        amounts: Optional per-row amounts; a missed fraud then costs its amount.
        threshold: Use this operating threshold instead of any rule (e.g. one chosen
            on another split, or on out-of-fold scores).
        rule: Threshold rule (:data:`THRESHOLD_RULES`); None is the objective's default.
        rule_value: The rule's value (see :func:`trainables.thresholds.choose_threshold`).

    Returns:
        Python floats under the keys ``aucpr``, ``roc_auc``, ``logloss``, ``f1``,
        ``precision``, ``recall``, ``fpr``, ``alerts_per_10k``, ``threshold``,
        ``recall_at_fpr``, ``precision_at_recall`` and ``cost``. ``f1`` ...
        ``alerts_per_10k`` and ``cost`` are measured at the chosen threshold;
        ``recall_at_fpr`` and ``precision_at_recall`` use their own thresholds.
        Undefined values (e.g. ROC AUC with one class) are nan.
    """
    name = get_objective(objective).name
    curve = metrics.threshold_curve(y_true, scores)
    if threshold is None:
        rule, rule_value = resolve_rule(name, rule, rule_value, settings)
        threshold = threshold_on_curve(curve, rule, rule_value, settings, amounts)
    conf = curve.confusion_at(threshold)
    return {
        "aucpr": curve.average_precision(),
        "roc_auc": curve.roc_auc(),
        "logloss": metrics.log_loss(y_true, scores),
        **conf.rates(),
        "threshold": float(threshold),
        "recall_at_fpr": curve.recall_at_fpr(settings.max_fpr)[0],
        "precision_at_recall": curve.precision_at_recall(settings.min_recall)[0],
        "cost": curve.cost_at(threshold, settings.fn_cost, settings.fp_cost, amounts),
    }

