"""tuning.tracking.store: jobs and trials read back from a real MLflow store."""

from __future__ import annotations

import pytest

from tuning.errors import JobError
from tuning.tracking.store import Trial, _score, load_job, parse_value



@pytest.fixture(scope="module")
def finished(finished_tiny_job):
    return finished_tiny_job  # tests/tuning/conftest.py


# ------------------------------------------------------------------ units
@pytest.mark.parametrize("text, value", [
    ("0.125", 0.125), ("3", 3), ("True", True), ("None", None), ("1e-05", 1e-05),
    ("hist", "hist"), ("eta,max_depth", "eta,max_depth"), ("[1, 2]", [1, 2]),
    ("{'a': 1}", "{'a': 1}"),
])
def test_parse_value_restores_numbers_and_keeps_text(text, value):
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def _trial(history: list[tuple[int, float]], **points) -> Trial:
    t = Trial(run_id="r", trial_id="t", status="FINISHED", params={}, metrics={}, tags={},
              start_time=0, end_time=None)
    t.history["val_aucpr"] = history
    for key, values in points.items():
        t.history[key] = values
    return t


def test_score_takes_best_step_and_the_operating_point_there():
    t = _trial([(5, 0.5), (10, 0.7), (15, 0.7), (20, 0.6)],
               val_recall=[(5, 0.1), (10, 0.2), (15, 0.3), (20, 0.4)],
               val_fpr=[(5, 0.01), (10, 0.02), (15, 0.03), (20, 0.04)])
    _score(t, "val_aucpr", "max")
    assert (t.best_round, t.best_value) == (10, 0.7)  # ties: the earliest step
    assert t.point == {"val_recall": 0.2, "val_fpr": 0.02}
    _score(t, "val_aucpr", "min")
    assert (t.best_round, t.best_value) == (5, 0.5)


def test_score_skips_nan_and_trials_without_history():
    t = _trial([(5, float("nan")), (10, 0.4)])
    _score(t, "val_aucpr", "max")
    assert (t.best_round, t.best_value) == (10, 0.4)
    empty = _trial([])
    _score(empty, "val_aucpr", "max")
    assert empty.best_value is None


def test_missing_sqlite_file_is_a_one_line_error_and_creates_nothing(tmp_path):
    uri = f"sqlite:///{tmp_path}/absent.db"
    with pytest.raises(JobError, match="no such database file"):
        load_job(uri, "x")
    assert not (tmp_path / "absent.db").exists()


def test_unreachable_server_is_a_one_line_error():
    with pytest.raises(JobError, match="cannot reach the MLflow store") as err:
        load_job("http://127.0.0.1:9", "x")
    assert "\n" not in str(err.value)


# ------------------------------------------------------- on a real job
@pytest.mark.slow
def test_job_loads_by_name_parent_id_and_child_id(finished):
    by_name = load_job(finished.tracking_uri, finished.name)
    assert by_name.run_id == finished.parent_run_id
    assert load_job(finished.tracking_uri, finished.parent_run_id).run_id == finished.parent_run_id
    child = by_name.trials[0].run_id
    assert load_job(finished.tracking_uri, child).run_id == finished.parent_run_id
    # The experiment name (the spec name here) finds it too.
    assert load_job(finished.tracking_uri, by_name.experiment_name).run_id == finished.parent_run_id


@pytest.mark.slow
def test_unknown_job_is_a_one_line_error(finished):
    with pytest.raises(JobError, match="no tuning job named 'nope'"):
        load_job(finished.tracking_uri, "nope")
    with pytest.raises(JobError, match="no tuning job"):
        load_job(finished.tracking_uri, "0" * 32)


@pytest.mark.slow
def test_trials_match_what_the_job_reported(finished):
    job = load_job(finished.tracking_uri, finished.parent_run_id)
    assert job.metric == "val_aucpr" and job.mode == "max" and job.status == "FINISHED"
    ours = {t.trial_id: t for t in finished.trials}
    assert {t.trial_id for t in job.trials} == set(ours)
    assert [t.number for t in job.trials] == list(range(len(ours)))
    for trial in job.trials:
        mine = ours[trial.trial_id]
        assert trial.status == mine.status
        assert trial.params == mine.config  # numbers again, not strings
        assert isinstance(trial.params["max_depth"], int)
        assert trial.best_value == pytest.approx(mine.best_value)
        assert trial.best_round == mine.best_round
        steps = [s for s, _ in trial.history["val_aucpr"]]
        assert steps == sorted(steps) and all(s % 5 == 0 for s in steps)
        assert steps[-1] == mine.rounds
        assert set(trial.point) >= {"val_recall", "val_fpr", "val_threshold"}
        if trial.status == "FINISHED":
            assert steps[-1] == 20
    assert job.best.trial_id == finished.best.trial_id
    assert job.best_params() == finished.best.config


@pytest.mark.slow
def test_history_keys_limit_the_queries(finished):
    job = load_job(finished.tracking_uri, finished.parent_run_id, history_keys=[])
    assert all(t.history == {} for t in job.trials)
    # Without histories the final (last) value stands in for the best one.
    assert all(t.best_value == t.metrics["val_aucpr"] for t in job.trials)
