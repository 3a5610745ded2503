"""Model selection you can trust (issue #13), end to end with real Ray, XGBoost and MLflow:
cross-validated trials under ASHA, the baseline trial and the paired comparison with
XGBoost's defaults, the threshold rule, and a minimal spec on real claims data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tuning.job.lifecycle import run_job
from tuning.search.baseline import baseline_point, is_baseline
from tuning.spec import parse_spec
from tuning.tracking.tags import PARENT_TAG, TRIAL_TAG

from conftest import new_store

pytestmark = pytest.mark.slow

CLAIMS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "insurance_claims.csv"


def _job(tmp_path: Path, **sections) -> dict:
    return {"name": "selection",
            "data": {"rows": 6000, "fraud_rate": 0.03, "seed": 5},
            "search_space": {"eta": {"type": "loguniform", "low": 0.02, "high": 0.5},
                             "max_depth": {"type": "randint", "low": 2, "high": 7}},
            "search": {"algorithm": "random", "seed": 3},
            "training": {"num_boost_round": 60, "report_every": 10},
            "budget": {"num_samples": 4, "max_concurrent": 2},
            "tracking": {"tracking_uri": new_store(tmp_path), "log_model": False},
            "storage": {"path": str(tmp_path / "runs")},
            **sections}


def _results(job_dir: Path) -> list[dict]:
    return [json.loads(line) for f in job_dir.glob("*/result.json")
            for line in f.read_text().splitlines()]


def test_cv_job_under_asha_reports_fold_means_and_an_out_of_fold_threshold(ray_session, tmp_path):
    spec = parse_spec(_job(tmp_path, evaluation={"cv": 3, "bootstrap": 20},
                           scheduler={"type": "asha", "grace_period": 2, "reduction_factor": 2}))
    result = run_job(spec, progress=False)
    results = _results(Path(result.experiment_dir))
    assert results and all(r["cv_folds"] == 3 for r in results)
    # Fold means come with their spread across folds; schedulers see the best so far.
    assert all("val_aucpr_sd" in r and r["val_aucpr_best"] >= r["val_aucpr"] - 1e-12
               for r in results)
    client = MlflowClient(result.tracking_uri)
    runs = client.search_runs([result.experiment_id], f"tags.`{PARENT_TAG}` = "
                                                      f"'{result.parent_run_id}'")
    assert sorted(r.data.tags[TRIAL_TAG] for r in runs) == sorted(t.trial_id for t in result.trials)
    assert result.verdict["cv_folds"] == 3
    assert result.verdict["refit"] == "all non-test rows"
    # The verdict's threshold is the one the best trial chose out-of-fold at its best round.
    best_rows = [r for r in results if r["trial_id"] == result.best.trial_id
                 and r["rounds"] == result.best.best_round]
    assert best_rows and result.verdict["threshold"] == pytest.approx(best_rows[0]["val_threshold"])


def test_baseline_trial_is_first_and_compared_on_the_test_rows(ray_session, tmp_path):
    spec = parse_spec(_job(tmp_path, evaluation={"cv": 1, "bootstrap": 50},
                           search_space={"eta": {"type": "loguniform", "low": 0.02, "high": 0.2},
                                         "max_depth": {"type": "randint", "low": 2, "high": 7}}))
    result = run_job(spec, progress=False)
    from trainables.data import load_dataset

    point = baseline_point(spec, load_dataset(**spec.dataset_kwargs()))
    # XGBoost's eta 0.3 is outside [0.02, 0.2]: clipped to 0.2; depth 6 is inside.
    assert point == {"eta": 0.2, "max_depth": 6}
    first = min(_results(Path(result.experiment_dir)), key=lambda r: r["trial_id"])
    assert is_baseline(first["config"], point), "the baseline is the first trial"
    base = result.verdict["baseline"]
    assert base["trial_id"] == first["trial_id"]
    low, high = base["interval"]
    assert low <= base["aucpr_minus_baseline"] <= high
    assert base["aucpr_minus_baseline"] == pytest.approx(base["aucpr"] - base["baseline_aucpr"])
    client = MlflowClient(result.tracking_uri)
    tagged = [r.data.tags[TRIAL_TAG] for r in client.search_runs(
        [result.experiment_id], f"tags.`{PARENT_TAG}` = '{result.parent_run_id}'")
        if r.data.tags.get("tuning.baseline") == "true"]
    assert tagged == [first["trial_id"]], "its child run is tagged as the baseline"
    parent = client.get_run(result.parent_run_id)
    for key in ("test_baseline_aucpr", "test_aucpr_minus_baseline",
                "test_aucpr_minus_baseline_ci_low", "test_aucpr_minus_baseline_ci_high"):
        assert key in parent.data.metrics, key
    if base["chosen"] or low <= 0:
        assert any("defaults" in w for w in result.verdict["warnings"])


def test_threshold_rule_alerts_is_applied_and_named(ray_session, tmp_path):
    spec = parse_spec(_job(tmp_path, evaluation={"cv": 1, "bootstrap": 0,
                                                 "threshold": {"rule": "alerts", "value": 100}},
                           search={"algorithm": "random", "seed": 3, "baseline": False}))
    result = run_job(spec, progress=False)
    assert (result.verdict["rule"], result.verdict["rule_value"]) == ("alerts", 100)
    best = [r for r in _results(Path(result.experiment_dir))
            if r["trial_id"] == result.best.trial_id and r["rounds"] == result.best.best_round][0]
    # At most 100 alerts per 10,000 validation rows at the chosen threshold.
    assert best["val_alerts_per_10k"] <= 100 + 1e-9
    assert "baseline" not in result.verdict


@pytest.mark.skipif(not CLAIMS.exists(), reason=f"{CLAIMS} is not there")
def test_a_minimal_spec_on_real_claims_data_uses_the_default_space_cv_and_a_baseline(
        ray_session, tmp_path):
    spec = parse_spec({"name": "claims",
                       "data": {"path": str(CLAIMS), "target": "fraud_reported"},
                       "budget": {"num_samples": 4, "max_concurrent": 2},
                       "tracking": {"tracking_uri": new_store(tmp_path),
                                    "log_model": False},
                       "storage": {"path": str(tmp_path / "runs")}})
    from trainables.registry import default_space

    assert set(spec.search_space) == set(default_space("xgboost_fraud"))
    result = run_job(spec, progress=False)
    verdict = result.verdict
    assert verdict["cv_folds"] == 5, "few positives: cross-validated by default"
    assert verdict["rule"] == "f1"
    base = verdict["baseline"]
    assert base["interval"][0] <= base["aucpr_minus_baseline"] <= base["interval"][1]
    assert result.count("FAILED") == 0 and len(result.trials) == 4


def test_too_few_validation_negatives_for_the_fpr_budget_is_warned(caplog):
    from trainables.data import load_dataset
    from tuning.job.tuner import warn_on_threshold_budget

    spec = parse_spec({"name": "t", "data": {"rows": 2000, "fraud_rate": 0.05},
                       "objective": {"metric": "recall_at_fpr", "max_fpr": 0.0005},
                       "evaluation": {"cv": 1}})
    data = load_dataset(**spec.dataset_kwargs())
    message = warn_on_threshold_budget(spec, data)
    assert message and "negatives" in message and "max_fpr=0.0005" in message
    assert message in caplog.text
    roomy = spec.with_overrides(**{"objective.max_fpr": 0.05})
    assert warn_on_threshold_budget(roomy, data) is None


def test_calibrated_probability_comes_from_held_out_scores(ray_session, tmp_path):
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd

    from trainables.synthetic import make_synthetic

    spec = parse_spec(_job(tmp_path, evaluation={"cv": 3, "bootstrap": 0,
                                                 "calibrate": "isotonic"},
                           tracking={"tracking_uri": new_store(tmp_path)},
                           budget={"num_samples": 2, "max_concurrent": 2}))
    result = run_job(spec, progress=False)
    calibrator = json.loads((Path(result.experiment_dir) / "calibrator.json").read_text())
    assert calibrator["method"] == "isotonic"
    mlflow.set_tracking_uri(result.tracking_uri)
    model = mlflow.pyfunc.load_model(f"runs:/{result.parent_run_id}/model")
    raw = make_synthetic(6000, 0.03, 30, 5)
    out = model.predict(raw.iloc[:500])
    probability = np.asarray(out["probability"], dtype=float)
    assert ((0 <= probability) & (probability <= 1)).all()
    # Isotonic: monotone in the score (ties aside), and not the raw weighted score.
    order = np.argsort(np.asarray(out["score"], dtype=float))
    assert (np.diff(probability[order]) >= -1e-12).all()
    assert isinstance(out, pd.DataFrame)
