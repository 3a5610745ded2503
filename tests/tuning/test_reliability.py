"""Faults injected for real: failed trials, a killed driver; counts read from MLflow."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tuning.spec import parse_spec
from tuning.job.lifecycle import run_job
from trainables.events import EVENTS_ENV, read_events
from tuning.schedule.state import SchedulerStateCallback, recorded_results, rungs
from tuning.tracking.tags import PARENT_TAG, TRIAL_TAG

from conftest import new_store, record_fault
from faults import child_runs, compare, held, mlflow_points, tune_points, wait_for
from ray_head import external_head

ROOT = Path(__file__).resolve().parents[2]


def test_scheduler_state_survives_a_round_trip():
    """ASHA's rungs are saved with the experiment and put back into a fresh scheduler."""
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
    "evaluation": {"cv": 1},  # CV is not this test's subject
    "budget": {"num_samples": 3, "max_concurrent": 2},
}


@pytest.mark.slow
@pytest.mark.parametrize("max_failures", [1, 0])
def test_failed_trials_retry_in_the_same_run(ray_session, tmp_path, max_failures):
    uri = new_store(tmp_path)
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
    "data": {"rows": 10000, "fraud_rate": 0.03, "seed": 3},
    "search_space": {"eta": {"type": "loguniform", "low": 0.02, "high": 0.3},
                     "max_depth": {"type": "randint", "low": 4, "high": 8}},
    "search": {"algorithm": "tpe", "seed": 0, "n_initial_points": 3},
    # First rung at the 3rd report (round 30): a trial held at round 25 cannot have
    # been stopped by ASHA yet.
    "scheduler": {"type": "asha", "grace_period": 3, "reduction_factor": 2},
    "training": {"num_boost_round": 200, "report_every": 10, "checkpoint_every": 1},
    "evaluation": {"cv": 1},  # CV is not this test's subject
    "budget": {"num_samples": 6, "max_concurrent": 2},
}
HOLD_ROUND = 25  # between the 2nd report (round 20, checkpointed) and the 3rd


def _tune_saved(tune_dir: Path) -> dict[str, tuple[str, int | None]]:
    """Per trial in Tune's newest experiment snapshot (what a resume starts from): its
    status and the round of its latest registered checkpoint (None: no checkpoint)."""
    from ray import cloudpickle

    newest = max(tune_dir.glob("experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    saved = {}
    for json_state, meta in json.loads(newest.read_text())["trial_data"]:
        trial = json.loads(json_state)
        manager = json.loads(meta)["checkpoint_manager"]
        latest = cloudpickle.loads(bytes.fromhex(manager["value"])).latest_checkpoint_result
        saved[trial["trial_id"]] = (trial["status"],
                                    latest.metrics.get("rounds") if latest else None)
    return saved


def _saved_rungs(tune_dir: Path) -> list:
    """ASHA's rungs as saved with the experiment (the scheduler-state callback's file)."""
    from ray import cloudpickle

    newest = max(tune_dir.glob("callback-states-*.pkl"), key=lambda p: p.stat().st_mtime)
    states = cloudpickle.loads(newest.read_bytes())
    saved = next(s for s in states.values() if s and "scheduler" in s)
    return rungs(SimpleNamespace(**pickle.loads(saved["scheduler"])))


def _statuses(client, runs) -> dict[str, tuple]:
    return {r.data.tags[TRIAL_TAG]: (r.info.status, r.info.end_time,
                                     _steps(client, r.info.run_id)) for r in runs}


def _middle_of_job(tmp_path: Path, client_box: list, events_dir: Path, uri: str):
    """Once two trials are held: the MLflow and Tune state of the job, when complete.

    Tune's files are read from storage, where Tune copies them from the driver in one
    background sync, in no fixed order and not atomically: a poll can find a file
    half-copied (read again on the next poll) or the trials' result files behind the
    snapshot; and a kill in the middle of a copy can truncate one for good. So Tune's
    record of the trials' results (the ground truth) is taken here, once it holds every
    step MLflow has: nothing reports between this poll and the kill (the running
    trials are held, and no other may start).
    """
    if len(held(events_dir)) < 2:
        return None
    job = next((tmp_path / "tuning_runs").glob("killme-*"))
    state = json.loads((job / "tuning_state.json").read_text())
    if not client_box:  # touch the store only once the driver made it (SQLite migrations)
        client_box.append(MlflowClient(uri))
    client = client_box[0]
    snap = _statuses(client, child_runs(client, state["experiment_id"], state["parent_run_id"]))
    done = [t for t, s in snap.items() if s[0] in ("FINISHED", "KILLED")]
    running = [t for t, s in snap.items() if s[0] == "RUNNING" and s[2] == [10, 20]]
    try:
        saved, rungs_saved = _tune_saved(job), _saved_rungs(job)
    except (ValueError, EOFError, StopIteration, pickle.UnpicklingError):  # not yet, or mid-copy
        return None
    points = tune_points(job, partial_ok=True)
    in_tune = {(t, step) for t, step, _key in points}
    if (len(done) == 2 and sorted(running) == sorted(held(events_dir))
            and all(saved.get(t, ("",))[0] == "TERMINATED" for t in done)
            # The round-20 checkpoint must be in the snapshot, not only on disk: a
            # resume restores the checkpoint Tune registered (under load the snapshot
            # can lag the trial by a report).
            and all(saved.get(t) == ("RUNNING", 20) for t in running)
            and all((t, step) in in_tune for t, (_s, _e, steps) in snap.items() for step in steps)):
        return job, state, snap, rungs_saved, points
    return None


@pytest.mark.slow
@pytest.mark.parametrize("cluster", ["driver_started", "outlives_driver"])
def test_killed_driver_resumes_without_duplicates(tmp_path, cluster):
    """SIGKILL the driver while two trials are done and two are held mid-training.

    The kill is placed by events: every trial after the first two is held at round
    25 (its round-20 checkpoint written), so the job cannot end before the kill.
    """
    uri = new_store(tmp_path)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({**KILLABLE, "tracking": {"tracking_uri": uri}}))
    events_dir = tmp_path / "events"
    events_dir.mkdir()
    gate = events_dir / "hold-trial.round.json"
    gate.write_text(json.dumps({"pass": 2, "when": {"round": HOLD_ROUND}}))
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1", EVENTS_ENV: str(events_dir)}
    with contextlib.ExitStack() as stack:
        address = (stack.enter_context(external_head(2, env))
                   if cluster == "outlives_driver" else None)
        extra = ["--address", address] if address else []
        driver = subprocess.Popen(
            [sys.executable, "-m", "tuning.cli", "run", str(spec_file), "-q", *extra],
            cwd=tmp_path, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client_box: list = []
        try:
            job, state, before, rungs_before, tune_before_kill = wait_for(
                lambda: _middle_of_job(tmp_path, client_box, events_dir, uri),
                "two trials done and two held at round 25, all saved by Tune", driver)
        finally:
            # A crash: the driver (and, when it started one, its own Ray) dies at once.
            # An external cluster survives: only the driver's process is killed.
            try:
                if address:
                    os.kill(driver.pid, signal.SIGKILL)
                else:
                    os.killpg(driver.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            driver.wait()
        client = client_box[0]
        parent_id, experiment_id = state["parent_run_id"], state["experiment_id"]
        assert client.get_run(parent_id).info.status == "RUNNING"
        gate.unlink()  # the resumed job runs free
        resumed = subprocess.run(
            [sys.executable, "-m", "tuning.cli", "resume", "killme", "-q", *extra],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
            start_new_session=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    # The scheduler came back with exactly the rungs saved before the kill.
    restored = [e for e in read_events(events_dir) if e["event"] == "scheduler.restored"]
    assert len(restored) == 1
    assert sum(len(r[1]) for bracket in rungs_before for r in bracket) >= 1, "rungs were saved"
    assert restored[0]["rungs"] == json.loads(json.dumps(rungs_before))

    parents = client.search_runs([experiment_id], "tags.`tuning.role` = 'parent'")
    assert [p.info.run_id for p in parents] == [parent_id], "the same parent run, no new one"
    assert client.get_run(parent_id).info.status == "FINISHED"
    runs = child_runs(client, experiment_id, parent_id)
    tune_trials = {p.parent.name for p in job.glob("*/result.json")}
    per_trial = Counter(r.data.tags[TRIAL_TAG] for r in runs)
    assert len(per_trial) == KILLABLE["budget"]["num_samples"] == len(tune_trials)
    assert set(per_trial.values()) == {1}, f"one child run per trial: {per_trial}"
    assert not [r for r in child_runs(client, experiment_id, parent_id, deleted=True)
                if r.info.lifecycle_stage == "deleted"], "no orphan: Tune knew every trial"
    # Ground truth: what Tune recorded before the kill (see _middle_of_job) and after it.
    counts = compare(tune_before_kill | tune_points(job, partial_ok=True),
                     mlflow_points(client, runs))
    assert counts["missing"] == counts["duplicated"] == counts["unexpected"] == 0, str(counts)

    after = _statuses(client, runs)
    done = [t for t, s in before.items() if s[0] in ("FINISHED", "KILLED")]
    interrupted = sorted(set(before) - set(done))
    for trial_id in done:  # Tune had saved them as finished: not run again
        assert after[trial_id] == before[trial_id], "finished trials were not re-run"
    for trial_id, (status, _end, steps) in after.items():
        assert status in ("FINISHED", "KILLED")
    by_trial = {r.data.tags[TRIAL_TAG]: r for r in runs}
    for trial_id in interrupted:  # continued from the round-20 checkpoint, same run
        assert after[trial_id][2][:2] == [10, 20]
        assert by_trial[trial_id].data.tags.get("tuning.restored_from_round") == "20"
    record_fault(f"driver killed (SIGKILL) mid-job, then `tuning resume` ({cluster} Ray)",
                 trials=len(after), child_runs=len(runs),
                 before_kill=f"{len(done)} done, {len(interrupted)} held at round {HOLD_ROUND}",
                 points=counts["logged"], expected=counts["expected"],
                 missing=counts["missing"], duplicated=counts["duplicated"],
                 event="2 trials held at trial.round=25; Tune snapshot saved them",
                 outcome="same parent run; finished trials untouched; ASHA rungs equal to saved")
