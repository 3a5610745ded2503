"""Schedulers: the registry contract (every entry runs a tiny job) and searcher pairing."""

from __future__ import annotations

import pytest

from tuning.spec import SpecError, parse_spec
from tuning.schedule.registry import SCHEDULERS, build_scheduler
from tuning.search.registry import searcher_for

SPACE = {"eta": {"type": "loguniform", "low": 0.02, "high": 0.3},
         "max_depth": {"type": "randint", "low": 2, "high": 6}}


def spec_dict(scheduler: dict | None, algorithm: str = "tpe", **extra) -> dict:
    spec = {"name": "sched", "search_space": SPACE, "search": {"algorithm": algorithm},
            "training": {"num_boost_round": 20, "report_every": 10}}
    if scheduler is not None:
        spec["scheduler"] = scheduler
    spec.update(extra)
    return spec


def test_bohb_scheduler_is_gone_with_a_line_that_says_what_to_use():
    # It only ran with search.algorithm 'bohb' (hpbandster), removed in issue #15.
    assert "bohb" not in SCHEDULERS
    with pytest.raises(SpecError, match="scheduler.type: 'bohb' was removed .* use asha or "
                                        "hyperband"):
        parse_spec(spec_dict({"type": "bohb"}, "tpe"))


def test_median_takes_its_settings():
    spec = parse_spec(spec_dict({"type": "median", "grace_period": 2, "min_samples_required": 4}))
    rule = build_scheduler(spec)
    assert type(rule).__name__ == "MedianStoppingRule"
    assert rule._grace_period == 2 and rule._min_samples_required == 4


def test_every_scheduler_builds():
    for name in SCHEDULERS:
        algorithm = searcher_for(name) or "tpe"
        assert build_scheduler(parse_spec(spec_dict({"type": name}, algorithm))) is not None


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_contract_every_scheduler_runs_a_tiny_job(scheduler, ray_session, tracking_uri, tmp_path):
    from mlflow.tracking import MlflowClient

    from tuning.job.lifecycle import run_job

    algorithm = searcher_for(scheduler) or "random"
    spec = parse_spec(spec_dict(
        {"type": scheduler, "grace_period": 1, "reduction_factor": 2,
         "min_samples_required": 2}, algorithm,
        name=f"sched-{scheduler}", data={"rows": 5000, "fraud_rate": 0.02, "seed": 0},
        budget={"num_samples": 4, "max_concurrent": 2},
        tracking={"tracking_uri": tracking_uri, "log_model": False},
        storage={"path": str(tmp_path / "runs")}))
    result = run_job(spec, progress=False)
    assert len(result.trials) == 4
    assert result.count("FAILED") == 0
    assert result.best is not None
    parent = MlflowClient(tracking_uri).get_run(result.parent_run_id)
    assert parent.data.tags["tuning.scheduler"] == scheduler
    assert parent.data.tags["tuning.stop_reason"] == "all trials done"


def test_hyperband_one_trial_at_a_time_is_warned_about():
    from tuning.schedule.registry import concurrency_warning

    hyperband = parse_spec(spec_dict({"type": "hyperband"}, "random"))
    assert "stops no trial" in concurrency_warning(hyperband, 1)
    assert concurrency_warning(hyperband, 2) is None
    for other in ("asha", "median", "fifo"):
        assert concurrency_warning(parse_spec(spec_dict({"type": other}, "random")), 1) is None


@pytest.mark.slow
def test_hyperband_one_trial_at_a_time_stops_nothing_where_asha_does(ray_session, tracking_uri,
                                                                      tmp_path, caplog):
    """What the warning says, on a real job: the same 6 trials, one at a time, run every
    round under Hyperband (and the job warns), while ASHA stops some of them."""
    import logging

    from tuning.job.lifecycle import run_job

    def run(scheduler):
        spec = parse_spec(spec_dict(
            {"type": scheduler, "grace_period": 1, "reduction_factor": 2}, "random",
            name=f"lone-{scheduler}", data={"rows": 3000, "fraud_rate": 0.05, "seed": 4},
            training={"num_boost_round": 20, "report_every": 5},
            budget={"num_samples": 6, "max_concurrent": 1},
            tracking={"tracking_uri": tracking_uri, "log_model": False},
            storage={"path": str(tmp_path / scheduler)}))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="tuning.job.tuner"):
            result = run_job(spec, progress=False)
        return result, "stops no trial" in caplog.text

    hyperband, warned = run("hyperband")
    assert warned
    assert len(hyperband.trials) == 6 and all(t.rounds == 20 for t in hyperband.trials)
    asha, warned = run("asha")
    assert not warned
    assert len(asha.trials) == 6 and any(t.rounds < 20 for t in asha.trials)
