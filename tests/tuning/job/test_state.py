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


def test_a_two_stage_job_lists_its_stage_folders_and_an_older_one_its_own(tmp_path):
    from tuning.job.state import tune_dirs

    state = JobState(spec={"name": "x"}, tracking_uri="u", experiment_id="1", parent_run_id="p",
                     status="RUNNING", data_hash="h", tune_path="s3://b/x-1/stage2", stage=2,
                     stage_paths=["s3://b/x-1/stage1", "s3://b/x-1/stage2"])
    state.write(tmp_path)
    assert JobState.read(tmp_path) == state
    assert tune_dirs(tmp_path) == [tmp_path / "stage1", tmp_path / "stage2"]
    (tmp_path / STATE_FILE).write_text(json.dumps(FORMAT_1))  # no stages: one experiment
    assert JobState.read(tmp_path).stage is None
    assert tune_dirs(tmp_path) == [tmp_path]


def test_a_two_stage_job_from_before_stage_folders_is_refused_by_resume(tmp_path):
    from tuning.job.lifecycle import resume_job
    from tuning.spec import parse_spec

    spec = parse_spec({"name": "old", "search": {"algorithm": "two_stage"},
                       "search_space": {"eta": {"type": "uniform", "low": 0.1, "high": 0.3}},
                       "budget": {"num_samples": 4}})
    state = JobState(spec=spec.model_dump(mode="json"), tracking_uri="u", experiment_id="1",
                     parent_run_id="p", status="RUNNING", data_hash="h", tune_path=str(tmp_path))
    state.write(tmp_path)
    with pytest.raises(JobError, match="written before its stages had Tune folders"):
        resume_job(str(tmp_path))
