"""The two-stage job: range narrowing, one parent run with stage-tagged children, and a
job interrupted in stage 2 resumed from its stages' Tune folders."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from faults import InterruptAfter

from tuning.spec import SpecError, parse_spec
from tuning.search.two_stage import narrow_space
from tuning.search.warm_start import Observation

SPACE = {
    "eta": {"type": "loguniform", "low": 0.001, "high": 1.0},
    "max_depth": {"type": "randint", "low": 2, "high": 12},
    "subsample": {"type": "uniform", "low": 0.5, "high": 1.0},
    "grow_policy": {"type": "choice", "values": ["depthwise", "lossguide"]},
}


def space():
    return parse_spec({"name": "x", "search_space": SPACE}).search_space


def obs(eta, depth, sub, value):
    return Observation({"eta": eta, "max_depth": depth, "subsample": sub,
                        "grow_policy": "depthwise"}, value)


def test_ranges_narrow_to_the_top_fraction_on_log_scale_with_margin():
    results = [obs(0.01, 4, 0.7, 0.9), obs(0.1, 6, 0.8, 0.8)] + [
        obs(0.9, 11, 0.55, 0.1 + i / 100) for i in range(8)]
    ranges = narrow_space(space(), results, "max", top_fraction=0.2, margin=0.1)
    assert set(ranges) == {"eta", "max_depth", "subsample"}  # choices keep all values
    # Top 2 of 10: eta 0.01..0.1 is log10 -2..-1 of a -3..0 range; margin 0.3 decades each side.
    assert math.isclose(ranges["eta"]["low"], 10 ** -2.3, rel_tol=1e-6)
    assert math.isclose(ranges["eta"]["high"], 10 ** -0.7, rel_tol=1e-6)
    assert math.isclose(ranges["subsample"]["low"], 0.65)
    assert math.isclose(ranges["subsample"]["high"], 0.85)
    assert ranges["max_depth"]["low"] == 3 and ranges["max_depth"]["high"] == 8
    assert ranges["eta"]["original_low"] == 0.001


def test_ranges_clip_to_the_original_bounds_and_honour_mode():
    results = [obs(1.0, 11, 1.0, 0.1), obs(0.001, 2, 0.5, 0.9)]
    ranges = narrow_space(space(), results, "min", top_fraction=0.5, margin=0.2)
    assert ranges["eta"]["high"] == 1.0 and ranges["subsample"]["high"] == 1.0
    assert ranges["max_depth"]["high"] == 12  # randint: exclusive, the original bound
    assert ranges["eta"]["low"] > 0.001


def test_stage1_must_leave_trials_for_stage2():
    with pytest.raises(SpecError, match="stage1_samples .6. must be < budget.num_samples .6."):
        parse_spec({"name": "x", "search_space": SPACE, "budget": {"num_samples": 6},
                    "search": {"algorithm": "two_stage", "stage1_samples": 6}})


def test_example_validates():
    from tuning.spec import load_spec

    spec = load_spec("examples/two_stage.yaml")
    assert spec.search.algorithm == "two_stage" and spec.search.refine_with == "tpe"




def _tune_files(folder: Path) -> dict[str, str]:
    return {str(f.relative_to(folder)): f.read_text() for f in folder.glob("*/result.json")}


@pytest.mark.slow
@pytest.mark.parametrize("stage1_with, refine_with, interrupted", [
    ("random", "tpe", False), ("qmc", "gp", True)])
def test_two_stage_job_leaves_one_parent_and_stage_tagged_children(
        stage1_with, refine_with, interrupted, ray_session, tracking_uri, tmp_path, monkeypatch):
    """A two-stage job: one parent run, children tagged with their stage, the narrowed
    ranges on the parent. The qmc + gp job is interrupted (a real Ctrl-C) once the first
    stage-2 trial completed and finished with ``resume_job``: stage 1's results are read
    from its own Tune folder (nothing of it runs again), stage 2 is restored, the ranges
    are logged once and every trial has one child run with each report once."""
    from mlflow.tracking import MlflowClient

    from tuning.job import lifecycle, two_stage
    from tuning.job.state import JobState, find_experiment_dir
    from tuning.job.sync import read_trials, sync_job

    logged = []
    log_ranges = two_stage.log_ranges
    monkeypatch.setattr(two_stage, "log_ranges", lambda *a: logged.append(a) or log_ranges(*a))
    marker = tmp_path / "interrupted"
    if interrupted:
        callbacks = lifecycle.driver_callbacks

        def with_interrupt(*args: Any, **kwargs: Any) -> Any:
            tracker, found = callbacks(*args, **kwargs)
            return tracker, [*found, InterruptAfter(5, marker)]  # the first stage-2 completion

        monkeypatch.setattr(lifecycle, "driver_callbacks", with_interrupt)
    spec = parse_spec({
        "name": "two-stage", "data": {"rows": 5000, "fraud_rate": 0.02, "seed": 0},
        "search_space": {k: v for k, v in SPACE.items() if k != "grow_policy"},
        "search": {"algorithm": "two_stage", "stage1_samples": 4, "refine_with": refine_with,
                   "stage1_with": stage1_with,
                   "top_fraction": 0.5, "margin": 0.05, "seed": 0, "n_initial_points": 2},
        "scheduler": {"type": "fifo"},
        "training": {"num_boost_round": 20, "report_every": 10},
        "evaluation": {"cv": 1},  # CV is not this test's subject
        "budget": {"num_samples": 6, "max_concurrent": 2},
        "tracking": {"tracking_uri": tracking_uri, "log_model": False},
        "storage": {"path": str(tmp_path / "runs")},
    })
    if interrupted:
        with pytest.raises(KeyboardInterrupt):
            lifecycle.run_job(spec, progress=False)
        job = find_experiment_dir(spec.name, spec.storage.path)
        state = JobState.read(job)
        assert marker.exists() and state.status == "RUNNING" and state.stage == 2
        assert state.stage_paths == [str(job / "stage1"), str(job / "stage2")]
        assert state.tune_path == state.stage_paths[1]
        stage1 = _tune_files(job / "stage1")
        assert len(stage1) == 4
        result = lifecycle.resume_job(spec.name, storage=spec.storage.path)
        assert marker.read_text() in {t.trial_id for t in result.trials}  # kept, not re-run
        assert _tune_files(job / "stage1") == stage1  # stage 1 read, not run again
        assert len(_tune_files(job / "stage2")) == 2
        assert not list(job.glob("*/result.json"))  # no trial in the job folder itself
    else:
        result = lifecycle.run_job(spec, progress=False)
    assert len(logged) == 1  # the ranges went to the parent run once
    assert len(result.trials) == 6
    # `tuning sync` reads both stages' Tune folders and finds MLflow complete.
    assert sorted(t.stage for t in read_trials(Path(result.experiment_dir))) == [1] * 4 + [2] * 2
    again = sync_job(Path(result.experiment_dir))
    assert (again.runs_created, again.metric_points, again.statuses_fixed) == (0, 0, 0)
    assert len(logged) == 1
    client = MlflowClient(tracking_uri)
    parents = client.search_runs([result.experiment_id], "tags.`tuning.role` = 'parent'")
    assert [p.info.run_id for p in parents] == [result.parent_run_id]
    children = client.search_runs(
        [result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    stages = sorted(c.data.tags.get("tuning.stage") for c in children)
    assert stages == ["1"] * 4 + ["2"] * 2
    assert sorted(c.data.tags["ray.trial_id"] for c in children) == sorted(
        t.trial_id for t in result.trials)  # one child run per trial
    for child in children:  # each report logged once: rounds 10 and 20 (fifo: no stop)
        steps = [m.step for m in client.get_metric_history(child.info.run_id,
                                                            spec.objective.result_key)]
        assert sorted(steps) == [10, 20], (child.data.tags["ray.trial_id"], steps)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["tuning.stop_reason"] == "all trials done"
    report = json.loads(open(client.download_artifacts(result.parent_run_id,
                                                       "two_stage.json")).read())
    assert report["refine_with"] == refine_with and report["stage1_samples"] == 4
    assert report["stage1_with"] == stage1_with
    for name, r in report["ranges"].items():
        assert parent.data.params[f"stage2.{name}"] == f"[{r['low']!r}, {r['high']!r}]"
        for child in children:
            if child.data.tags["tuning.stage"] == "2":
                value = float(child.data.params[name])
                assert r["low"] <= value <= r["high"], (name, value, r)
    # Stage 2 narrowed around stage 1's best half: at least one range shrank.
    assert any(r["high"] - r["low"] < r["original_high"] - r["original_low"]
               for r in report["ranges"].values())


def test_a_stage_2_that_saved_no_tune_state_is_set_aside_and_stage_1_resumed(tmp_path):
    from tuning.job.state import JobState, tune_dirs
    from tuning.job.two_stage import restorable_stage

    paths = [str(tmp_path / "stage1"), str(tmp_path / "stage2")]
    state = JobState(spec={"name": "x"}, tracking_uri="u", experiment_id="1", parent_run_id="p",
                     status="RUNNING", data_hash="h", tune_path=paths[1], stage=2,
                     stage_paths=paths)
    (tmp_path / "stage2" / "t_00000").mkdir(parents=True)
    (tmp_path / "stage2" / "tuner.pkl").write_text("")  # the Tuner was built; fit never saved
    assert restorable_stage(state, tmp_path) == 1
    assert (state.stage, state.tune_path, state.stage_paths) == (1, paths[0], paths[:1])
    assert JobState.read(tmp_path) == state and tune_dirs(tmp_path) == [tmp_path / "stage1"]
    assert not (tmp_path / "stage2").exists()
    assert [d.name.startswith("stage2-abandoned-") for d in tmp_path.iterdir() if d.is_dir()] \
        == [True]
    state.set_stage(2, paths[1])
    (tmp_path / "stage2").mkdir()
    (tmp_path / "stage2" / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")
    assert restorable_stage(state, tmp_path) == 2 and state.tune_path == paths[1]
