"""Searchers: the registry contract (every entry runs a tiny job, learners warm-started,
every searcher's state through Tune's save and restore), the GP's encoding, Optuna's samplers."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from faults import InterruptAfter

from tuning.search.codec import contains, from_unit, parse_value, to_unit
from tuning.spec import SpecError, parse_spec
from tuning.search.gp import GPSearch
from tuning.search.build import build_searcher
from tuning.search.registry import SEARCHERS

SPACE = {
    "eta": {"type": "loguniform", "low": 0.01, "high": 0.3},
    "max_depth": {"type": "randint", "low": 2, "high": 6},
    "subsample": {"type": "uniform", "low": 0.6, "high": 1.0},
    "grow_policy": {"type": "choice", "values": ["depthwise", "lossguide"]},
}


def tiny(uri: str, tmp_path, algorithm: str, **sections) -> dict:
    spec = {
        "name": f"contract-{algorithm}".replace("_", "-"),
        "data": {"rows": 5000, "fraud_rate": 0.02, "seed": 0},
        # CMA-ES takes numeric ranges only.
        "search_space": ({k: v for k, v in SPACE.items() if k != "grow_policy"}
                         if algorithm == "cmaes" else SPACE),
        "search": {"algorithm": algorithm, "seed": 0, "n_initial_points": 2},
        "training": {"num_boost_round": 20, "report_every": 10},
        "evaluation": {"cv": 1},  # CV is not this test's subject
        "budget": {"num_samples": 4 if algorithm == "two_stage" else 3, "max_concurrent": 2},
        "tracking": {"tracking_uri": uri, "log_model": False},
        "storage": {"path": str(tmp_path / "runs")},
    }
    if algorithm == "grid":
        spec["search_space"] = {"eta": {"type": "choice", "values": [0.05, 0.2]},
                                "max_depth": 3}
    spec.update(sections)
    return spec


# ------------------------------------------------------------------- codec
def test_unit_round_trip_keeps_types_and_ranges():
    spec = parse_spec({"name": "x", "search_space": SPACE})
    for name, param in spec.search_space.items():
        for u in (0.0, 0.13, 0.5, 0.77, 1.0):
            value = from_unit(param, u)
            assert contains(param, value), (name, u, value)
            assert from_unit(param, to_unit(param, value)) == value
    depth = spec.search_space["max_depth"]
    assert {from_unit(depth, u / 100) for u in range(101)} == {2, 3, 4, 5}
    assert isinstance(from_unit(depth, 0.5), int)


def test_log_params_are_log_scaled():
    spec = parse_spec({"name": "x", "search_space": SPACE})
    eta = spec.search_space["eta"]
    assert math.isclose(from_unit(eta, 0.5), math.sqrt(0.01 * 0.3))


def test_mlflow_strings_parse_back():
    spec = parse_spec({"name": "x", "search_space": SPACE})
    assert parse_value(spec.search_space["eta"], "0.05") == 0.05
    assert parse_value(spec.search_space["max_depth"], "4") == 4
    assert parse_value(spec.search_space["grow_policy"], "lossguide") == "lossguide"
    with pytest.raises(ValueError):
        parse_value(spec.search_space["grow_policy"], "nope")


# ---------------------------------------------------------------------- gp
def test_gp_suggests_valid_typed_configs_and_avoids_running_duplicates():
    spec = parse_spec({"name": "x", "search_space": {**SPACE, "max_bin": 64}})
    gp = GPSearch(spec.search_space, n_initial_points=3, seed=0)
    gp.set_search_properties("val_aucpr", "max", {})
    seen = []
    for i in range(12):
        config = gp.suggest(f"t{i}")
        assert config["max_bin"] == 64
        assert isinstance(config["max_depth"], int) and 2 <= config["max_depth"] < 6
        assert config["grow_policy"] in ("depthwise", "lossguide")
        assert 0.01 <= config["eta"] <= 0.3
        seen.append(config)
        # Score peaks at eta 0.1: the GP phase should move towards it.
        gp.on_trial_complete(f"t{i}", {"val_aucpr": -abs(math.log(config["eta"] / 0.1))})
    late = [abs(math.log(c["eta"] / 0.1)) for c in seen[6:]]
    early = [abs(math.log(c["eta"] / 0.1)) for c in seen[:3]]
    assert min(late) < min(early)
    # Two suggestions in a row without results must not be the same configuration.
    a, b = gp.suggest("p1"), gp.suggest("p2")
    assert a != b


def test_gp_minimises_when_mode_is_min():
    spec = parse_spec({"name": "x", "search_space": {"subsample": {"type": "uniform", "low": 0,
                                                                   "high": 1}}})
    gp = GPSearch(spec.search_space, n_initial_points=3, seed=1)
    gp.set_search_properties("loss", "min", {})
    xs = []
    for i in range(14):
        x = gp.suggest(f"t{i}")["subsample"]
        xs.append(x)
        gp.on_trial_complete(f"t{i}", {"loss": (x - 0.8) ** 2})
    assert min(abs(x - 0.8) for x in xs[5:]) < 0.05


def test_every_searcher_builds(tmp_path):
    for name, entry in SEARCHERS.items():
        spec = parse_spec(tiny("sqlite:///x.db", tmp_path, name))
        if name == "two_stage":
            with pytest.raises(TypeError):
                build_searcher(spec)
        else:
            assert build_searcher(spec) is not None


def test_unknown_searcher_lists_valid_ones():
    with pytest.raises(SpecError, match="valid: tpe, random, grid, gp, optuna_tpe, cmaes, qmc, "
                                        "nsga2, two_stage"):
        parse_spec({"name": "x", "search_space": SPACE, "search": {"algorithm": "annealing"}})


def test_bohb_is_gone_with_a_line_that_says_what_to_use():
    for section in ({"search": {"algorithm": "bohb"}}, {"scheduler": {"type": "bohb"}}):
        with pytest.raises(SpecError) as err:
            parse_spec({"name": "x", "search_space": SPACE, **section})
        assert "'bohb' was removed" in str(err.value)
        assert ("use optuna_tpe or tpe with scheduler.type asha" in str(err.value)
                or "use asha or hyperband" in str(err.value))
    assert "bohb" not in SEARCHERS


# ------------------------------------------------------------- optuna samplers
def test_cmaes_refuses_choices_at_validation_naming_them():
    with pytest.raises(SpecError, match="'cmaes' searches numeric ranges only; search_space has "
                                        "choices: grow_policy, booster"):
        parse_spec({"name": "x", "search": {"algorithm": "cmaes"}, "search_space": {
            **SPACE, "booster": {"type": "choice", "values": ["gbtree", "dart"]}}})
    numeric = {k: v for k, v in SPACE.items() if k != "grow_policy"}
    assert parse_spec({"name": "x", "search": {"algorithm": "cmaes"},
                       "search_space": {**numeric, "grow_policy": "lossguide"}})


def _drive(searcher, spec, n: int, start: int = 0) -> list[dict]:
    """Suggest and complete ``n`` trials; the score peaks at eta 0.1."""
    configs = []
    for i in range(start, start + n):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_result(f"t{i}", {"val_aucpr": 0.1, "training_iteration": 1})
        searcher.on_trial_complete(f"t{i}", {"val_aucpr": -abs(math.log(config["eta"] / 0.1)),
                                             "training_iteration": 2})
        configs.append(config)
    return configs


def _optuna_spec(algorithm: str, seed: int = 0, num_samples: int = 40):
    space = ({k: v for k, v in SPACE.items() if k != "grow_policy"}
             if algorithm == "cmaes" else SPACE)
    return parse_spec({"name": "x", "search_space": space, "budget": {"num_samples": num_samples},
                       "search": {"algorithm": algorithm, "seed": seed, "n_initial_points": 3}})


@pytest.mark.parametrize("algorithm", ["optuna_tpe", "cmaes", "qmc", "nsga2"])
def test_optuna_samplers_honour_the_seed_and_the_space(algorithm):
    from tuning.search.space import param_space

    runs = {}
    for seed in (0, 0, 1):
        spec = _optuna_spec(algorithm, seed)
        searcher = build_searcher(spec)
        assert searcher.set_search_properties("val_aucpr", "max", param_space(spec))
        runs.setdefault(seed, []).append(_drive(searcher, spec, 8))
    assert runs[0][0] == runs[0][1]
    assert runs[0][0] != runs[1][0]
    for config in runs[0][0]:
        for name, param in spec.search_space.items():
            if name in config:
                assert contains(param, config[name]), (name, config[name])


def test_nsga2_population_comes_from_the_budget_so_40_trials_are_not_random_search():
    from tuning.search.optuna_samplers import nsga2_population
    from tuning.search.space import param_space

    assert [nsga2_population(n) for n in (10, 40, 100, 1000)] == [4, 8, 20, 50]
    spec = _optuna_spec("nsga2", num_samples=40)
    searcher = build_searcher(spec)
    searcher.set_search_properties("val_aucpr", "max", param_space(spec))
    _drive(searcher, spec, 12)
    key = "NSGAIISampler:generation"
    generations = [t.system_attrs[key] for t in searcher._ot_study.trials]
    # 8 random parents, then children of generation 1 bred from them.
    assert generations[:8] == [0] * 8 and generations[8:] == [1] * 4


def test_optuna_tpe_is_multivariate_and_grouped():
    spec = _optuna_spec("optuna_tpe")
    sampler = build_searcher(spec)._sampler
    assert type(sampler).__name__ == "TPESampler"
    assert sampler._multivariate is True and sampler._group is True
    assert sampler._n_startup_trials == 3


def test_qmc_can_run_stage_one_of_two_stage_and_random_stays_the_default():
    spec = parse_spec({"name": "x", "search_space": SPACE,
                       "search": {"algorithm": "two_stage"}})
    assert spec.search.stage1_with == "random"
    spec = parse_spec({"name": "x", "search_space": SPACE,
                       "search": {"algorithm": "two_stage", "stage1_with": "qmc"}})
    assert spec.search.stage1_with == "qmc"
    with pytest.raises(SpecError, match="unknown first-stage searcher 'tpe'; valid: random, qmc"):
        parse_spec({"name": "x", "search_space": SPACE,
                    "search": {"algorithm": "two_stage", "stage1_with": "tpe"}})


# ------------------------------------------------------------------ resume
# Tune's own BasicVariantGenerator (random, grid) models nothing; two_stage is two jobs.
STATEFUL = [n for n in SEARCHERS if n not in ("random", "grid", "two_stage")]


@pytest.mark.parametrize("algorithm", STATEFUL)
def test_contract_searcher_state_survives_tunes_save_and_restore(algorithm, tmp_path):
    """What ``tuning resume`` relies on: the searcher Tune rebuilds and restores from the
    experiment folder goes on exactly as the one that was saved (warm start included)."""
    from tuning.search.space import param_space
    from tuning.search.warm_start import Observation

    spec = _optuna_spec(algorithm)
    learns = SEARCHERS[algorithm].learns
    earlier = [Observation({"eta": 0.05, "max_depth": 3, "subsample": 0.7,
                            "grow_policy": "depthwise"}, -0.7)] if learns else None
    if algorithm == "cmaes":
        earlier = [Observation({k: v for k, v in o.config.items() if k != "grow_policy"},
                               o.value) for o in earlier]

    def fresh():
        searcher = build_searcher(spec, earlier)
        assert searcher.set_search_properties("val_aucpr", "max", param_space(spec))
        return searcher

    original = fresh()
    _drive(original, spec, 4)  # past n_initial_points (3): the model is in charge
    original.save_to_dir(str(tmp_path), session_str="s")
    restored = fresh()
    restored.restore_from_dir(str(tmp_path))
    assert _drive(restored, spec, 2, start=4) == _drive(original, spec, 2, start=4)


# ---------------------------------------------------------------- contract
INTERRUPT_AFTER = 1  # completed trials




def _observed(spec: Any, tune_path: str) -> int | None:
    """Trials the searcher Tune saved in ``tune_path`` was told of, replayed ones included
    (None: Ray's variant generator of random and grid, which holds no results)."""
    if spec.search.algorithm in ("random", "grid", "two_stage"):  # two_stage: random stage 1
        return None
    searcher = build_searcher(spec)
    searcher.restore_from_dir(tune_path)
    if hasattr(searcher, "_ot_study"):  # Optuna samplers
        return sum(t.state.name in ("COMPLETE", "PRUNED") for t in searcher._ot_study.trials)
    if hasattr(searcher, "_hpopt_trials"):  # HyperOpt
        return sum(t["result"].get("status") == "ok" for t in searcher._hpopt_trials.trials)
    return len(searcher._optimizer.space)  # GP: its observations


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", list(SEARCHERS))
def test_contract_every_searcher_runs_a_tiny_job(algorithm, ray_session, tracking_uri, tmp_path,
                                                 request, caplog, monkeypatch):
    """Every searcher runs a tiny job; a learning one warm-started from the shared
    finished tiny job (its space holds that job's: eta, max_depth, grow_policy); nsga2
    multi-objective (aucpr, model_size), fed both objectives of each earlier trial.

    The job is interrupted by a real Ctrl-C once a trial has completed (sent from Tune's loop
    by a driver callback) and finished with ``resume_job`` (``tuning resume``): the budget,
    no configuration twice, one child run per trial, and the searcher going on from the one
    Tune saved: the last searcher state holds every trial and each replayed one once (a fresh
    searcher would hold only the trials started after the resume). A two-stage job is
    interrupted in stage 1: the resume finishes stage 1 from its own Tune folder, then runs
    stage 2 (whose searcher holds stage 1's results and its own).
    """
    from tuning.job import lifecycle
    from tuning.job.state import JobState, find_experiment_dir

    sections = {}
    earlier = None
    if SEARCHERS[algorithm].learns:
        earlier = request.getfixturevalue("finished_tiny_job")
        space = {k: v for k, v in SPACE.items() if k != "subsample"}
        if algorithm == "cmaes":
            space.pop("grow_policy")
        sections = {"search_space": space, "search": {
            "algorithm": algorithm, "seed": 0, "n_initial_points": 2,
            "warm_start": {"run_id": earlier.parent_run_id, "tracking_uri": earlier.tracking_uri}}}
    if algorithm == "nsga2":
        sections["objective"] = {"metrics": ["aucpr", "model_size"]}
    spec = parse_spec(tiny(tracking_uri, tmp_path, algorithm, **sections))
    expected = 2 if algorithm == "grid" else spec.budget.num_samples
    two_stage = algorithm == "two_stage"
    marker, callbacks = tmp_path / "interrupted", lifecycle.driver_callbacks

    def with_interrupt(*args: Any, **kwargs: Any) -> Any:
        tracker, found = callbacks(*args, **kwargs)
        return tracker, [*found, InterruptAfter(INTERRUPT_AFTER, marker)]

    monkeypatch.setattr(lifecycle, "driver_callbacks", with_interrupt)
    stored = 0
    if earlier is not None:
        from tuning.tracking.observations import load_observations

        observations = load_observations(spec)
        stored = len(observations)
        assert stored >= 1
        if spec.objective.multi:  # the earlier job's last reports: its sizes were no objective
            assert all(o.further["val_model_size_at_best"] > 0 for o in observations)
    with caplog.at_level(logging.INFO, logger="tuning.search.warm_start"):
        with pytest.raises(KeyboardInterrupt):
            lifecycle.run_job(spec, progress=False)
        state = JobState.read(find_experiment_dir(spec.name, spec.storage.path))
        assert marker.exists() and state.status == "RUNNING"  # left for `tuning resume`
        if two_stage:  # in stage 1, whose Tune experiment is a folder of its own
            assert state.stage == 1 and state.stage_paths == [state.tune_path]
            assert state.tune_path.endswith("/stage1")
        at_interrupt = _observed(spec, state.tune_path)
        if at_interrupt is not None:
            assert stored + INTERRUPT_AFTER <= at_interrupt < stored + expected
        result = lifecycle.resume_job(spec.name, storage=spec.storage.path)
        if at_interrupt is not None:
            assert _observed(spec, state.tune_path) == stored + expected
        if two_stage:  # stage 2's refiner: stage 1's 2 results replayed, its own 2
            state = JobState.read(Path(result.experiment_dir))
            assert state.stage == 2 and len(state.stage_paths) == 2
            refiner = spec.with_overrides(**{"search.algorithm": spec.search.refine_with})
            assert _observed(refiner, state.stage_paths[1]) == expected
    if earlier is not None:  # every finished earlier trial went into the searcher, once
        fed = [r.getMessage() for r in caplog.records if "warm start: fed" in r.getMessage()]
        assert fed == [f"warm start: fed {stored} earlier results to the searcher"]
    assert len(result.trials) == expected
    # The trial that completed before the Ctrl-C is one of the job's, not run again.
    assert marker.read_text() in {t.trial_id for t in result.trials}
    assert result.count("FAILED") == 0
    assert result.best is not None and 0 <= result.best.best_value <= 1
    configs = set()
    for trial in result.trials:
        for name, param in spec.search_space.items():
            assert contains(param, trial.config[name]), (name, trial.config[name])
        configs.add(tuple(trial.config[name] for name in spec.search_space))
    assert len(configs) == expected  # nothing tried twice
    client = MlflowClient(tracking_uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["tuning.searcher"] == algorithm and parent.info.status == "FINISHED"
    children = client.search_runs(
        [result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    assert sorted(c.data.tags["ray.trial_id"] for c in children) == sorted(
        t.trial_id for t in result.trials)  # one child run per trial
    for child in children:  # each report logged once, whatever the resume replayed
        steps = [m.step for m in client.get_metric_history(child.info.run_id,
                                                           spec.objective.result_key)]
        assert steps and len(steps) == len(set(steps)), (child.info.run_id, steps)
    if two_stage:  # 2 trials per stage, each child run tagged with its stage
        assert sorted(c.data.tags.get("tuning.stage") for c in children) == ["1", "1", "2", "2"]
        assert parent.data.params["stage2.num_samples"] == "2"
        assert "two_stage.json" in {a.path for a in client.list_artifacts(result.parent_run_id)}
    # Every report carries the model's scoring time; its value at the best round is logged.
    assert all(c.data.metrics["val_scoring_ms_at_best"] > 0 for c in children)


def test_points_to_evaluate_are_checked_before_ray_starts():
    numeric = {k: v for k, v in SPACE.items() if k != "grow_policy"}

    def spec(algorithm, point):
        return {"name": "x", "search_space": numeric,
                "search": {"algorithm": algorithm, "points_to_evaluate": [point]}}

    full = {"eta": 0.1, "max_depth": 3, "subsample": 0.8}
    for algorithm in ("tpe", "gp", "optuna_tpe", "cmaes", "random"):
        assert parse_spec(spec(algorithm, full)).search.points_to_evaluate == [full]
    assert parse_spec(spec("random", {"eta": 0.1}))  # random search fills in the rest
    for algorithm in ("tpe", "gp", "optuna_tpe", "cmaes", "nsga2"):
        with pytest.raises(SpecError, match=r"points_to_evaluate\[0\]: no value for max_depth, "
                                            "subsample"):
            parse_spec(spec(algorithm, {"eta": 0.1}))
    with pytest.raises(SpecError, match=r"points_to_evaluate\[0\]: etaa not in search_space"):
        parse_spec(spec("tpe", {**full, "etaa": 0.1}))
    with pytest.raises(SpecError, match=r"points_to_evaluate\[0\]: max_depth=6 outside"):
        parse_spec(spec("tpe", {**full, "max_depth": 6}))
