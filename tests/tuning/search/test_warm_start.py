"""Warm starts: earlier results replayed into searchers, read back from a real store."""

from __future__ import annotations

import logging

import pytest

from tuning.spec import SpecError, parse_spec
from tuning.search.build import build_searcher
from tuning.search.space import param_space
from tuning.search.warm_start import Observation, Prefilled, fit_to_space

SPACE = {"eta": {"type": "loguniform", "low": 0.02, "high": 0.3},
         "max_depth": {"type": "randint", "low": 2, "high": 6},
         "grow_policy": {"type": "choice", "values": ["depthwise", "lossguide"]}}
OBS = [Observation({"eta": 0.05, "max_depth": 3, "grow_policy": "depthwise"}, 0.4),
       Observation({"eta": 0.2, "max_depth": 5, "grow_policy": "lossguide"}, 0.6),
       Observation({"eta": 0.1, "max_depth": 4, "grow_policy": "depthwise"}, 0.5)]


def spec_of(algorithm: str, space: dict = SPACE, **extra):
    return parse_spec({"name": "warm", "search_space": space,
                       "search": {"algorithm": algorithm, "seed": 0, "n_initial_points": 2},
                       "training": {"num_boost_round": 20, "report_every": 10}, **extra})


def test_mlflow_strings_become_typed_configs_and_outsiders_are_skipped(caplog):
    spec = spec_of("tpe")
    runs = [({"eta": "0.05", "max_depth": "3", "grow_policy": "depthwise"}, {"val_aucpr": 0.4}),
            ({"eta": "0.9", "max_depth": "3", "grow_policy": "depthwise"}, {"val_aucpr": 0.7}),
            ({"eta": "0.05", "max_depth": "3", "grow_policy": "depthwise"}, {}),
            ({"eta": "0.05", "grow_policy": "depthwise"}, {"val_aucpr": 0.5})]
    with caplog.at_level(logging.WARNING, logger="tuning.search.warm_start"):
        kept = fit_to_space(spec, runs)
    assert kept == [OBS[0]]
    assert "skipped 3 of 4 earlier trials" in caplog.text
    assert "eta=0.9 is outside the search space" in caplog.text


@pytest.mark.parametrize("algorithm", ["tpe", "gp", "optuna_tpe", "cmaes", "nsga2"])
def test_every_learning_searcher_is_fed_before_it_suggests(algorithm):
    space, obs = SPACE, OBS
    if algorithm == "cmaes":  # numeric ranges only
        space = {k: v for k, v in SPACE.items() if k != "grow_policy"}
        obs = [Observation({k: v for k, v in o.config.items() if k != "grow_policy"}, o.value)
               for o in OBS]
    spec = spec_of(algorithm, space)
    searcher = build_searcher(spec, obs)
    assert isinstance(searcher, Prefilled)
    assert searcher.set_search_properties("val_aucpr", "max", param_space(spec))
    assert searcher.replayed == len(obs)
    inner = searcher.searcher
    if algorithm == "tpe":
        losses = sorted(t["result"]["loss"] for t in inner._hpopt_trials.trials)
        assert losses == [-0.6, -0.5, -0.4]
    elif algorithm == "gp":
        assert len(inner._optimizer.space) == 3
    else:  # Ray's OptunaSearch: the replayed trials are complete trials of its study
        done = [t for t in inner._ot_study.trials if t.state.name == "COMPLETE"]
        assert sorted(t.value for t in done) == [0.4, 0.5, 0.6]
        assert [t.params for t in done] == [o.config for o in obs]
    config = searcher.suggest("first-real-trial")
    assert config is not None


def test_warm_start_needs_a_learning_searcher():
    with pytest.raises(SpecError, match="search.warm_start needs a searcher that learns"):
        parse_spec({"name": "w", "search_space": SPACE,
                    "search": {"algorithm": "random", "warm_start": {"experiment": "x"}}})


def test_warm_start_names_exactly_one_source():
    with pytest.raises(SpecError, match="exactly one of experiment"):
        parse_spec({"name": "w", "search_space": SPACE,
                    "search": {"warm_start": {"experiment": "x", "run_id": "y"}}})


@pytest.mark.slow
def test_warm_started_job_reads_the_earlier_job_from_mlflow(ray_session, tracking_uri, tmp_path,
                                                           caplog):
    from mlflow.tracking import MlflowClient

    from tuning.errors import JobError
    from tuning.job.lifecycle import run_job
    from tuning.tracking.observations import load_observations

    def warm(spec):  # what the job does: read the earlier trials, replay them
        return build_searcher(spec, load_observations(spec))

    common = {"data": {"rows": 5000, "fraud_rate": 0.02, "seed": 0},
              "scheduler": {"type": "fifo"},
              "training": {"num_boost_round": 20, "report_every": 10},
              "tracking": {"tracking_uri": tracking_uri, "log_model": False},
              "storage": {"path": str(tmp_path / "runs")}}
    first = run_job(parse_spec({"name": "earlier", "search_space": SPACE,
                                "search": {"algorithm": "random", "seed": 1},
                                "evaluation": {"cv": 1},  # CV is not this test's subject
                                "budget": {"num_samples": 3, "max_concurrent": 2}, **common}),
                    progress=False)
    assert first.count("FINISHED") == 3
    later = {"name": "later", "search_space": SPACE,
             "evaluation": {"cv": 1},  # CV is not this test's subject
             "budget": {"num_samples": 3, "max_concurrent": 2}, **common}
    by_name = parse_spec({**later, "search": {"algorithm": "tpe",
                                              "warm_start": {"experiment": "earlier"}}})
    searcher = warm(by_name)
    # Each earlier trial comes back with its config and its last (<= best) objective value.
    assert len(searcher.observations) == 3
    for trial in first.trials:
        config = {k: trial.config[k] for k in SPACE}
        matches = [o for o in searcher.observations if o.config == config]
        assert len(matches) == 1
        assert 0 < matches[0].value <= trial.best_value

    by_run = parse_spec({**later, "search": {
        "algorithm": "gp", "warm_start": {"run_id": first.parent_run_id}}})
    result = run_job(by_run, progress=False)
    assert len(result.trials) == 3 and result.count("FAILED") == 0
    client = MlflowClient(tracking_uri)
    children = client.search_runs([result.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    assert len(children) == 3  # the replayed trials are not re-run or re-logged

    narrower = {**SPACE, "max_depth": {"type": "randint", "low": 2, "high": 3}}
    with caplog.at_level(logging.WARNING, logger="tuning.search.warm_start"):
        kept = warm(parse_spec({**later, "search_space": narrower, "search": {
            "algorithm": "tpe", "warm_start": {"run_id": first.parent_run_id}}}))
    outside = sum(t.config["max_depth"] != 2 for t in first.trials)
    assert len(getattr(kept, "observations", [])) == 3 - outside
    if outside:
        assert f"skipped {outside} of 3 earlier trials" in caplog.text

    with pytest.raises(JobError, match="no MLflow experiment 'nope'"):
        warm(parse_spec({**later, "search": {"warm_start": {"experiment": "nope"}}}))


# --------------------------------------------- multi-objective and constrained
MULTI = {"metrics": ["aucpr", "model_size"]}


def _study_of(spec, obs):
    from tuning.search.space import param_space

    searcher = build_searcher(spec, obs)
    assert searcher.set_search_properties(spec.objective.tune_key, "max", param_space(spec))
    assert searcher.replayed == len(obs)
    return searcher, searcher.searcher._ot_study


@pytest.mark.parametrize("algorithm", ["nsga2", "optuna_tpe"])
def test_a_multi_objective_search_is_fed_every_objective_of_each_earlier_trial(algorithm):
    obs = [Observation(o.config, o.value, {"val_model_size_at_best": 100.0 * (i + 1)})
           for i, o in enumerate(OBS)]
    spec = spec_of(algorithm, objective=MULTI, search={
        "algorithm": algorithm, "seed": 0, "n_initial_points": 2, "warm_start": {"experiment": "x"}})
    searcher, study = _study_of(spec, obs)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert [t.values for t in done] == [[0.4, 100.0], [0.6, 200.0], [0.5, 300.0]]
    assert [t.params for t in done] == [o.config for o in obs]
    assert len(study.best_trials) == 2  # (0.5, 300) is beaten by (0.6, 200)
    assert isinstance(searcher.suggest("first-real-trial"), dict)


def test_a_constrained_search_is_fed_each_earlier_trials_violation():
    spec = spec_of("nsga2", objective={**MULTI, "constraints": [{"metric": "model_size", "max": 150}]},
                   search={"algorithm": "nsga2", "seed": 0, "warm_start": {"experiment": "x"}})
    runs = [({"eta": "0.05", "max_depth": "3", "grow_policy": "depthwise"},
             {"val_aucpr_best": 0.4, "val_model_size_at_best": 100.0}),
            ({"eta": "0.2", "max_depth": "5", "grow_policy": "lossguide"},
             {"val_aucpr_best": 0.6, "val_model_size_at_best": 400.0})]
    obs = fit_to_space(spec, runs)
    assert [o.further["val_constraint_violation"] for o in obs] == [0.0, 250.0]
    _, study = _study_of(spec, obs)
    assert [t.constraints for t in study.trials] == [{"violation": 0.0}, {"violation": 250.0}]


def test_earlier_trials_give_every_objective_at_one_round(caplog):
    spec = spec_of("nsga2", objective=MULTI, search={"algorithm": "nsga2", "warm_start": {"experiment": "x"}})
    params = {"eta": "0.05", "max_depth": "3", "grow_policy": "depthwise"}
    runs = [
        # a multi-objective job's trial: both at its best round, its last report ignored
        (params, {"val_aucpr_best": 0.5, "val_model_size_at_best": 40.0, "val_aucpr": 0.45,
                  "val_model_size": 90.0}),
        # a single-objective job's trial: no model size at the best round, so both at the last
        (params, {"val_aucpr_best": 0.5, "val_aucpr": 0.45, "val_model_size": 90.0}),
        # a job from before model sizes were reported
        (params, {"val_aucpr_best": 0.5, "val_aucpr": 0.45}),
    ]
    with caplog.at_level(logging.WARNING, logger="tuning.search.warm_start"):
        obs = fit_to_space(spec, runs)
    assert [(o.value, o.further) for o in obs] == [(0.5, {"val_model_size_at_best": 40.0}),
                                                   (0.45, {"val_model_size_at_best": 90.0})]
    assert "skipped 1 of 3 earlier trials" in caplog.text and "(first: no val_model_size)" in caplog.text
