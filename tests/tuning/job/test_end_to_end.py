"""A small real job (Ray, XGBoost, SQLite MLflow) read back from the store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow.xgboost
import pytest
import xgboost as xgb
from mlflow.tracking import MlflowClient

from tuning.spec import parse_spec
from tuning.job.lifecycle import run_job
from tuning.tracking.tags import PARENT_TAG, TRIAL_TAG

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]


def tiny_spec(uri: str, **sections) -> dict:
    spec = {
        "name": "tiny",
        "data": {"rows": 6000, "fraud_rate": 0.03, "seed": 1},
        "search_space": {
            "eta": {"type": "loguniform", "low": 0.05, "high": 0.5},
            "max_depth": {"type": "randint", "low": 2, "high": 6},
        },
        "search": {"algorithm": "tpe", "seed": 0, "n_initial_points": 3},
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        "training": {"num_boost_round": 40, "report_every": 10},
        "evaluation": {"cv": 1},  # CV is not this test's subject
        "budget": {"num_samples": 6, "max_concurrent": 2},
        "tracking": {"tracking_uri": uri},
    }
    spec.update(sections)
    return spec


@pytest.fixture(scope="module")
def finished_job(tmp_path_factory, ray_session):
    folder = tmp_path_factory.mktemp("e2e")
    uri = f"sqlite:///{folder}/mlflow.db"
    spec = parse_spec(tiny_spec(uri, storage={"path": str(folder / "runs")}))
    return run_job(spec, progress=False), uri


def test_store_holds_parent_and_one_child_per_trial(finished_job):
    result, uri = finished_job
    client = MlflowClient(uri)
    parents = client.search_runs([result.experiment_id], "tags.`tuning.role` = 'parent'")
    assert [p.info.run_id for p in parents] == [result.parent_run_id]
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["tuning.searcher"] == "tpe"
    assert parent.data.tags["tuning.scheduler"] == "asha"
    assert parent.data.tags["tuning.data_hash"]
    assert "spec.yaml" in {a.path for a in client.list_artifacts(result.parent_run_id)}

    children = client.search_runs([result.experiment_id],
                                  f"tags.`{PARENT_TAG}` = '{result.parent_run_id}'")
    assert len(children) == 6
    assert {c.data.tags[TRIAL_TAG] for c in children} == {t.trial_id for t in result.trials}
    for child in children:
        history = client.get_metric_history(child.info.run_id, "val_aucpr")
        assert history, "every trial has a metric history"
        assert all(m.step % 10 == 0 or m.step == 40 for m in history)
        assert set(child.data.params) == {"eta", "max_depth"}
        assert child.info.status in {"FINISHED", "KILLED"}


def test_early_stopped_trials_are_marked(finished_job):
    result, uri = finished_job
    client = MlflowClient(uri)
    children = client.search_runs([result.experiment_id],
                                  f"tags.`{PARENT_TAG}` = '{result.parent_run_id}'")
    killed = [c for c in children if c.info.status == "KILLED"]
    assert killed, "ASHA with reduction factor 2 stops some of 6 trials"
    for child in killed:
        assert child.data.tags["tuning.stopped_early"] == "true"
        last_round = int(child.data.tags["tuning.stopped_at_round"])
        assert last_round < 40
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_aucpr")]
        assert max(steps) == last_round
    assert result.count("KILLED") == len(killed)


def test_best_model_and_test_metrics_on_parent(finished_job):
    result, uri = finished_job
    client = MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["tuning.best_trial_id"] == result.best.trial_id
    assert parent.data.metrics["best_val_aucpr"] == pytest.approx(result.best.best_value)
    for key in ("test_aucpr", "test_roc_auc", "test_precision", "test_recall", "test_f1"):
        assert 0.0 <= parent.data.metrics[key] <= 1.0
    assert parent.data.params["best.max_depth"] == str(result.best.config["max_depth"])

    mlflow.set_tracking_uri(uri)
    model = mlflow.xgboost.load_model(f"runs:/{result.parent_run_id}/booster")
    from tuning.job.preflight import load_data
    from tuning.spec import parse_spec as reparse

    data = load_data(reparse(tiny_spec(uri)))
    scores = model.predict(xgb.DMatrix(data.test.X.head(50), enable_categorical=True))
    assert scores.shape == (50,)
    assert ((scores >= 0) & (scores <= 1)).all()


def test_cli_quick_example_six_samples(tmp_path):
    """The issue's acceptance command, as a user types it, in a fresh process."""
    db = tmp_path / "X.db"
    proc = subprocess.run(
        [sys.executable, "-m", "tuning.cli", "run", str(ROOT / "examples" / "quick.yaml"),
         "--num-samples", "6", "--tracking-uri", f"sqlite:///{db}", "-q",
         "--storage", str(tmp_path / "runs")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("quick")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("tuning.role") == "parent"]
    children = [r for r in runs if r.data.tags.get(PARENT_TAG)]
    assert len(parents) == 1 and len(children) == 6
    assert all(c.data.tags[PARENT_TAG] == parents[0].info.run_id for c in children)
    for child in children:
        assert client.get_metric_history(child.info.run_id, "val_aucpr")
    assert "MLflow parent run: " + parents[0].info.run_id in proc.stdout
