"""Completion criteria: target value, no improvement, and the stop reason on the parent."""

from __future__ import annotations

import pytest

from tuning.spec import parse_spec
from tuning.schedule.stoppers import CompletionStopper, build_stopper


def test_target_stops_all_trials_in_max_and_min_mode():
    up = CompletionStopper("val_aucpr", "max", target=0.9)
    assert up("t1", {"val_aucpr": 0.5}) is False and not up.stop_all()
    up("t1", {"val_aucpr": 0.91})
    assert up.stop_all() and up.reason.startswith("target reached: val_aucpr 0.91")
    down = CompletionStopper("val_cost", "min", target=10)
    down("t1", {"val_cost": 12})
    assert not down.stop_all()
    down("t1", {"val_cost": 9})
    assert down.stop_all()


def test_no_improvement_counts_completed_trials():
    stopper = CompletionStopper("val_aucpr", "max", no_improvement_trials=2)
    for value in (0.5, 0.7, 0.6, 0.7):  # 0.7 again is no improvement
        stopper.record_completed(value)
    assert stopper.stop_all() and "no improvement in 2 trials" in stopper.reason
    fresh = CompletionStopper("val_aucpr", "max", no_improvement_trials=2)
    for value in (0.5, 0.4, 0.6, 0.3):
        fresh.record_completed(value)
    assert not fresh.stop_all()


def test_no_criteria_no_stopper():
    spec = parse_spec({"name": "x", "search_space": {"eta": 0.1}})
    assert build_stopper(spec) is None


@pytest.mark.slow
@pytest.mark.parametrize("budget,reason", [
    ({"target": 0.0}, "target reached"),
    ({"no_improvement_trials": 1}, "no improvement in 1 trials"),
])
def test_job_stops_early_and_says_why(budget, reason, ray_session, tracking_uri, tmp_path):
    from mlflow.tracking import MlflowClient

    from tuning.job.lifecycle import run_job

    spec = parse_spec({
        "name": "stops", "data": {"rows": 5000, "fraud_rate": 0.02, "seed": 0},
        "search_space": {"eta": {"type": "loguniform", "low": 0.02, "high": 0.3}},
        "search": {"algorithm": "random", "seed": 0},
        "scheduler": {"type": "fifo"},
        "training": {"num_boost_round": 20, "report_every": 10},
        "evaluation": {"cv": 1},  # CV is not this test's subject
        "budget": {"num_samples": 8, "max_concurrent": 1, **budget},
        "tracking": {"tracking_uri": tracking_uri, "log_model": False},
        "storage": {"path": str(tmp_path / "runs")},
    })
    result = run_job(spec, progress=False)
    assert len(result.trials) < 8
    tags = MlflowClient(tracking_uri).get_run(result.parent_run_id).data.tags
    assert tags["tuning.stop_reason"].startswith(reason), tags["tuning.stop_reason"]
