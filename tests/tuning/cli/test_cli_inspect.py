"""`tuning best | export | runs | report` on a real finished job, and the --max-fpr choice."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from tuning.cli import main
from tuning.cli.inspection import choose
from tuning.errors import JobError
from tuning.tracking.store import Job, Trial



@pytest.fixture(scope="module")
def finished(finished_tiny_job):
    return finished_tiny_job  # tests/tuning/conftest.py


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------- --max-fpr, by hand
def _t(trial_id: str, status: str, value: float, recall: float, fpr: float) -> Trial:
    t = Trial(run_id=f"run-{trial_id}", trial_id=trial_id, status=status, params={"eta": 0.1},
              metrics={}, tags={}, start_time=0, end_time=None)
    t.best_value, t.best_round = value, 10
    t.point = {"val_recall": recall, "val_fpr": fpr, "val_threshold": 0.3}
    return t


def _job(trials: list[Trial]) -> Job:
    return Job(tracking_uri="sqlite://", experiment_id="1", experiment_name="e", run_id="p",
               name="j", status="FINISHED", start_time=0, end_time=None, params={}, metrics={},
               tags={"tuning.best_trial_id": "top"}, trials=trials, metric="val_aucpr",
               mode="max")


HAND = _job([
    _t("top", "FINISHED", 0.90, recall=0.80, fpr=0.010),  # best objective, high FPR
    _t("lean", "FINISHED", 0.70, recall=0.60, fpr=0.002),
    _t("short", "KILLED", 0.75, recall=0.65, fpr=0.002),  # stopped early: still a model
    _t("worse", "FINISHED", 0.72, recall=0.55, fpr=0.003),  # dominated
    _t("broken", "FAILED", 0.99, recall=0.99, fpr=0.0001),  # failed: never chosen
])


def test_without_max_fpr_the_jobs_best_trial_is_chosen():
    trial, figures = choose(HAND, None)
    assert trial.trial_id == "top" and figures["val_aucpr"] == 0.90


@pytest.mark.parametrize("max_fpr, expected", [
    (0.5, "top"), (0.010, "top"), (0.0099, "short"), (0.002, "short"), (0.0025, "short"),
])
def test_max_fpr_picks_the_best_recall_within_the_fpr_budget(max_fpr, expected):
    trial, figures = choose(HAND, max_fpr)
    assert trial.trial_id == expected
    assert figures["val_fpr"] <= max_fpr


def test_max_fpr_below_every_trial_is_a_one_line_error():
    with pytest.raises(JobError, match=r"no finished trial .* \(lowest: 0.002\)"):
        choose(HAND, 0.001)
    with pytest.raises(JobError, match="between 0 and 1"):
        choose(HAND, 1.5)


# ------------------------------------------------------- on a real job
@pytest.mark.slow
def test_runs_lists_the_job(finished, capsys):
    code, out, _ = cli(capsys, "runs", "--tracking-uri", finished.tracking_uri)
    assert code == 0
    line = next(l for l in out.splitlines() if finished.parent_run_id in l)
    assert line.startswith(finished.name) and "FINISHED" in line
    assert f"{len(finished.trials):>6}" in line
    assert f"{finished.best.best_value:.4f}" in line
    code, out, err = cli(capsys, "runs", "--tracking-uri", finished.tracking_uri,
                         "--experiment", "nope")
    assert code == 1 and "experiment 'nope' not found" in err


@pytest.mark.slow
def test_best_prints_the_trial_and_a_model_uri_that_loads(finished, capsys):
    import mlflow.xgboost
    import numpy as np
    import xgboost as xgb
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    code, out, _ = cli(capsys, "best", finished.name, "--tracking-uri", finished.tracking_uri)
    assert code == 0
    assert f"Trial {finished.best.trial_id}" in out
    assert f"threshold   {finished.best.threshold:.6g}" in out
    uri = f"runs:/{finished.parent_run_id}/booster"
    assert f"mlflow.pyfunc.load_model('runs:/{finished.parent_run_id}/model')" in out
    assert f"mlflow.xgboost.load_model({uri!r})" in out
    with _use_tracking_uri(finished.tracking_uri):
        booster = mlflow.xgboost.load_model(uri)
    assert booster.num_boosted_rounds() == finished.best.best_round
    names = booster.feature_names
    scores = booster.predict(xgb.DMatrix(np.zeros((3, len(names))), feature_names=names))
    assert scores.shape == (3,)


@pytest.mark.slow
def test_best_json_with_max_fpr_is_the_best_recall_within_budget(finished, capsys):
    code, out, _ = cli(capsys, "best", finished.parent_run_id, "--tracking-uri",
                       finished.tracking_uri, "--json")
    assert code == 0
    best = json.loads(out)
    assert best["child_run_id"] and best["model_uri"] and best["test"]
    budget = best["validation"]["val_fpr"]  # the best trial's own FPR is always within reach
    code, out, _ = cli(capsys, "best", finished.parent_run_id, "--tracking-uri",
                       finished.tracking_uri, "--json", "--max-fpr", str(budget))
    picked = json.loads(out)
    assert code == 0 and picked["validation"]["val_fpr"] <= budget
    # No finished trial within the budget has a higher recall.
    within = [t.metrics for t in finished.trials
              if t.status in ("FINISHED", "KILLED") and t.metrics["val_fpr"] <= budget]
    assert picked["validation"]["val_recall"] == max(m["val_recall"] for m in within)
    code, _, err = cli(capsys, "best", finished.parent_run_id, "--tracking-uri",
                       finished.tracking_uri, "--max-fpr", "1e-9")
    assert code == 1 and err.startswith("error: --max-fpr 1e-09") and err.count("\n") == 1


@pytest.mark.slow
def test_export_writes_params_for_a_production_fit(finished, capsys, tmp_path):
    target = tmp_path / "best.json"
    code, out, _ = cli(capsys, "export", finished.name, "--tracking-uri", finished.tracking_uri,
                       "--format", "json", "-o", str(target))
    assert code == 0 and str(target) in out
    rec = json.loads(target.read_text())
    assert rec["params"]["min_child_weight"] == 2  # fixed training params come along
    assert {k: rec["params"][k] for k in finished.best.config} == finished.best.config
    assert rec["num_boost_round"] == finished.best.best_round
    assert rec["threshold"] == pytest.approx(finished.best.threshold)
    assert rec["source"]["parent_run_id"] == finished.parent_run_id
    code, out, _ = cli(capsys, "export", finished.name, "--tracking-uri", finished.tracking_uri)
    assert code == 0 and yaml.safe_load(out) == rec


@pytest.mark.slow
def test_report_command_writes_and_logs(finished, capsys, tmp_path):
    from mlflow.tracking import MlflowClient

    code, out, _ = cli(capsys, "report", finished.name, "--tracking-uri", finished.tracking_uri,
                       "--out", str(tmp_path / "rep"))
    assert code == 0 and "Skipped" not in out
    assert (tmp_path / "rep" / "report.html").exists()
    logged = {a.path for a in MlflowClient(finished.tracking_uri).list_artifacts(
        finished.parent_run_id, "report")}
    assert "report/report.html" in logged and "report/pareto.png" in logged


@pytest.mark.slow
def test_unknown_job_exits_1_with_one_line(finished, capsys):
    code, _, err = cli(capsys, "best", "nope", "--tracking-uri", finished.tracking_uri)
    assert code == 1 and err == "error: no tuning job named 'nope' (run name or experiment) " \
                                "and no run with that id in the tracking store\n"
    assert not math.isnan(finished.best.best_value)
