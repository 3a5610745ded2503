"""Data-parallel trials (``resources.workers``) on sharded Parquet input, read by the workers.

One 2-core local job: one trial (the baseline point) as a 2-worker Ray Train run (two
0.9-CPU workers and the coordinator's 0.1 fill the machine) on a folder of Parquet
shards, failing once at round 8 (after its round-5 checkpoint) and retried from that
checkpoint. The driver plans the shards (:mod:`trainables.shards`) and never reads the
table whole, the hand-over to MLflow included; the workers read their rows with Ray
Data, the test rows never among them; the trial is one child run with its metric
history, its metrics are those of the whole validation split, the refit is a
data-parallel run too, and the best model loads and scores the test split.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
import xgboost as xgb
from mlflow.tracking import MlflowClient

from trainables.cv import Part, score_round
from trainables.data import make_synthetic
from trainables.events import read_events
from trainables.lockstep import load_checkpoint
from trainables.shards import split_frame
from tuning.job.lifecycle import run_job
from tuning.job.preflight import STREAMED_TAG, load_data
from tuning.job.tuner import train_settings
from tuning.spec import parse_spec
from tuning.tracking.tags import NODE_TAG, PARENT_TAG, TRIAL_TAG

from conftest import full_reads, new_store

JOB = {
    "name": "dp",
    "objective": {"metric": "aucpr"},
    "search_space": {"eta": {"type": "loguniform", "low": 0.1, "high": 0.3},
                     "max_depth": {"type": "randint", "low": 2, "high": 4}},
    "search": {"algorithm": "random", "seed": 0},
    "scheduler": {"type": "fifo"},
    "training": {"num_boost_round": 10, "report_every": 5, "checkpoint_every": 1, "fail_at_round": 8},
    "evaluation": {"cv": 1},
    "budget": {"num_samples": 1},
    "resources": {"workers": 2, "cpu": 0.9},
}


@pytest.fixture(scope="module")
def dp_job(ray_session, session_events_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dp-job")
    frame = make_synthetic(rows=3000, fraud_rate=0.05, seed=4)
    (tmp / "shards").mkdir()
    for i in range(3):
        frame.iloc[i::3].to_parquet(tmp / "shards" / f"part-{i}.parquet")
    uri = new_store(tmp)
    spec = parse_spec({**JOB, "data": {"path": str(tmp / "shards"), "min_positives": 5},
                       "tracking": {"tracking_uri": uri}, "storage": {"path": str(tmp / "runs")}})
    for path in session_events_dir.iterdir():
        path.unlink()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)  # a SQLite store keeps artifacts under ./mlruns
        result = run_job(spec, progress=False)
    return result, spec, uri, read_events(session_events_dir)


def test_the_driver_plans_the_shards_and_never_reads_the_table(dp_job):
    result, spec, uri, events = dp_job
    names = [e["event"] for e in events]
    assert names.count("data.shard_pass") == 2 and "data.split_scored" in names
    # Neither the refit, the verdict nor the hand-over (data record, input example).
    assert "data.full_read" not in names, names
    assert "data.head_read" in names, "the hand-over read the shards' head instead"
    assert MlflowClient(uri).get_run(result.parent_run_id).data.tags[STREAMED_TAG] == "true"


def test_workers_see_the_training_and_validation_rows_and_never_a_test_row(dp_job):
    _, spec, _, events = dp_job
    data = load_data(spec)
    seen = [e for e in events if e["event"] == "data.worker_rows"]
    runs = [seen[i:i + 2] for i in range(0, len(seen), 2)]  # two workers per Train run
    assert len(runs) == 3, "the trial, its retry and the refit"
    for pair in runs:
        assert sum(e["train"] for e in pair) == len(data.train.y)
        assert sum(e["train_positives"] for e in pair) == int(data.train.y.sum())
        assert sum(e["val"] for e in pair) == len(data.val.y)
        assert [e["test"] for e in pair] == [0, 0]
    # Every worker of the trial (and its retry) scored the whole validation split.
    assembled = [e for e in events if e["event"] == "data.val_assembled"]
    assert len(assembled) == 4 and {(e["rows"], e["positives"]) for e in assembled} == {
        (len(data.val.y), int(data.val.y.sum()))}
    assert len(data.train.y) + len(data.val.y) + len(data.test.y) == 3000
    assert [e["workers"] for e in events if e["event"] == "refit.data_parallel"] == [2]


def test_every_trial_is_one_child_run_with_its_history_and_worker_nodes(dp_job):
    result, _, uri, _ = dp_job
    client = MlflowClient(uri)
    children = client.search_runs([result.experiment_id], f"tags.`{PARENT_TAG}` = '{result.parent_run_id}'")
    assert len(children) == 1 == len(result.trials)
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
    result, spec, uri, _ = dp_job
    client = MlflowClient(uri)
    data = load_data(spec)
    settings = train_settings(spec, data)
    val_X, val_y = split_frame(data, "val")
    checkpoints = sorted(Path(result.experiment_dir).glob("*/checkpoint_*/model.ubj"))
    assert checkpoints
    for model_file in checkpoints:
        (booster,), _ = load_checkpoint(model_file.parent, 1)
        rounds = booster.num_boosted_rounds()
        scores = booster.predict(xgb.DMatrix(val_X, enable_categorical=True))
        expected = score_round([Part(None, None, None, val_y, None)], [scores], settings)
        trial_dir = model_file.parent.parent.name
        child = next(c for c in client.search_runs([result.experiment_id], f"tags.`{PARENT_TAG}` = "
                                                   f"'{result.parent_run_id}'")
                     if c.data.tags[TRIAL_TAG] in trial_dir)
        logged = {m.step: m.value for m in client.get_metric_history(child.info.run_id, "val_aucpr")}
        assert logged[rounds] == pytest.approx(expected["val_aucpr"], rel=1e-6)
        logged_recall = {m.step: m.value for m in client.get_metric_history(child.info.run_id, "val_recall")}
        assert logged_recall[rounds] == pytest.approx(expected["val_recall"], rel=1e-6)


def test_best_model_loads_and_scores_the_test_split(dp_job):
    result, spec, uri, _ = dp_job
    assert result.best is not None and 0.0 <= result.test_metrics["aucpr"] <= 1.0
    mlflow.set_tracking_uri(uri)
    model = mlflow.xgboost.load_model(f"runs:/{result.parent_run_id}/booster")
    test_X, test_y = split_frame(load_data(spec), "test")
    scores = model.predict(xgb.DMatrix(test_X, enable_categorical=True))
    assert scores.shape == (len(test_y),) and np.all((scores >= 0) & (scores <= 1))
    # The verdict scored the same rows with the refit booster the parent run holds.
    from trainables.metrics import average_precision

    assert average_precision(test_y, scores) == pytest.approx(result.test_metrics["aucpr"], rel=1e-6)


def test_workers_must_be_positive_and_data_parallel_trials_need_one_holdout():
    from tuning.errors import SpecError
    from tuning.job.tuner import data_parallel_trainable

    with pytest.raises(SpecError, match="workers"):
        parse_spec({**JOB, "data": {"source": "synthetic"}, "resources": {"workers": 0}})
    spec = parse_spec({**JOB, "data": {"source": "synthetic"}, "evaluation": {"cv": 3}})
    with pytest.raises(SpecError, match="evaluation.cv: 1"):
        data_parallel_trainable(spec, None, None)


def test_no_train_placement_group_outlives_its_trial(dp_job):
    """Both Train runs of the trial (the failed one and its retry) handed their worker
    placement group to the coordinator, and none is still reserved after the job."""
    from ray.util.placement_group import placement_group_table

    _, _, _, events = dp_job
    recorded = [e["id"] for e in events if e["event"] == "trial.placement_group"]
    assert len(recorded) == 2, recorded  # the run that failed at round 8, then its retry
    table = placement_group_table()
    assert {table[pg]["state"] for pg in recorded} == {"REMOVED"}
    # The refit's Train group too: every group of 0.9-CPU workers (this file's jobs only;
    # other files' groups on the session's Ray are not this test's subject).
    workers = [t for t in table.values() if any(b.get("CPU") == 0.9 for b in t["bundles"].values())]
    assert len(workers) >= 3 and {t["state"] for t in workers} == {"REMOVED"}, workers


def test_a_placement_group_left_by_a_dead_run_is_removed_by_the_coordinator(ray_session):
    """The coordinator's safety net, on a real group: what a controller that died before
    removing its own would leave (Ray Train's cleaner cannot see it die without the
    dashboard's state API)."""
    from ray.util.placement_group import placement_group, placement_group_table

    from trainables.data_parallel import DataParallelTrial

    pg = placement_group([{"CPU": 0.01}])
    ray_session.get(pg.ready(), timeout=60)
    trial = DataParallelTrial.__new__(DataParallelTrial)  # no Tune actor: the method alone
    trial.placement_groups = [pg]
    trial._remove_placement_groups()
    assert placement_group_table(pg)["state"] == "REMOVED"
    assert trial.placement_groups == []
    trial.placement_groups = [pg]
    trial._remove_placement_groups()  # already removed: nothing to do, no error


@pytest.mark.parametrize(("nodes", "resources", "warns"), [
    # Seen for real (tests/tuning/test_gpu_placement.py before cpu: 0.9): a coordinator on
    # one GPU node left one place for two workers, and the Train run never started.
    ([{"CPU": 1}, {"CPU": 1, "GPU": 1}, {"CPU": 1, "GPU": 1}], {"cpu": 1, "gpu": 0.5}, True),
    ([{"CPU": 1}, {"CPU": 1, "GPU": 1}, {"CPU": 1, "GPU": 1}], {"cpu": 0.9, "gpu": 0.5}, False),
    ([{"CPU": 1}, {"CPU": 1}, {"CPU": 1}], {"cpu": 1}, False),  # 3 places, one trial: one to spare
    ([{"CPU": 2}], {"cpu": 1}, True),  # one 2-core machine
    ([{"CPU": 2}], {"cpu": 0.9}, False),
])
def test_a_coordinator_that_may_take_a_workers_place_is_warned_about(nodes, resources, warns):
    from tuning.job.tuner import placement_warning

    spec = parse_spec({**JOB, "data": {"source": "synthetic"},
                       "resources": {"workers": 2, **resources}})
    message = placement_warning(spec, nodes, at_once=1)
    assert (message is not None) == warns, message
    if warns:
        assert f"resources.cpu {resources['cpu'] - 0.1:g}" in message and "\n" not in message
    one_process = {k: v for k, v in JOB.items() if k != "resources"}
    assert placement_warning(parse_spec({**one_process, "data": {"source": "synthetic"}}), nodes, 1) is None


def test_the_report_draws_the_test_curves_without_reading_the_shards(dp_job, tmp_path, job_events):
    from trainables.events import read_events
    from tuning.report.build import build_report
    from tuning.report.data import rescored_test_curve
    from tuning.tracking.store import load_job

    result, _, uri, _ = dp_job
    report = build_report(uri, result.parent_run_id, out_dir=tmp_path / "report", log=False)
    assert "pr_roc" not in report.skipped, report.skipped  # the test-split curves
    assert full_reads(job_events) == 0, "the report read the table whole"
    scored = lambda: [e for e in read_events(job_events) if e["event"] == "data.split_scored"]  # noqa: E731
    assert scored() == [], "the report scored the test split again instead of the verdict's scores"
    # Control: rescoring (a job logged before the verdict kept the labels) reads the shards'
    # test rows batch by batch, never the table whole, and the event shows it.
    curve, _ = rescored_test_curve(load_job(uri, result.parent_run_id))
    assert [e["split"] for e in scored()] == ["test"] and full_reads(job_events) == 0
    assert curve.average_precision() == pytest.approx(result.test_metrics["aucpr"], rel=1e-6)
