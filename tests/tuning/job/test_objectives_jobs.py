"""Every objective runs a tiny real job; a messy CSV runs end to end untouched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from trainables.objectives import OBJECTIVES
from tuning.spec import parse_spec
from tuning.job.lifecycle import run_job
from tuning.tracking.tags import PARENT_TAG

from conftest import new_store

pytestmark = pytest.mark.slow


def _spec(tmp_path: Path, **overrides) -> dict:
    spec = {
        "name": "obj",
        "data": {"rows": 4000, "fraud_rate": 0.04, "seed": 5},
        "search_space": {"eta": {"type": "loguniform", "low": 0.1, "high": 0.5},
                         "max_depth": 3},
        "search": {"algorithm": "random", "seed": 0},
        "scheduler": {"type": "fifo"},
        "training": {"num_boost_round": 20, "report_every": 10},
        "budget": {"num_samples": 2, "max_concurrent": 2},
        "evaluation": {"bootstrap": 20, "cv": 1},
        "tracking": {"tracking_uri": new_store(tmp_path), "log_model": False},
        "storage": {"path": str(tmp_path / "runs")},
    }
    spec.update(overrides)
    return spec


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_each_objective_runs_and_logs_its_threshold(objective, ray_session, tmp_path):
    settings = {"metric": objective, "max_fpr": 0.01, "min_recall": 0.5}
    if objective == "cost":
        settings["amount_column"] = "Amount"
    result = run_job(parse_spec(_spec(tmp_path, objective=settings)), progress=False)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    key = f"val_{objective}"
    children = client.search_runs([result.experiment_id],
                                  f"tags.`{PARENT_TAG}` = '{result.parent_run_id}'")
    assert len(children) == 2
    for child in children:
        assert key in child.data.metrics
        assert 0.0 <= child.data.metrics["val_threshold"] <= 1.0 + 1e-9
    parent = client.get_run(result.parent_run_id)
    assert parent.data.params["objective"] == objective
    assert parent.data.params["mode"] == OBJECTIVES[objective].mode
    assert float(parent.data.params["best.threshold"]) == pytest.approx(result.best.threshold)
    values = [c.data.metrics[key] for c in children]
    best_value = max(values) if OBJECTIVES[objective].mode == "max" else min(values)
    # The best trial is judged on its best report, which is at least the final one.
    assert result.best.best_value == pytest.approx(best_value) or (
        result.best.best_value > best_value if OBJECTIVES[objective].mode == "max"
        else result.best.best_value < best_value)
    # The verdict uses the trial's threshold and logs its artifacts on the parent.
    assert result.verdict["threshold"] == pytest.approx(result.best.threshold)
    artifacts = {a.path for a in client.list_artifacts(result.parent_run_id, "verdict")}
    assert {"verdict/test_report.json", "verdict/threshold_table.csv",
            "verdict/pr_roc.png"} <= artifacts
    low, high = result.verdict["intervals"]["aucpr"]
    assert low <= result.verdict["metrics"]["aucpr"] <= high
    assert parent.data.metrics["test_aucpr_ci_low"] == pytest.approx(low)


def _messy_csv(path: Path, rows: int = 3000) -> None:
    rng = np.random.default_rng(0)
    fraud = rng.random(rows) < 0.05
    frame = pd.DataFrame({
        "transaction id": np.arange(rows),
        "merchant category": rng.choice(["grocery", "travel", "online", "fuel"], rows),
        "card present": rng.choice(["yes", "no"], rows),
        "amount": np.round(rng.lognormal(3, 1, rows) * np.where(fraud, 3, 1), 2),
        "hour": rng.integers(0, 24, rows),
        "velocity 24h": rng.poisson(2, rows) + fraud * rng.poisson(4, rows),
        "is_fraud": np.where(fraud, "Y", "N"),
    })
    frame.loc[rng.random(rows) < 0.1, "amount"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "merchant category"] = None
    frame.to_csv(path, index=False)


def test_messy_csv_runs_end_to_end(ray_session, tmp_path):
    _messy_csv(tmp_path / "transactions.csv")
    spec = _spec(tmp_path, data={"path": str(tmp_path / "transactions.csv"), "target": "is_fraud",
                                 "drop": ["transaction id"]},
                 tracking={"tracking_uri": new_store(tmp_path)})
    result = run_job(parse_spec(spec), progress=False)
    assert result.count("FINISHED") == 2
    assert 0.0 < result.test_metrics["aucpr"] <= 1.0
    report = json.loads((Path(result.experiment_dir) / "verdict" / "test_report.json").read_text())
    assert report["positives"] > 0
    import mlflow.xgboost

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    model = mlflow.xgboost.load_model(f"runs:/{result.parent_run_id}/booster")
    assert "transaction id" not in model.feature_names
    assert "merchant category" in model.feature_names
