"""MLflow outages against a real ``mlflow server``: stop it mid-job, count what arrives."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from trainables.events import read_events
from tuning.cli import main
from tuning.spec import parse_spec
from tuning.job.lifecycle import run_job
from tuning.server import ServerSettings, TrackingServer, free_port
from tuning.tracking.tags import PARENT_TAG
from tuning.tracking.writer import metrics_of

from conftest import new_store, record_fault
from faults import held, wait_for

pytestmark = pytest.mark.slow

SPEC = {
    "name": "outage",
    "data": {"rows": 10000, "fraud_rate": 0.02, "seed": 4},
    "search_space": {"eta": {"type": "loguniform", "low": 0.05, "high": 0.3},
                     "max_depth": 6},
    "search": {"algorithm": "random", "seed": 2},
    "scheduler": {"type": "fifo"},
    "training": {"num_boost_round": 200, "report_every": 20, "checkpoint_every": 10},
    "evaluation": {"cv": 1},  # CV is not this test's subject
    "budget": {"num_samples": 6, "max_concurrent": 2},
}
HOLD_ROUND = 100  # half-way: results before and after the outage


def _expected_points(job_dir: Path) -> tuple[int, int]:
    """Trials and metric values Ray Tune itself recorded (the ground truth)."""
    trials = points = 0
    for result_file in job_dir.glob("*/result.json"):
        trials += 1
        for line in result_file.read_text().splitlines():
            points += len(metrics_of(json.loads(line)))
    return trials, points


def _results(folder: Path) -> list[dict]:
    """Every result in Tune's files below ``folder`` (a job folder or the storage root)."""
    return [json.loads(line) for f in folder.rglob("result.json")
            for line in f.read_text().splitlines()]


def _logged(uri: str, experiment_id: str, parent: str) -> tuple[int, int, int]:
    """Child runs, metric values, and duplicated (key, step) pairs in the store."""
    client = MlflowClient(uri)
    runs = client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{parent}'")
    points = duplicates = 0
    for run in runs:
        for key in run.data.metrics:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            points += len(steps)
            duplicates += len(steps) - len(set(steps))
    return len(runs), points, duplicates


def _server(tmp_path: Path, port: int) -> TrackingServer:
    """A server on ``tmp_path``'s store: a new one the first time, the same one after."""
    store = (f"sqlite:///{tmp_path}/store.db" if (tmp_path / "store.db").exists()
             else new_store(tmp_path, "store.db"))
    settings = ServerSettings(port=port, backend_store_uri=store,
                              artifacts_destination=str(tmp_path / "artifacts"), workers=1)
    return TrackingServer(settings, log_path=tmp_path / f"server-{time.monotonic()}.log")


def _outage_at_events(server: TrackingServer, tmp_path: Path, port: int, restart: bool,
                      events_dir: Path, marks: dict) -> None:
    """Stop the server while trials are held mid-training; restart it once they trained on.

    Every trial is held at round HOLD_ROUND (see ``_job_with_outage``). Once two are held and
    the writer has written to the store, the server stops; then the trials are let
    go, and the server comes back (if asked) only after the writer has failed and
    Tune has recorded results produced during the outage.
    """
    wait_for(lambda: len(held(events_dir)) >= 2 and _events(events_dir, "tracking.written"),
             f"two trials held at round {HOLD_ROUND} with results written to MLflow")
    marks["stopped"] = time.time()  # requests fail from the first signal on
    server.stop()
    (events_dir / "hold-trial.round.json").unlink()
    wait_for(lambda: _events(events_dir, "tracking.write_failed", after=marks["stopped"]),
             "the writer meeting the stopped server")
    wait_for(lambda: [e for e in _events(events_dir, "trial.reported", after=marks["stopped"])
                      if e["round"] > HOLD_ROUND], "results produced during the outage")
    if restart:
        marks["server"] = _server(tmp_path, port).start()
        marks["restarted"] = time.time()


def _events(events_dir: Path, name: str, after: float = 0.0) -> list[dict]:
    return [e for e in read_events(events_dir) if e["event"] == name and e["time"] > after]


def _job_with_outage(tmp_path: Path, events_dir: Path, restart: bool,
                     flush_timeout_s: float) -> tuple:
    """Run a job against a real server that a second thread stops mid-job."""
    port = free_port()
    server = _server(tmp_path, port).start()
    marks: dict = {}
    spec = parse_spec({**SPEC, "tracking": {"tracking_uri": server.url,
                                            "flush_timeout_s": flush_timeout_s},
                       "storage": {"path": str(tmp_path / "runs")}})
    (events_dir / "hold-trial.round.json").write_text(json.dumps({"when": {"round": HOLD_ROUND}}))
    chaos = threading.Thread(target=_outage_at_events,
                             args=(server, tmp_path, port, restart, events_dir, marks))
    chaos.start()
    try:
        result = run_job(spec, progress=False)
        marks["job_done"] = time.time()
    finally:
        chaos.join()
    return result, marks, port


def test_outage_mid_job_loses_nothing(ray_session, tmp_path, job_events):
    # The end of the job waits (up to flush_timeout_s) for the store to come back.
    result, events, _ = _job_with_outage(tmp_path, job_events, restart=True,
                                         flush_timeout_s=600)
    restarted = events["server"]
    try:
        assert events["stopped"] < events["restarted"] < events["job_done"]
        # Trials kept running while the store was down.
        during = [e for e in _events(job_events, "trial.reported", after=events["stopped"])
                  if e["time"] < events["restarted"]]
        assert during, "results were produced during the outage"
        assert result.unlogged_records == 0
        trials, points = _expected_points(Path(result.experiment_dir))
        runs, logged, duplicates = _logged(restarted.url, result.experiment_id,
                                           result.parent_run_id)
        assert trials == 6
        assert (runs, logged, duplicates) == (trials, points, 0)
        record_fault("MLflow server stopped mid-job, restarted after results piled up",
                     trials=trials, child_runs=runs, points_expected=points, points=logged,
                     missing=points - logged, duplicated=duplicates,
                     event=f"2 trials held at trial.round={HOLD_ROUND}; server back after "
                           f"tracking.write_failed and results past round {HOLD_ROUND}",
                     outcome="buffered and written on return")
        parent = MlflowClient(restarted.url).get_run(result.parent_run_id)
        assert parent.info.status == "FINISHED"
    finally:
        restarted.stop()


def test_store_that_never_returns_then_sync(ray_session, tmp_path, job_events, capsys):
    result, events, port = _job_with_outage(tmp_path, job_events, restart=False,
                                            flush_timeout_s=3)
    assert events["stopped"] < events["job_done"], "the outage happened mid-job"
    assert result.unlogged_records > 0, "the job finished and says what it could not log"

    back = _server(tmp_path, port).start()
    try:
        assert main(["sync", result.experiment_dir, "--tracking-uri", back.url]) == 0
        out = capsys.readouterr().out
        assert "parent run completed" in out
        trials, points = _expected_points(Path(result.experiment_dir))
        assert _logged(back.url, result.experiment_id, result.parent_run_id) == (trials, points, 0)
        record_fault("MLflow server stopped mid-job, never back; `tuning sync` later",
                     trials=trials, child_runs=trials, points_expected=points, points=points,
                     missing=0, duplicated=0, event=f"2 trials held at trial.round={HOLD_ROUND}",
                     unlogged_at_job_end=result.unlogged_records,
                     outcome="job finished, reported what it could not log; sync replayed it")
        # A second sync finds nothing to add.
        assert main(["sync", result.experiment_dir, "--tracking-uri", back.url]) == 0
        assert "0 runs created, 0 metric values logged, 0 statuses fixed" in \
            capsys.readouterr().out
        assert _logged(back.url, result.experiment_id, result.parent_run_id) == (trials, points, 0)
        parent = MlflowClient(back.url).get_run(result.parent_run_id)
        assert parent.info.status == "FINISHED"
        assert "tuning.best_trial_id" in parent.data.tags
    finally:
        back.stop()
