"""Threshold rules of trainables.thresholds on constructed scores."""

from __future__ import annotations

import numpy as np
import pytest

from trainables import metrics as m
from trainables.objectives import OBJECTIVES, ObjectiveSettings, evaluate
from trainables.thresholds import (
    DEFAULT_RULES,
    THRESHOLD_RULES,
    choose_threshold,
    resolve_rule,
    too_few_negatives,
)

# 10 frauds scored 0.91..1.0, 990 legit rows scored 0.001..0.990: known counts at every cut.
Y = np.r_[np.ones(10, dtype=int), np.zeros(990, dtype=int)]
S = np.r_[np.linspace(0.91, 1.0, 10), np.linspace(0.001, 0.99, 990)]
ST = ObjectiveSettings(max_fpr=0.01, min_recall=0.5, fn_cost=100.0, fp_cost=1.0)


def test_every_objective_has_a_default_rule_and_none_is_a_bare_half():
    assert set(DEFAULT_RULES) == set(OBJECTIVES)
    assert {o.threshold_rule for o in OBJECTIVES.values()} <= set(THRESHOLD_RULES)
    for name in ("aucpr", "roc_auc", "logloss", "f1"):
        assert OBJECTIVES[name].threshold_rule == "f1"
    assert OBJECTIVES["recall_at_fpr"].threshold_rule == "max_fpr"
    assert OBJECTIVES["precision_at_recall"].threshold_rule == "recall_floor"
    assert OBJECTIVES["cost"].threshold_rule == "cost"
    t, details = choose_threshold(Y, S, None, None, ST, objective="aucpr")
    assert details["rule"] == "f1" and t == m.best_f1(Y, S)[1] != 0.5


def test_max_fpr_takes_the_objective_budget_unless_a_value_is_given():
    t, d = choose_threshold(Y, S, "max_fpr", None, ST)
    assert (t, d["value"]) == (m.recall_at_fpr(Y, S, 0.01)[1], 0.01)
    assert d["fpr"] <= 0.01
    t2, d2 = choose_threshold(Y, S, "max_fpr", 0.05, ST)
    assert t2 == m.recall_at_fpr(Y, S, 0.05)[1] and d2["fpr"] <= 0.05 < 0.05 + d2["fpr"]
    assert choose_threshold(Y, S, "fpr_budget", 0.05, ST)[0] == t2  # the old name is an alias


def test_alerts_flags_at_most_the_budget_per_10k_rows():
    # 50 per 10,000 of 1,000 rows = 5 alerts: the 5 top-scored rows.
    t, d = choose_threshold(Y, S, "alerts", 50, ST)
    assert int((S >= t).sum()) == 5 and d["alerts_per_10k"] == 50.0
    t, d = choose_threshold(Y, S, "alerts", 0, ST)
    assert int((S >= t).sum()) == 0
    # Ties are never split: a budget inside a block of equal scores stops above it.
    y, s = np.array([1, 0, 0, 0]), np.array([0.9, 0.5, 0.5, 0.1])
    t, _ = choose_threshold(y, s, "alerts", 5000, ST)  # 2 alerts allowed, the tie holds 2 more
    assert int((s >= t).sum()) == 1


def test_f1_fixed_cost_and_recall_floor():
    assert choose_threshold(Y, S, "f1", None, ST)[0] == m.best_f1(Y, S)[1]
    assert choose_threshold(Y, S, "fixed", 0.3, ST)[0] == 0.3
    assert choose_threshold(Y, S, "cost", None, ST)[0] == m.min_cost(Y, S, 100.0, 1.0)[1]
    assert choose_threshold(Y, S, "recall_floor", None, ST)[0] == m.precision_at_recall(Y, S, 0.5)[1]
    assert choose_threshold(Y, S, "recall_floor", 0.9, ST)[0] == m.precision_at_recall(Y, S, 0.9)[1]


def test_objective_threshold_is_the_fixed_rule():
    st = ObjectiveSettings(threshold=0.42)
    assert resolve_rule("recall_at_fpr", None, None, st) == ("fixed", 0.42)
    assert resolve_rule("aucpr", "fixed", None, st) == ("fixed", 0.42)
    assert evaluate(Y, S, "aucpr", st)["threshold"] == 0.42
    with pytest.raises(ValueError, match="objective.threshold"):
        resolve_rule("aucpr", "f1", None, st)


@pytest.mark.parametrize(("rule", "value", "text"), [
    ("max_fp", None, "did you mean max_fpr?"),
    ("fixed", None, "needs a value"),
    ("alerts", None, "needs a value"),
    ("f1", 0.2, "takes no value"),
    ("max_fpr", 1.5, "must be in [0, 1]"),
    ("alerts", -1, "alerts per 10,000 rows"),
])
def test_bad_rules_and_values_are_one_line_errors(rule, value, text):
    with pytest.raises(ValueError) as err:
        resolve_rule("aucpr", rule, value, ObjectiveSettings())
    assert text in str(err.value) and "\n" not in str(err.value)


def test_evaluate_reports_the_operating_point_at_the_rule_threshold():
    out = evaluate(Y, S, "aucpr", ST, rule="alerts", rule_value=50)
    c = m.confusion_at(Y, S, out["threshold"])
    assert (out["precision"], out["recall"], out["fpr"]) == (c.precision, c.recall, c.fpr)
    assert out["alerts_per_10k"] == 50.0


def test_too_few_negatives_below_ten_over_max_fpr():
    assert too_few_negatives(10_000, 0.001) is None
    msg = too_few_negatives(9_999, 0.001)
    assert msg and "9999 negatives" in msg and "10000" in msg
    _, d = choose_threshold(Y, S, "max_fpr", 0.001, ST)  # 990 negatives for a 0.1% budget
    assert d["warning"] and "990 negatives" in d["warning"]
    assert choose_threshold(Y, S, "max_fpr", 0.05, ST)[1]["warning"] is None
    assert choose_threshold(Y, S, "f1", None, ST)[1]["warning"] is None
