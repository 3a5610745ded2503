"""The two-stage job: range narrowing, and one parent run with stage-tagged children."""

from __future__ import annotations

import json
import math

import pytest

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


@pytest.mark.slow
@pytest.mark.parametrize("stage1_with, refine_with", [("random", "tpe"), ("qmc", "gp")])
def test_two_stage_job_leaves_one_parent_and_stage_tagged_children(
        stage1_with, refine_with, ray_session, tracking_uri, tmp_path):
    from mlflow.tracking import MlflowClient

    from tuning.job.lifecycle import run_job

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
    result = run_job(spec, progress=False)
    assert len(result.trials) == 6
    client = MlflowClient(tracking_uri)
    parents = client.search_runs([result.experiment_id], "tags.`tuning.role` = 'parent'")
    assert [p.info.run_id for p in parents] == [result.parent_run_id]
    children = client.search_runs(
        [result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    stages = sorted(c.data.tags.get("tuning.stage") for c in children)
    assert stages == ["1"] * 4 + ["2"] * 2
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
