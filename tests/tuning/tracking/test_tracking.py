"""The MLflow writer against a real SQLite store: structure, counts, no duplicates."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from tuning.tracking.tags import PARENT_TAG, TRIAL_TAG
from tuning.tracking.writer import Record, RunWriter, metrics_of


def _parent(uri: str) -> tuple[str, str]:
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("t")
    return experiment_id, client.create_run(experiment_id).info.run_id


def _children(uri: str, experiment_id: str, parent: str):
    return MlflowClient(uri).search_runs(
        [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent}'")


def _job(writer: RunWriter, trials: list[str], steps: range) -> None:
    for trial in trials:
        writer.submit(Record("start", trial, params={"eta": 0.1, "max_depth": 3},
                             tags={"mlflow.runName": trial}, timestamp=1))
    for step in steps:
        for trial in trials:
            writer.submit(Record("metrics", trial, step=step,
                                 metrics={"val_aucpr": step / 100, "val_f1": 0.5}, timestamp=2))


def test_metrics_of_keeps_numeric_validation_keys():
    result = {"val_aucpr": 0.5, "val_x": "str", "training_done": True, "train_time_s": 1,
              "time_total_s": 3.0, "val_flag": True}
    assert metrics_of(result) == {"val_aucpr": 0.5, "train_time_s": 1.0}


def test_child_runs_params_metrics_and_status(tracking_uri):
    experiment_id, parent = _parent(tracking_uri)
    writer = RunWriter(tracking_uri, experiment_id, parent)
    writer.start()
    _job(writer, ["a", "b", "c"], range(10, 60, 10))
    writer.submit(Record("end", "a", status="FINISHED", timestamp=3))
    writer.submit(Record("end", "b", status="KILLED", tags={"tuning.stopped_early": "true"},
                         timestamp=3))
    writer.submit(Record("end", "c", status="FAILED", tags={"tuning.error": "boom"}, timestamp=3))
    assert writer.close(timeout=60) == 0

    runs = {r.data.tags[TRIAL_TAG]: r for r in _children(tracking_uri, experiment_id, parent)}
    assert set(runs) == {"a", "b", "c"}
    client = MlflowClient(tracking_uri)
    for run in runs.values():
        history = client.get_metric_history(run.info.run_id, "val_aucpr")
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == [10, 20, 30, 40, 50]
        assert run.data.params == {"eta": "0.1", "max_depth": "3"}
    assert runs["a"].info.status == "FINISHED"
    assert runs["b"].info.status == "KILLED"
    assert runs["b"].data.tags["tuning.stopped_early"] == "true"
    assert runs["c"].info.status == "FAILED"
    assert runs["c"].data.tags["tuning.error"] == "boom"
    assert writer.stats["metric_points"] == 3 * 5 * 2


def test_restarted_writer_continues_runs_without_duplicates(tracking_uri):
    experiment_id, parent = _parent(tracking_uri)
    first = RunWriter(tracking_uri, experiment_id, parent)
    first.start()
    _job(first, ["a", "b"], range(10, 40, 10))
    first.close(timeout=60)

    # A resumed driver replays from the last checkpoint: steps 20 and 30 come again.
    second = RunWriter(tracking_uri, experiment_id, parent)
    second.start()
    _job(second, ["a", "b"], range(20, 60, 10))
    second.close(timeout=60)

    runs = _children(tracking_uri, experiment_id, parent)
    assert len(runs) == 2
    client = MlflowClient(tracking_uri)
    for run in runs:
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "val_aucpr"))
        assert steps == [10, 20, 30, 40, 50]
    assert second.stats["skipped_duplicates"] == 4


def test_flush_waits_for_everything(tracking_uri):
    experiment_id, parent = _parent(tracking_uri)
    writer = RunWriter(tracking_uri, experiment_id, parent)
    writer.start()
    _job(writer, [f"t{i}" for i in range(5)], range(1, 31))
    assert writer.flush(timeout=60) == 0
    assert writer.stats["metric_points"] == 5 * 30 * 2
    writer.close()


def test_end_of_job_waits_for_the_store_only_flush_timeout_s_in_all(tracking_uri, monkeypatch):
    """The callback's end-of-experiment flush and the job's close share one budget
    (tracking.flush_timeout_s); it used to wait a fixed 60 s first, whatever the spec said."""
    from tuning.tracking.callback import MlflowTrackingCallback

    experiment_id, parent = _parent(tracking_uri)
    callback = MlflowTrackingCallback(tracking_uri, experiment_id, parent, "job",
                                      flush_timeout_s=0.5)
    # A writer whose thread never runs: like a store that is down, nothing gets written.
    callback.writer = RunWriter(tracking_uri, experiment_id, parent)
    waits: list[float] = []
    flush = callback.writer.flush
    monkeypatch.setattr(callback.writer, "flush",
                        lambda timeout=None: waits.append(timeout) or flush(timeout))
    callback.writer.submit(Record("start", "t0", params={"eta": 0.1}, timestamp=1))
    assert callback.end_wait_left() == 0.5, "before the end, the whole budget is left"
    callback.on_experiment_end(trials=[])
    assert waits and 0 < waits[0] <= 0.5
    assert callback.end_wait_left() == 0.0, "the budget is spent: close() waits no more"
    assert callback.close(timeout=callback.end_wait_left()) == 1, "the record is counted unwritten"
