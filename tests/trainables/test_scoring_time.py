"""``val_scoring_ms``: the measured time to score 1,000 validation rows at each report.

No timed thresholds: the checks are presence, positivity, the relation to the best round,
that the timed rows score as the validation matrix does (so every tree is walked for real
rows), and an ordering with a wide margin on the fastest of several measurements (a loaded
machine only adds time).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import xgboost as xgb

from trainables.cv import parts_for
from trainables.data import load_dataset
from trainables.lockstep import _scoring_sample, scoring_ms, train_lockstep
from trainables.objectives import METRIC_MODES, MODEL_METRICS, OBJECTIVES
from trainables.settings import TrainSettings
from trainables.xgboost_fraud import xgb_params


@pytest.fixture(scope="module")
def data():
    return load_dataset(rows=3000, fraud_rate=0.05, n_features=6, seed=3)


def _reports(data, st, config):
    parts = parts_for(data, st, st.max_bin, "cpu")
    params = [xgb_params(config, st, data, 1, "cpu", y_train=p.y_train) for p in parts]
    return parts, list(train_lockstep(params, parts, st.num_boost_round, st))


@pytest.mark.parametrize("k", [1, 2])
def test_every_report_has_a_positive_scoring_time_and_its_value_at_the_best_round(data, k):
    st = TrainSettings(num_boost_round=30, report_every=5, cv_folds=k, objective="logloss")
    _, reports = _reports(data, st, {"eta": 0.5, "max_depth": 6})
    results = [r.result for r in reports]
    assert all(math.isfinite(r["val_scoring_ms"]) and r["val_scoring_ms"] > 0 for r in results)
    # Not a further objective here, still reported at the best round (tuning best
    # --max-scoring-ms picks by it in any job).
    for i, r in enumerate(results):
        best = min(results[: i + 1], key=lambda x: x["val_logloss"])
        assert r["best_round"] == best["rounds"]
        assert r["val_scoring_ms_at_best"] == best["val_scoring_ms"]
    assert "val_model_size_at_best" not in results[-1]


def test_the_timed_rows_score_as_the_validation_matrix_does(data):
    # Quantised values are each bin's cut: the same path through every tree as the input row.
    st = TrainSettings(num_boost_round=20, report_every=20)
    parts, reports = _reports(data, st, {"eta": 0.3, "max_depth": 6})
    booster, part = reports[-1].boosters[0], parts[0]
    sample = _scoring_sample(part)
    assert sample.shape[0] == min(512, len(part.y_val)) and sample.dtype == np.float32
    rows = np.unique(np.linspace(0, len(part.y_val) - 1, sample.shape[0]).astype(int))
    np.testing.assert_array_equal(booster.inplace_predict(sample), booster.predict(part.dval)[rows])
    assert _scoring_sample(part) is sample  # built once per part


def test_a_large_model_takes_longer_to_score_than_a_stump(data):
    st = TrainSettings()
    parts = parts_for(data, st, st.max_bin, "cpu")
    params = xgb_params({"max_depth": 8, "eta": 0.3, "min_child_weight": 0}, st, data, 1, "cpu")
    large = xgb.train(params, parts[0].dtrain, 300)
    stump = xgb.train({**params, "max_depth": 1}, parts[0].dtrain, 1)
    # The fastest of several measurements: load only adds time. In a calm moment the large
    # model takes ~10x the stump's time per row; 2x leaves room for a busy machine.
    fastest = {name: min(scoring_ms([b], parts) for _ in range(5))
               for name, b in (("stump", stump), ("large", large))}
    assert fastest["large"] > 2 * fastest["stump"] > 0


def test_scoring_ms_is_a_min_model_metric_not_a_threshold_objective():
    assert METRIC_MODES["scoring_ms"] == "min" and "scoring_ms" in MODEL_METRICS
    assert "scoring_ms" not in OBJECTIVES
