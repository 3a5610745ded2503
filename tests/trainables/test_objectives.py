"""Objective registry contract and the one-pass ``evaluate``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainables import metrics as m
from trainables.objectives import (
    OBJECTIVES,
    THRESHOLD_RULES,
    ObjectiveSettings,
    evaluate,
    get_objective,
)

KEYS = {"aucpr", "roc_auc", "logloss", "f1", "precision", "recall", "fpr", "alerts_per_10k",
        "threshold", "recall_at_fpr", "precision_at_recall", "cost"}


@pytest.fixture(scope="module")
def data():
    """Validation-like data: 3,000 rows, ~3% fraud, overlapping scores, some ties."""
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.03).astype(int)
    s = np.clip(rng.normal(0.2 + 0.4 * y, 0.15), 0.0, 1.0).round(3)
    amounts = rng.exponential(80.0, y.size)
    return y, s, amounts


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_registry_entry_contract(name, data):
    y, s, amounts = data
    obj = OBJECTIVES[name]
    assert obj.name == name
    assert obj.mode in ("max", "min")
    assert obj.threshold_rule in THRESHOLD_RULES
    assert obj.description
    assert get_objective(name) is obj
    assert get_objective(f"val_{name}") is obj
    settings = ObjectiveSettings(max_fpr=0.01, min_recall=0.5)
    for amt in (None, amounts):
        out = evaluate(y, s, f"val_{name}", settings, amounts=amt)
        assert set(out) == KEYS
        assert name in out  # the tuned metric is always reported
        for key, value in out.items():
            assert type(value) is float, key
            assert math.isfinite(value), key
        assert 0.0 <= out["threshold"] <= 1.0 + 1e-12


def test_get_objective_unknown_lists_valid_names():
    with pytest.raises(ValueError) as err:
        get_objective("val_accuracy")
    msg = str(err.value)
    assert "'val_accuracy'" in msg
    for name in OBJECTIVES:
        assert name in msg


def test_expected_modes_and_rules():
    got = {n: (o.mode, o.threshold_rule) for n, o in OBJECTIVES.items()}
    assert got == {
        "aucpr": ("max", "f1"), "roc_auc": ("max", "f1"), "logloss": ("min", "f1"),
        "f1": ("max", "f1"), "recall_at_fpr": ("max", "max_fpr"),
        "precision_at_recall": ("max", "recall_floor"), "cost": ("min", "cost"),
    }


def test_threshold_rules_pick_the_objectives_optimum(data):
    y, s, amounts = data
    st = ObjectiveSettings(max_fpr=0.01, min_recall=0.6, fn_cost=50.0, fp_cost=2.0)

    out = evaluate(y, s, "f1", st)
    assert (out["f1"], out["threshold"]) == m.best_f1(y, s)

    out = evaluate(y, s, "recall_at_fpr", st)
    assert (out["recall_at_fpr"], out["threshold"]) == m.recall_at_fpr(y, s, 0.01)
    assert out["recall"] == out["recall_at_fpr"] and out["fpr"] <= 0.01

    out = evaluate(y, s, "precision_at_recall", st)
    assert (out["precision_at_recall"], out["threshold"]) == m.precision_at_recall(y, s, 0.6)
    assert out["precision"] == out["precision_at_recall"] and out["recall"] >= 0.6

    for amt in (None, amounts):
        out = evaluate(y, s, "cost", st, amounts=amt)
        assert (out["cost"], out["threshold"]) == pytest.approx(m.min_cost(y, s, 50.0, 2.0, amt))
        assert out["cost"] == pytest.approx(m.expected_cost(y, s, out["threshold"], 50.0, 2.0, amt))


def test_ranking_objectives_operate_at_the_f1_optimum_and_threshold_override(data):
    y, s, amounts = data
    out = evaluate(y, s, "aucpr", ObjectiveSettings())
    # Never a bare 0.5: a class-weighted model's scores are inflated.
    assert out["threshold"] == m.best_f1(y, s)[1] != 0.5
    assert out["aucpr"] == m.average_precision(y, s)
    assert out["roc_auc"] == m.roc_auc(y, s)
    assert out["logloss"] == m.log_loss(y, s)
    c = m.confusion_at(y, s, out["threshold"])
    assert (out["precision"], out["recall"], out["f1"], out["fpr"]) == (
        c.precision, c.recall, c.f1, c.fpr)

    st = ObjectiveSettings(threshold=0.3)
    assert evaluate(y, s, "logloss", st)["threshold"] == 0.3
    # An explicit threshold beats every rule, e.g. one chosen on another split.
    for name in OBJECTIVES:
        out = evaluate(y, s, name, st, amounts=amounts, threshold=0.42)
        assert out["threshold"] == 0.42
        assert out["recall"] == m.confusion_at(y, s, 0.42).recall
        assert out["cost"] == pytest.approx(m.expected_cost(y, s, 0.42, 100.0, 1.0, amounts))


def test_evaluate_single_class_reports_nan_instead_of_failing():
    out = evaluate(np.zeros(50, dtype=int), np.linspace(0, 1, 50), "recall_at_fpr",
                   ObjectiveSettings())
    assert set(out) == KEYS
    assert math.isnan(out["roc_auc"]) and math.isnan(out["aucpr"])
    assert out["recall"] == 0.0


@pytest.mark.parametrize(("kwargs", "path"), [
    ({"max_fpr": -0.1}, "objective.max_fpr"),
    ({"max_fpr": float("nan")}, "objective.max_fpr"),
    ({"min_recall": 1.5}, "objective.min_recall"),
    ({"fn_cost": -1.0}, "objective.fn_cost"),
    ({"fp_cost": -1.0}, "objective.fp_cost"),
    ({"threshold": 2.0}, "objective.threshold"),
])
def test_settings_validation_names_the_yaml_path(kwargs, path):
    with pytest.raises(ValueError, match=path):
        ObjectiveSettings(**kwargs)
