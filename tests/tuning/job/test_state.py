"""tuning.job.state: the typed job state, its format version and old job folders."""

from __future__ import annotations

import json

import pytest

from tuning.errors import JobError, StateError
from tuning.job.results import TrialSummary
from tuning.job.state import STATE_FILE, STATE_VERSION, JobState, Outcome, find_experiment_dir

# What `tuning run` wrote before the state had a version (format 1).
FORMAT_1 = {
    "spec": {"name": "old"}, "tracking_uri": "sqlite:///mlflow.db", "experiment_id": "1",
    "parent_run_id": "abc", "status": "FINISHED", "data_hash": "f00",
    "tune_path": "/somewhere/old-1",
    "outcome": {"best": {"trial_id": "t1", "config": {"eta": 0.1}, "metrics": {"val_aucpr": 0.5},
                         "best_round": 20, "threshold": 0.3},
                "test_metrics": {"aucpr": 0.4}, "verdict": None,
                "counts": {"finished": 1, "killed": 0, "failed": 0, "total": 1},
                "stop_reason": "all trials done", "log_model": True},
    "synced": False,
}


def test_round_trip_keeps_every_field(tmp_path):
    best = TrialSummary("t1", "FINISHED", {"eta": 0.1}, 0.5, 20, 20, 0.3, {"val_aucpr": 0.5})
    state = JobState(spec={"name": "x"}, tracking_uri="u", experiment_id="1", parent_run_id="p",
                     status="FINISHED", data_hash="h", tune_path="t",
                     outcome=Outcome(best, {"aucpr": 0.4}, None, {"total": 1}, "done", True))
    state.write(tmp_path)
    assert json.loads((tmp_path / STATE_FILE).read_text())["version"] == STATE_VERSION
    assert JobState.read(tmp_path) == state


def test_a_folder_written_before_versions_is_read_as_is(tmp_path):
    (tmp_path / STATE_FILE).write_text(json.dumps(FORMAT_1))
    state = JobState.read(tmp_path)
    assert state.version == STATE_VERSION and state.parent_run_id == "abc"
    assert state.outcome.best.best_round == 20 and state.outcome.best.threshold == 0.3
    assert state.outcome.stop_reason == "all trials done"


@pytest.mark.parametrize("content, message", [
    (json.dumps({**FORMAT_1, "version": 99}), "format 99 was written by a newer fraud-tuning"),
    ("{not json", "unreadable job state"),
    (json.dumps({"spec": {}}), "lacks status, tracking_uri"),
])
def test_an_unreadable_state_is_one_line(tmp_path, content, message):
    (tmp_path / STATE_FILE).write_text(content)
    with pytest.raises(StateError, match=message) as err:
        JobState.read(tmp_path)
    assert "\n" not in str(err.value) and isinstance(err.value, JobError)


def test_no_such_job_is_a_state_error(tmp_path):
    with pytest.raises(StateError, match="no tuning job of that name"):
        find_experiment_dir("nope", str(tmp_path))
