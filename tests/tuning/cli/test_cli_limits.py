"""`tuning best | export --max-scoring-ms` (and with --max-model-size): which trial is picked."""

from __future__ import annotations

import json

import pytest
import yaml

from tuning.cli import main
from tuning.cli.choice import pick
from tuning.errors import JobError
from tuning.tracking.store import Job, Trial, load_job
from tuning.tracking.tags import INFEASIBLE_TAG, PARETO_TAG


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _t(trial_id: str, value: float, ms: float, size: float | None = None, status: str = "FINISHED",
       **tags: str) -> Trial:
    metrics = {"val_scoring_ms_at_best": ms}
    if size is not None:
        metrics["val_model_size_at_best"] = size
    t = Trial(run_id=f"run-{trial_id}", trial_id=trial_id, status=status, params={"eta": 0.1},
              metrics=metrics, tags=tags, start_time=0, end_time=None)
    t.best_value, t.best_round, t.point = value, 10, {"val_threshold": 0.3}
    return t


def _job(trials: list[Trial]) -> Job:
    return Job(tracking_uri="sqlite://", experiment_id="1", experiment_name="e", run_id="p",
               name="j", status="FINISHED", start_time=0, end_time=None, params={}, metrics={},
               tags={"tuning.best_trial_id": "top"}, trials=trials, metric="val_aucpr", mode="max")


SINGLE = _job([
    _t("top", 0.90, ms=9.0),
    _t("lean", 0.80, ms=2.0),
    _t("quick", 0.70, ms=1.0),
    _t("broken", 0.99, ms=0.5, status="FAILED"),  # failed: never chosen
    _t("too_big", 0.95, ms=0.5, **{INFEASIBLE_TAG: "true"}),  # infeasible: never chosen
])


def no_spec(job):  # a single-objective job: the logged spec is never read
    raise AssertionError("read the spec")


@pytest.mark.parametrize("limit, expected", [(100, "top"), (9, "top"), (8.9, "lean"), (2, "lean"),
                                             (1.5, "quick")])
def test_a_single_objective_job_picks_the_best_trial_within_the_scoring_time(limit, expected):
    chosen = pick(SINGLE, max_scoring_ms=limit, objectives=no_spec)
    assert chosen.trial.trial_id == expected
    assert chosen.figures["val_scoring_ms_at_best"] <= limit
    assert chosen.figures["val_aucpr"] == chosen.trial.best_value
    assert chosen.selected_by == f"best val_aucpr (max) of all trials with <= {limit:g} ms per 1,000 rows"


def test_nothing_within_the_scoring_time_is_a_one_line_error():
    with pytest.raises(JobError, match=r"^--max-scoring-ms 0.9: no trial is that fast "
                                       r"\(fastest: 1 ms per 1,000 rows\)$"):
        pick(SINGLE, max_scoring_ms=0.9, objectives=no_spec)
    with pytest.raises(JobError, match="must be a number > 0"):
        pick(SINGLE, max_scoring_ms=0, objectives=no_spec)
    with pytest.raises(JobError, match="give --max-fpr or --max-scoring-ms, not both"):
        pick(SINGLE, max_fpr=0.01, max_scoring_ms=5, objectives=no_spec)
    old = _job([Trial(run_id="r", trial_id="top", status="FINISHED", params={}, metrics={}, tags={},
                      start_time=0, end_time=None)])
    with pytest.raises(JobError, match="no trial reports val_scoring_ms_at_best"):
        pick(old, max_scoring_ms=5, objectives=no_spec)


# A multi-objective job: "fast" and "mid" are the Pareto set of (aucpr, scoring_ms); "slow_best"
# is off it (dominated) but would win among all trials within 5 ms.
MULTI = _job([
    _t("top", 0.90, ms=9.0, size=900, **{PARETO_TAG: "true"}),
    _t("mid", 0.80, ms=3.0, size=300, **{PARETO_TAG: "true"}),
    _t("fast", 0.60, ms=1.0, size=100, **{PARETO_TAG: "true"}),
    _t("off", 0.85, ms=4.0, size=50, **{PARETO_TAG: "false"}),
])


def test_with_scoring_ms_an_objective_the_pick_is_a_pareto_member():
    chosen = pick(MULTI, max_scoring_ms=5, objectives=lambda job: ["aucpr", "scoring_ms"])
    assert chosen.trial.trial_id == "mid" and "in the Pareto set" in chosen.selected_by
    # Scoring time not among the objectives (aucpr, model_size): every trial is a candidate.
    chosen = pick(MULTI, max_scoring_ms=5, objectives=lambda job: ["aucpr", "model_size"])
    assert chosen.trial.trial_id == "off" and "of all trials" in chosen.selected_by
    with pytest.raises(JobError, match=r"no Pareto member is that fast \(fastest: 1 ms"):
        pick(MULTI, max_scoring_ms=0.5, objectives=lambda job: ["aucpr", "scoring_ms"])


def test_both_limits_pick_the_pareto_member_within_both():
    objectives = lambda job: ["aucpr", "model_size", "scoring_ms"]  # noqa: E731
    chosen = pick(MULTI, max_model_size=500, max_scoring_ms=2, objectives=objectives)
    assert chosen.trial.trial_id == "fast"
    assert chosen.figures["val_model_size_at_best"] == 100 and chosen.figures["val_scoring_ms_at_best"] == 1
    assert pick(MULTI, max_model_size=500, max_scoring_ms=5, objectives=objectives).trial.trial_id == "mid"
    with pytest.raises(JobError, match="no Pareto member is that small"):
        pick(MULTI, max_model_size=10, max_scoring_ms=5, objectives=objectives)


# ------------------------------------------------------- on a real job
@pytest.fixture(scope="module")
def finished(finished_tiny_job):
    return finished_tiny_job  # tests/tuning/conftest.py: single objective, 4 trials


@pytest.mark.slow
def test_best_and_export_with_max_scoring_ms_on_a_real_job(finished, capsys):
    job = load_job(finished.tracking_uri, finished.parent_run_id)
    times = {t.trial_id: t.metrics["val_scoring_ms_at_best"] for t in job.trials}
    assert len(times) == 4 and all(ms > 0 for ms in times.values())  # logged on every child run
    limit = sorted(times.values())[1]  # two trials fit
    code, out, _ = cli(capsys, "best", finished.name, "--tracking-uri", finished.tracking_uri,
                       "--max-scoring-ms", repr(limit), "--json")
    assert code == 0
    rec = json.loads(out)
    within = [t for t in job.trials if times[t.trial_id] <= limit]
    assert rec["trial_id"] == max(within, key=lambda t: t.best_value).trial_id
    assert rec["validation"]["val_scoring_ms_at_best"] <= limit
    code, out, _ = cli(capsys, "export", finished.name, "--tracking-uri", finished.tracking_uri,
                       "--max-scoring-ms", repr(limit))
    assert code == 0 and yaml.safe_load(out)["source"]["trial_id"] == rec["trial_id"]
    code, _, err = cli(capsys, "best", finished.name, "--tracking-uri", finished.tracking_uri,
                       "--max-scoring-ms", repr(min(times.values()) / 2))
    assert code == 1 and err.startswith("error: --max-scoring-ms ") and err.count("\n") == 1
    assert "no trial is that fast" in err
