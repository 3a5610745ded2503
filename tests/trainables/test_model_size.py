"""``val_model_size`` (tree nodes at each report) and the further objectives at the best round."""

from __future__ import annotations

import json

import pytest

from trainables.cv import parts_for
from trainables.data import load_dataset
from trainables.lockstep import train_lockstep
from trainables.objectives import METRIC_MODES, OBJECTIVES, metric_mode
from trainables.settings import TrainSettings
from trainables.xgboost_fraud import xgb_params


@pytest.fixture(scope="module")
def data():
    return load_dataset(rows=3000, fraud_rate=0.05, n_features=6, seed=3)


def _nodes_from_json(booster, rounds):
    model = json.loads(booster[:rounds].save_raw("json"))
    return sum(int(t["tree_param"]["num_nodes"])
               for t in model["learner"]["gradient_booster"]["model"]["trees"])


def _reports(data, st, config):
    parts = parts_for(data, st, st.max_bin, "cpu")
    params = [xgb_params(config, st, data, 1, "cpu", y_train=p.y_train) for p in parts]
    return list(train_lockstep(params, parts, st.num_boost_round, st))


@pytest.mark.parametrize("k", [1, 2])
def test_model_size_is_the_tree_nodes_at_each_report(data, k):
    st = TrainSettings(num_boost_round=20, report_every=5, cv_folds=k)
    reports = _reports(data, st, {"eta": 0.3, "max_depth": 3})
    for r in reports:
        expected = sum(_nodes_from_json(b, r.rounds) for b in r.boosters) / k
        assert r.result["val_model_size"] == expected
    again = _reports(data, st, {"eta": 0.3, "max_depth": 3})
    assert [r.result["val_model_size"] for r in again] == [r.result["val_model_size"] for r in reports]


def test_further_objectives_are_reported_at_the_best_round(data):
    st = TrainSettings(num_boost_round=40, report_every=5, objective="logloss",
                       also_at_best=("model_size", "aucpr"))
    reports = _reports(data, st, {"eta": 0.5, "max_depth": 6})
    results = [r.result for r in reports]
    best = min(results, key=lambda r: r["val_logloss"])
    last = results[-1]
    assert last["best_round"] == best["rounds"]
    assert last["val_model_size_at_best"] == best["val_model_size"]
    assert last["val_aucpr_at_best"] == best["val_aucpr"]
    assert "val_f1_at_best" not in last


def test_model_size_is_a_min_metric_but_not_a_threshold_objective():
    assert metric_mode("val_model_size") == "min" and METRIC_MODES["model_size"] == "min"
    assert "model_size" not in OBJECTIVES
    assert all(METRIC_MODES[n] == o.mode for n, o in OBJECTIVES.items())
    with pytest.raises(ValueError, match="valid metrics"):
        metric_mode("size")


def test_constraint_violation_is_measured_at_the_best_round(data):
    st = TrainSettings(num_boost_round=40, report_every=5, objective="logloss",
                       also_at_best=("model_size",),
                       constraints=(("model_size", None, 100.0), ("logloss", 0.0, None)))
    for r in _reports(data, st, {"eta": 0.5, "max_depth": 6}):
        size = r.result["val_model_size_at_best"]
        assert r.result["val_constraint_violation"] == max(0.0, size - 100.0)
