"""The SageMaker-style ``tuner:`` section, translated onto the native spec."""

from __future__ import annotations

import pytest

from tuning.spec import SpecError, load_spec, parse_spec


def tuner(**over) -> dict:
    section = {
        "strategy": "Bayesian", "objective_metric_name": "validation:aucpr",
        "objective_type": "Maximize", "max_jobs": 20, "max_parallel_jobs": 2,
        "hyperparameter_ranges": {
            "eta": {"type": "ContinuousParameter", "min_value": 0.01, "max_value": 0.2},
            "max_depth": {"type": "IntegerParameter", "min_value": 3, "max_value": 10},
            "gamma": {"type": "ContinuousParameter", "min_value": 0, "max_value": 5},
        },
    }
    section.update(over)
    return {"name": "sm", "tuner": section}


def test_tutorial_example_translates_onto_the_native_spec():
    spec = load_spec("examples/sagemaker_style.yaml")
    assert spec.search.algorithm == "gp"
    assert spec.scheduler.type == "fifo"
    assert spec.objective.metric == "aucpr" and spec.objective.resolved_mode == "max"
    assert spec.budget.num_samples == 20 and spec.budget.max_concurrent == 2
    eta, depth, gamma = (spec.search_space[k] for k in ("eta", "max_depth", "gamma"))
    assert (eta.type, eta.low, eta.high) == ("uniform", 0.01, 0.2)
    assert (depth.type, depth.low, depth.high) == ("randint", 3, 11)  # 10 is inclusive there
    assert (gamma.type, gamma.low, gamma.high) == ("uniform", 0, 5)


@pytest.mark.parametrize("strategy,algorithm,scheduler", [
    ("Bayesian", "gp", "fifo"), ("Random", "random", "fifo"),
    ("Hyperband", "random", "hyperband"), ("Grid", "grid", "fifo"),
])
def test_strategies(strategy, algorithm, scheduler):
    spec = parse_spec(tuner(strategy=strategy))
    assert (spec.search.algorithm, spec.scheduler.type) == (algorithm, scheduler)


def test_scaling_types_and_auto_early_stopping():
    ranges = {
        "eta": {"type": "ContinuousParameter", "min_value": 0.001, "max_value": 1},
        "max_leaves": {"type": "IntegerParameter", "min_value": 8, "max_value": 256,
                       "scaling_type": "Logarithmic"},
        "subsample": {"type": "ContinuousParameter", "min_value": 0.5, "max_value": 1,
                      "scaling_type": "Linear"},
        "grow_policy": {"type": "CategoricalParameter", "values": ["depthwise", "lossguide"]},
    }
    spec = parse_spec(tuner(hyperparameter_ranges=ranges, early_stopping_type="Auto",
                            objective_type="Minimize", objective_metric_name="logloss"))
    space = spec.search_space
    assert space["eta"].type == "loguniform"  # Auto: three decades -> log
    assert (space["max_leaves"].type, space["max_leaves"].high) == ("lograndint", 257)
    assert space["subsample"].type == "uniform"
    assert space["grow_policy"].values == ["depthwise", "lossguide"]
    assert spec.scheduler.type == "median" and spec.objective.resolved_mode == "min"


def test_completion_criteria_and_static_hyperparameters():
    spec = parse_spec(tuner(completion_criteria={
        "target_objective_metric_value": 0.9, "max_number_of_training_jobs_not_improving": 5},
        max_runtime_in_seconds=600, static_hyperparameters={"num_round": 50, "max_bin": 64}))
    assert (spec.budget.target, spec.budget.no_improvement_trials) == (0.9, 5)
    assert spec.budget.time_budget_s == 600
    assert spec.training.num_boost_round == 50 and spec.training.params == {"max_bin": 64}


@pytest.mark.parametrize("change,message", [
    ({"hyperparameter_ranges": {"m": {"type": "ContinuousParameter", "min_value": 0.5,
                                      "max_value": 0.99, "scaling_type": "ReverseLogarithmic"}}},
     "tuner.hyperparameter_ranges.m: ReverseLogarithmic has no native range type"),
    ({"strategy": "Annealing"}, "tuner.strategy"),
    ({"max_jobs": 0}, "tuner.max_jobs"),
    ({"strategy": "Hyperband", "early_stopping_type": "Auto"}, "early_stopping_type must be Off"),
    ({"objective_metric_name": "validation:rmse"}, "objective.metric: unknown objective 'rmse'"),
])
def test_bad_tuner_sections_are_one_line_errors(change, message):
    with pytest.raises(SpecError) as err:
        parse_spec(tuner(**change))
    assert message.replace("ReverseLogarithmic", "scaling_type ReverseLogarithmic") in str(
        err.value) or message in str(err.value)
    assert "\n" not in str(err.value)


def test_tuner_and_native_sections_do_not_mix():
    with pytest.raises(SpecError, match="cannot be combined with native section search"):
        parse_spec({**tuner(), "search": {"algorithm": "tpe"}})
    with pytest.raises(SpecError, match="budget.num_samples is set by the tuner section"):
        parse_spec({**tuner(), "budget": {"num_samples": 3}})


def test_validate_prints_the_native_spec(capsys):
    from tuning.cli import main

    assert main(["validate", "examples/sagemaker_style.yaml"]) == 0
    out = capsys.readouterr().out
    assert "algorithm: gp" in out and "tuner" not in out


@pytest.mark.slow
def test_sagemaker_example_runs(ray_session, tracking_uri, tmp_path):
    import yaml

    from tuning.job.lifecycle import run_job

    raw = yaml.safe_load(open("examples/sagemaker_style.yaml"))
    raw["tuner"]["max_jobs"] = 3
    raw["data"].update(rows=5000, fraud_rate=0.02)
    raw["training"] = {"num_boost_round": 20, "report_every": 10}
    raw["tracking"] = {"tracking_uri": tracking_uri, "log_model": False}
    raw["storage"] = {"path": str(tmp_path / "runs")}
    result = run_job(parse_spec(raw), progress=False)
    assert len(result.trials) == 3 and result.count("FAILED") == 0
    for trial in result.trials:
        assert 0.01 <= trial.config["eta"] <= 0.2 and 3 <= trial.config["max_depth"] <= 10
