"""Data-parallel trials (``resources.workers``): each trial a 2-worker Ray Train run.

One 2-core local job, 2 trials run one after the other (two 0.9-CPU workers and the
coordinator's 0.1 fill the machine), each failing once at round 8 (after its round-5
checkpoint): every trial is retried from that checkpoint and is one child run with its
metric history, its metrics are those of the whole validation split, and the best
model loads and scores the test split.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
import xgboost as xgb
from mlflow.tracking import MlflowClient

from trainables.cv import Part, score_round
from trainables.lockstep import load_checkpoint
from tuning.job.lifecycle import run_job
from tuning.job.preflight import load_data
from tuning.job.tuner import train_settings
from tuning.spec import parse_spec
from tuning.tracking.tags import NODE_TAG, PARENT_TAG, TRIAL_TAG

JOB = {
    "name": "dp",
    "data": {"source": "synthetic", "rows": 3000, "fraud_rate": 0.05, "seed": 4},
    "objective": {"metric": "aucpr"},
    "search_space": {"eta": {"type": "loguniform", "low": 0.1, "high": 0.3},
                     "max_depth": {"type": "randint", "low": 2, "high": 4}},
    "search": {"algorithm": "random", "seed": 0},
    "scheduler": {"type": "fifo"},
    "training": {"num_boost_round": 10, "report_every": 5, "checkpoint_every": 1, "fail_at_round": 8},
    "evaluation": {"cv": 1},
    "budget": {"num_samples": 2},
    "resources": {"workers": 2, "cpu": 0.9},
}


@pytest.fixture(scope="module")
def dp_job(ray_session, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dp-job")
    uri = f"sqlite:///{tmp}/mlflow.db"
    spec = parse_spec({**JOB, "tracking": {"tracking_uri": uri}, "storage": {"path": str(tmp / "runs")}})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)  # a SQLite store keeps artifacts under ./mlruns
        return run_job(spec, progress=False), spec, uri


def test_every_trial_is_one_child_run_with_its_history_and_worker_nodes(dp_job):
    result, _, uri = dp_job
    client = MlflowClient(uri)
    children = client.search_runs([result.experiment_id], f"tags.`{PARENT_TAG}` = '{result.parent_run_id}'")
    assert len(children) == 2 == len(result.trials)
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["tuning.restored_from_round"] == "5", "resumed from its checkpoint"
        assert [m.step for m in client.get_metric_history(child.info.run_id, "val_aucpr")] == [5, 10]
        # What single-worker trials report too (tuning best --max-scoring-ms reads them).
        assert child.data.metrics["val_scoring_ms"] > 0 < child.data.metrics["val_scoring_ms_at_best"]
        nodes = child.data.tags[NODE_TAG].split(",")
        assert len(nodes) == 2 and all(nodes), "one node id per worker, in rank order"


def test_reported_metrics_are_those_of_the_whole_validation_split(dp_job):
    """The last checkpoint's booster, scored in one process on the full split, gives the
    metrics the trial reported at that round."""
    result, spec, uri = dp_job
    client = MlflowClient(uri)
    data = load_data(spec)
    settings = train_settings(spec, data)
    checkpoints = sorted(Path(result.experiment_dir).glob("*/checkpoint_*/model.ubj"))
    assert checkpoints
    for model_file in checkpoints:
        (booster,), _ = load_checkpoint(model_file.parent, 1)
        rounds = booster.num_boosted_rounds()
        scores = booster.predict(xgb.DMatrix(data.val.X, enable_categorical=True))
        expected = score_round([Part(None, None, None, data.val.y, data.val.amount)], [scores], settings)
        trial_dir = model_file.parent.parent.name
        child = next(c for c in client.search_runs([result.experiment_id], f"tags.`{PARENT_TAG}` = "
                                                   f"'{result.parent_run_id}'")
                     if c.data.tags[TRIAL_TAG] in trial_dir)
        logged = {m.step: m.value for m in client.get_metric_history(child.info.run_id, "val_aucpr")}
        assert logged[rounds] == pytest.approx(expected["val_aucpr"], rel=1e-6)
        logged_recall = {m.step: m.value for m in client.get_metric_history(child.info.run_id, "val_recall")}
        assert logged_recall[rounds] == pytest.approx(expected["val_recall"], rel=1e-6)


def test_best_model_loads_and_scores_the_test_split(dp_job):
    result, spec, uri = dp_job
    assert result.best is not None and 0.0 <= result.test_metrics["aucpr"] <= 1.0
    mlflow.set_tracking_uri(uri)
    model = mlflow.xgboost.load_model(f"runs:/{result.parent_run_id}/booster")
    data = load_data(spec)
    scores = model.predict(xgb.DMatrix(data.test.X, enable_categorical=True))
    assert scores.shape == (len(data.test.y),) and np.all((scores >= 0) & (scores <= 1))


def test_workers_must_be_positive_and_data_parallel_trials_need_one_holdout():
    from tuning.errors import SpecError
    from tuning.job.tuner import data_parallel_trainable

    with pytest.raises(SpecError, match="workers"):
        parse_spec({**JOB, "resources": {"workers": 0}})
    spec = parse_spec({**JOB, "evaluation": {"cv": 3}})
    with pytest.raises(SpecError, match="evaluation.cv: 1"):
        data_parallel_trainable(spec, None, None)
