"""MLflow outages against a real ``mlflow server``: stop it mid-job, count what arrives."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tuning.cli import main
from tuning.config import parse_spec
from tuning.run import run_job
from tuning.server import ServerSettings, TrackingServer, free_port
from tuning.tracking import PARENT_TAG, metrics_of

from conftest import record_fault

pytestmark = pytest.mark.slow

SPEC = {
    "name": "outage",
    # Trials of a few seconds each, so that training goes on through the outage.
    "data": {"rows": 60000, "fraud_rate": 0.01, "seed": 4},
    "search_space": {"eta": {"type": "loguniform", "low": 0.05, "high": 0.3},
                     "max_depth": 6},
    "search": {"algorithm": "random", "seed": 2},
    "scheduler": {"type": "fifo"},
    "training": {"num_boost_round": 600, "report_every": 20, "checkpoint_every": 10},
    "budget": {"num_samples": 6, "max_concurrent": 2},
}


def _expected_points(job_dir: Path) -> tuple[int, int]:
    """Trials and metric values Ray Tune itself recorded (the ground truth)."""
    trials = points = 0
    for result_file in job_dir.glob("*/result.json"):
        trials += 1
        for line in result_file.read_text().splitlines():
            points += len(metrics_of(json.loads(line)))
    return trials, points


def _results(job_dir: Path) -> list[dict]:
    return [json.loads(line) for f in job_dir.glob("*/result.json")
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
    settings = ServerSettings(port=port, backend_store_uri=f"sqlite:///{tmp_path}/store.db",
                              artifacts_destination=str(tmp_path / "artifacts"), workers=1)
    return TrackingServer(settings, log_path=tmp_path / f"server-{time.monotonic()}.log")


def _outage_when_logging(server: TrackingServer, tmp_path: Path, port: int, down_s: float,
                         restart: bool, events: dict) -> None:
    """Stop the server once a child run has metrics; bring it back after ``down_s``."""
    client = MlflowClient(server.url)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        time.sleep(0.2)
        experiment = client.get_experiment_by_name("outage")
        if experiment is None:
            continue
        runs = client.search_runs([experiment.experiment_id])
        if any(r.data.metrics for r in runs if PARENT_TAG in r.data.tags):
            break
    events["stopped"] = time.time()  # requests fail from the first signal on
    server.stop()
    time.sleep(down_s)
    if restart:
        events["server"] = _server(tmp_path, port).start()
        events["restarted"] = time.time()


def _job_with_outage(tmp_path: Path, down_s: float, restart: bool,
                     flush_timeout_s: float) -> tuple:
    """Run a job against a real server that a second thread stops mid-job."""
    port = free_port()
    server = _server(tmp_path, port).start()
    events: dict = {}
    spec = parse_spec({**SPEC, "tracking": {"tracking_uri": server.url,
                                            "flush_timeout_s": flush_timeout_s},
                       "storage": {"path": str(tmp_path / "runs")}})
    chaos = threading.Thread(target=_outage_when_logging,
                             args=(server, tmp_path, port, down_s, restart, events))
    chaos.start()
    try:
        result = run_job(spec, progress=False)
        events["job_done"] = time.time()
    finally:
        chaos.join()
    return result, events, port


def test_outage_mid_job_loses_nothing(ray_session, tmp_path):
    # The end of the job waits (up to flush_timeout_s) for the store to come back.
    result, events, _ = _job_with_outage(tmp_path, down_s=6.0, restart=True, flush_timeout_s=600)
    restarted = events["server"]
    try:
        assert events["stopped"] < events["restarted"] < events["job_done"]
        # Trials kept running while the store was down.
        during = [r for r in _results(Path(result.experiment_dir))
                  if events["stopped"] < r["timestamp"] < events["restarted"]]
        assert during, "results were produced during the outage"
        assert result.unlogged_records == 0
        trials, points = _expected_points(Path(result.experiment_dir))
        runs, logged, duplicates = _logged(restarted.url, result.experiment_id,
                                           result.parent_run_id)
        assert trials == 6
        assert (runs, logged, duplicates) == (trials, points, 0)
        record_fault("MLflow server stopped mid-job for 6 s, then restarted", trials=trials,
                     child_runs=runs, points_expected=points, points=logged,
                     duplicated=duplicates, outcome="buffered and written on return")
        parent = MlflowClient(restarted.url).get_run(result.parent_run_id)
        assert parent.info.status == "FINISHED"
    finally:
        restarted.stop()


def test_store_that_never_returns_then_sync(ray_session, tmp_path, capsys):
    result, events, port = _job_with_outage(tmp_path, down_s=0.0, restart=False,
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
                     duplicated=0, unlogged_at_job_end=result.unlogged_records,
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
