"""Faults injected for real: failed trials, a killed driver; counts read from MLflow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tuning.config import parse_spec
from tuning.run import run_job
from tuning.state import SchedulerStateCallback, recorded_results
from tuning.tracking import PARENT_TAG, TRIAL_TAG

from conftest import record_fault

ROOT = Path(__file__).resolve().parents[2]


def test_scheduler_state_survives_a_round_trip():
    """ASHA's rungs are saved with the experiment and put back into a fresh scheduler."""
    import pickle

    from ray.tune.schedulers import ASHAScheduler

    def fresh():
        asha = ASHAScheduler(time_attr="training_iteration", max_t=9, grace_period=1,
                             reduction_factor=3)
        asha.set_search_properties("val_aucpr", "max")
        return asha

    original = fresh()
    for i, value in enumerate([0.5, 0.7, 0.6]):
        trial = SimpleNamespace(trial_id=f"t{i}")
        original._trial_info[trial.trial_id] = original._brackets[0]
        original._brackets[0].on_result(trial, 1, value)
    state = SchedulerStateCallback(original).get_state()

    restored = fresh()
    assert recorded_results(restored) == 0
    # The state goes through a pickle file in Tune's experiment folder.
    SchedulerStateCallback(restored).set_state(pickle.loads(pickle.dumps(state)))
    assert recorded_results(restored) == 3
    assert restored._brackets[0]._rungs == original._brackets[0]._rungs


def _children(client: MlflowClient, experiment_id: str, parent: str):
    return client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{parent}'")


def _steps(client: MlflowClient, run_id: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, "val_aucpr"))


FAULTY = {
    "name": "faulty",
    "data": {"rows": 5000, "fraud_rate": 0.03, "seed": 2},
    "search_space": {"eta": {"type": "loguniform", "low": 0.05, "high": 0.5},
                     "max_depth": {"type": "randint", "low": 2, "high": 5}},
    "search": {"algorithm": "random", "seed": 1},
    "scheduler": {"type": "fifo"},
    "training": {"num_boost_round": 40, "report_every": 10, "checkpoint_every": 1,
                 "fail_at_round": 25},
    "budget": {"num_samples": 3, "max_concurrent": 2},
}


@pytest.mark.slow
@pytest.mark.parametrize("max_failures", [1, 0])
def test_failed_trials_retry_in_the_same_run(ray_session, tmp_path, max_failures):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    spec = parse_spec({**FAULTY, "budget": {**FAULTY["budget"], "max_failures": max_failures},
                       "tracking": {"tracking_uri": uri},
                       "storage": {"path": str(tmp_path / "runs")}})
    result = run_job(spec, progress=False)
    client = MlflowClient(uri)
    children = _children(client, result.experiment_id, result.parent_run_id)
    assert len(children) == 3, "a retried trial keeps its one child run"
    for child in children:
        steps = _steps(client, child.info.run_id)
        assert len(steps) == len(set(steps)), "no step logged twice"
        if max_failures:
            assert child.info.status == "FINISHED"
            assert child.data.tags["tuning.retries"] == "1"
            assert "injected fault at round 25" in child.data.tags["tuning.last_error"]
            # Resumed from the checkpoint at round 20, not from scratch.
            assert child.data.tags["tuning.restored_from_round"] == "20"
            assert steps == [10, 20, 30, 40]
        else:
            assert child.info.status == "FAILED"
            assert "injected fault at round 25" in child.data.tags["tuning.error"]
            assert steps == [10, 20]
    assert result.count("FAILED") == (0 if max_failures else 3)
    all_steps = [_steps(client, c.info.run_id) for c in children]
    record_fault(f"trial raises at round 25, max_failures={max_failures}", trials=3,
                 child_runs=len(children), points=sum(map(len, all_steps)),
                 duplicated=sum(len(s) - len(set(s)) for s in all_steps),
                 outcome="retried from the round-20 checkpoint in the same run" if max_failures
                 else "FAILED with the error tagged; job finished")
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_failed"] == (0 if max_failures else 3)


KILLABLE = {
    "name": "killme",
    "data": {"rows": 40000, "fraud_rate": 0.01, "seed": 3},
    "search_space": {"eta": {"type": "loguniform", "low": 0.02, "high": 0.3},
                     "max_depth": {"type": "randint", "low": 4, "high": 8}},
    "search": {"algorithm": "tpe", "seed": 0, "n_initial_points": 3},
    "scheduler": {"type": "asha", "grace_period": 2, "reduction_factor": 2},
    "training": {"num_boost_round": 200, "report_every": 10, "checkpoint_every": 1},
    "budget": {"num_samples": 6, "max_concurrent": 2},
}


def _snapshot(client, experiment_id, parent):
    runs = _children(client, experiment_id, parent)
    return {r.data.tags[TRIAL_TAG]: (r.info.status, r.info.end_time,
                                     _steps(client, r.info.run_id)) for r in runs}


def _tune_saved_statuses(folder: Path) -> dict[str, str]:
    """Trial statuses in Tune's newest experiment snapshot (what a resume starts from)."""
    newest = sorted(folder.glob("tuning_runs/killme-*/experiment_state-*.json"))[-1]
    statuses = {}
    for json_state, _meta in json.loads(newest.read_text())["trial_data"]:
        trial = json.loads(json_state)
        statuses[trial["trial_id"]] = trial["status"]
    return statuses


@pytest.mark.slow
def test_killed_driver_resumes_without_duplicates(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({**KILLABLE, "tracking": {"tracking_uri": uri}}))
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    driver = subprocess.Popen([sys.executable, "-m", "tuning.cli", "run", str(spec_file), "-q"],
                              cwd=tmp_path, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = None
    deadline = time.monotonic() + 300
    before = None
    try:
        while time.monotonic() < deadline:
            time.sleep(0.5)
            assert driver.poll() is None, driver.stderr.read().decode()[-3000:]
            # Touch the store only once the driver made it (two processes creating one
            # SQLite schema at once race on its migrations).
            jobs = list((tmp_path / "tuning_runs").glob("killme-*/experiment_state-*.json"))
            if not jobs:
                continue
            client = client or MlflowClient(uri)
            experiment = client.get_experiment_by_name("killme")
            state = json.loads(next((tmp_path / "tuning_runs").glob("killme-*/tuning_state.json"))
                               .read_text())
            snap = _snapshot(client, experiment.experiment_id, state["parent_run_id"])
            done = [t for t, s in snap.items() if s[0] in ("FINISHED", "KILLED")]
            running = [t for t, s in snap.items() if s[0] == "RUNNING" and len(s[2]) >= 2]
            if len(done) >= 2 and running:
                before = snap
                break
        assert before is not None, "the job never reached the middle"
    finally:
        # Kill the driver like a crash would, then everything it started (its own Ray).
        try:
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        driver.wait()
    parent_id = state["parent_run_id"]
    assert client.get_run(parent_id).info.status == "RUNNING"
    saved = _tune_saved_statuses(tmp_path)

    resumed = subprocess.run([sys.executable, "-m", "tuning.cli", "resume", "killme", "-q"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
                             start_new_session=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # The scheduler came back with the rungs it had recorded before the kill.
    restored = [line for line in resumed.stderr.splitlines() if "restored AsyncHyperBandScheduler" in line]
    assert restored and "(0 recorded" not in restored[0], resumed.stderr[-3000:]

    experiment_id = state["experiment_id"]
    parents = client.search_runs([experiment_id], "tags.`tuning.role` = 'parent'")
    assert [p.info.run_id for p in parents] == [parent_id], "the same parent run, no new one"
    assert client.get_run(parent_id).info.status == "FINISHED"
    after = _snapshot(client, experiment_id, parent_id)
    assert len(after) == KILLABLE["budget"]["num_samples"], "one child run per trial"
    for trial_id, (status, end_time, steps) in after.items():
        assert status in ("FINISHED", "KILLED")
        assert len(steps) == len(set(steps)), f"{trial_id} logged a step twice"
    all_runs = {r.data.tags[TRIAL_TAG]: r for r in client.search_runs(
        [experiment_id], f"tags.`{PARENT_TAG}` = '{parent_id}'", run_view_type=3)}
    kept = 0
    for trial_id, (status, end_time, steps) in before.items():
        if trial_id not in after:
            # Started after Tune's last state snapshot (1 s here), so Tune never knew it:
            # the resumed job re-suggested it under a new id, and its run was removed as
            # an orphan rather than left behind as a second run for one configuration.
            assert all_runs[trial_id].info.lifecycle_stage == "deleted"
            assert "tuning.orphan" in all_runs[trial_id].data.tags
        elif status in ("FINISHED", "KILLED") and saved.get(trial_id) == "TERMINATED":
            # Done before the kill, and Tune had recorded it: it is not run again.
            assert after[trial_id] == (status, end_time, steps), "finished trials were not re-run"
            kept += 1
        else:  # interrupted (or not yet saved as done): continued, keeping what it logged
            assert after[trial_id][2][:len(steps)] == steps
    assert kept >= 1, "at least one finished trial was checked"
    record_fault("driver killed (SIGKILL) mid-job, then `tuning resume`",
                 trials=len(after), child_runs=len(after),
                 before_kill=f"{kept} done, {sum(s[0] == 'RUNNING' for s in before.values())} running",
                 points=sum(len(s[2]) for s in after.values()),
                 duplicated=sum(len(s[2]) - len(set(s[2])) for s in after.values()),
                 orphans_removed=sum(t not in after for t in before),
                 outcome="same parent run; finished trials untouched; ASHA rungs restored")
    interrupted = [t for t, s in before.items() if s[0] == "RUNNING" and t in after]
    runs = {r.data.tags[TRIAL_TAG]: r for r in _children(client, experiment_id, parent_id)}
    assert any(int(runs[t].data.tags.get("tuning.restored_from_round", 0)) > 0
               for t in interrupted), "an interrupted trial resumed from its checkpoint"
