"""Operating-threshold rules: how a scored validation split picks the alert threshold.

A model trained with ``scale_pos_weight`` = negatives/positives outputs inflated
probabilities, so a bare 0.5 flags far too much (issue #13: FPR 0.35). Every
objective therefore has a rule that reads the threshold off the validation (or
out-of-fold) curve; :data:`THRESHOLD_RULES` is the single list of rule names.
"""

from __future__ import annotations

import difflib
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from trainables.curve import ThresholdCurve, threshold_curve

if TYPE_CHECKING:  # objectives imports this module; the settings type is only annotated
    from trainables.objectives import ObjectiveSettings

__all__ = ["DEFAULT_RULES", "RULE_ALIASES", "THRESHOLD_RULES", "choose_threshold", "default_rule",
           "resolve_rule", "threshold_on_curve", "too_few_negatives"]

#: The rule names, for the spec, the CLI and docs.
THRESHOLD_RULES = ("max_fpr", "alerts", "f1", "fixed", "cost", "recall_floor")
#: Old names still accepted.
RULE_ALIASES = {"fpr_budget": "max_fpr"}
#: The rule used when none is configured, per objective: each objective's own operating point,
#: and the F1 optimum for the ranking metrics, which have none.
DEFAULT_RULES = {
    "aucpr": "f1", "roc_auc": "f1", "logloss": "f1", "f1": "f1",
    "recall_at_fpr": "max_fpr", "precision_at_recall": "recall_floor", "cost": "cost",
}
# Rules whose value is optional (a setting of the objective fills it) or not taken at all.
_NO_VALUE = ("f1", "cost")
# An FPR budget is resolved by ~10 false positives; fewer make the threshold jump.
_MIN_FALSE_POSITIVES = 10


def canonical(rule: str) -> str:
    """The rule name with aliases resolved.

    Raises:
        ValueError: For an unknown rule; names the valid ones and the closest.
    """
    rule = RULE_ALIASES.get(rule, rule)
    if rule not in THRESHOLD_RULES:
        close = difflib.get_close_matches(rule, THRESHOLD_RULES, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ValueError(f"unknown threshold rule {rule!r}; valid: {', '.join(THRESHOLD_RULES)}{hint}")
    return rule


def default_rule(objective: str) -> str:
    """The objective's default rule (``val_`` prefix allowed)."""
    return DEFAULT_RULES[objective.removeprefix("val_")]


def resolve_rule(objective: str, rule: str | None, value: float | None,
                 settings: ObjectiveSettings) -> tuple[str, float | None]:
    """The effective ``(rule, value)``: configured, else ``objective.threshold`` (= fixed), else default.

    Raises:
        ValueError: On an unknown rule, a missing or out-of-range value, a value given to a
            rule that takes none, or ``objective.threshold`` together with another rule.
    """
    if rule is None:
        if settings.threshold is not None:
            return "fixed", float(settings.threshold)
        rule = default_rule(objective)
    rule = canonical(rule)
    if settings.threshold is not None and rule != "fixed":
        raise ValueError(f"objective.threshold ({settings.threshold}) is the fixed rule; "
                         f"it cannot be combined with threshold rule {rule!r}")
    if rule == "fixed" and value is None:
        value = settings.threshold
    if value is not None and rule in _NO_VALUE:
        raise ValueError(f"threshold rule {rule!r} takes no value (got {value})")
    if rule in ("fixed", "alerts") and value is None:
        raise ValueError(f"threshold rule {rule!r} needs a value")
    if value is not None:
        value = float(value)
        ok = {"max_fpr": 0.0 <= value <= 1.0, "recall_floor": 0.0 <= value <= 1.0,
              "fixed": 0.0 <= value <= 1.0, "alerts": 0.0 <= value <= 1e4}[rule]
        if not ok or math.isnan(value):
            allowed = "in [0, 10000] alerts per 10,000 rows" if rule == "alerts" else "in [0, 1]"
            raise ValueError(f"threshold value for rule {rule!r} must be {allowed}, got {value}")
    return rule, value


def threshold_on_curve(curve: ThresholdCurve, rule: str, value: float | None,
                       settings: ObjectiveSettings, amounts: np.ndarray | None = None) -> float:
    """The threshold ``rule`` picks on an already sorted curve (``rule`` resolved, see above)."""
    if rule == "fixed":
        return float(value)  # type: ignore[arg-type]
    if rule == "f1":
        return curve.best_f1()[1]
    if rule == "max_fpr":
        return curve.recall_at_fpr(settings.max_fpr if value is None else value)[1]
    if rule == "recall_floor":
        return curve.precision_at_recall(settings.min_recall if value is None else value)[1]
    if rule == "cost":
        return curve.min_cost(settings.fn_cost, settings.fp_cost, amounts)[1]
    if rule == "alerts":
        return _alert_budget(curve, float(value))  # type: ignore[arg-type]
    raise ValueError(f"unknown threshold rule {rule!r}; valid: {', '.join(THRESHOLD_RULES)}")


def _alert_budget(curve: ThresholdCurve, per_10k: float) -> float:
    """Lowest threshold flagging at most ``per_10k`` rows per 10,000 (ties are never split)."""
    budget = math.floor(per_10k * curve.n / 1e4 + 1e-9)
    alerts = curve.tps + curve.fps  # non-decreasing as the threshold falls: a feasible prefix
    k = int(np.searchsorted(alerts, budget, side="right"))
    return curve.no_alert_threshold if k == 0 else float(curve.thresholds[k - 1])


def choose_threshold(y: np.ndarray, scores: np.ndarray, rule: str | None, value: float | None,
                     settings: ObjectiveSettings, *, objective: str = "aucpr",
                     amounts: np.ndarray | None = None) -> tuple[float, dict[str, Any]]:
    """Pick the operating threshold on validation (or out-of-fold) scores.

    Args:
        y: 0/1 labels.
        scores: Predicted probabilities.
        rule: One of :data:`THRESHOLD_RULES` (or an alias); None is ``objective``'s default.
        value: The rule's value: FPR budget (``max_fpr``, default ``settings.max_fpr``),
            alerts per 10,000 rows (``alerts``), the threshold (``fixed``), the recall
            floor (``recall_floor``, default ``settings.min_recall``); None for ``f1``/``cost``.
        settings: The objective's settings (budgets and costs).
        objective: Objective whose default rule applies when ``rule`` is None.
        amounts: Per-row amounts for the ``cost`` rule.

    Returns:
        ``(threshold, details)``; details hold ``rule``, ``value``, the counts, the operating
        point (``precision``, ``recall``, ``fpr``, ``alerts_per_10k``) and ``warning`` (or None).
    """
    rule, value = resolve_rule(objective, rule, value, settings)
    curve = threshold_curve(y, scores)
    threshold = threshold_on_curve(curve, rule, value, settings, amounts)
    conf = curve.confusion_at(threshold)
    budget = (settings.max_fpr if value is None else value) if rule == "max_fpr" else None
    return threshold, {
        "rule": rule, "value": value if budget is None else budget,
        "n_pos": curve.n_pos, "n_neg": curve.n_neg,
        "precision": conf.precision, "recall": conf.recall, "fpr": conf.fpr,
        "alerts_per_10k": 1e4 * conf.alerts / curve.n,
        "warning": None if budget is None else too_few_negatives(curve.n_neg, budget),
    }


def too_few_negatives(n_negatives: int, max_fpr: float) -> str | None:
    """A warning when ``n_negatives`` cannot resolve an FPR budget (fewer than 10 / max_fpr)."""
    if max_fpr <= 0:
        return (f"an FPR budget of 0 allows no false positive on {n_negatives} negatives; "
                "the threshold is the top score")
    needed = math.ceil(_MIN_FALSE_POSITIVES / max_fpr)
    if n_negatives >= needed:
        return None
    return (f"validation holds {n_negatives} negatives; max_fpr={max_fpr:g} allows only "
            f"{n_negatives * max_fpr:.1f} false positives, so the threshold is noisy "
            f"(need >= {needed} negatives: use evaluation.cv, more validation rows or a larger max_fpr)")
