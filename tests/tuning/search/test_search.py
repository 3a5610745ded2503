"""Searchers: the registry contract (every entry runs a tiny job), the GP's encoding."""

from __future__ import annotations

import math

import pytest
from mlflow.tracking import MlflowClient

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
        "search_space": SPACE,
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
    with pytest.raises(SpecError, match="valid: tpe, random, grid, gp, bohb, two_stage"):
        parse_spec({"name": "x", "search_space": SPACE, "search": {"algorithm": "cmaes"}})


# ---------------------------------------------------------------- contract
@pytest.mark.slow
@pytest.mark.parametrize("algorithm", list(SEARCHERS))
def test_contract_every_searcher_runs_a_tiny_job(algorithm, ray_session, tracking_uri, tmp_path):
    from tuning.job.lifecycle import run_job

    spec = parse_spec(tiny(tracking_uri, tmp_path, algorithm))
    result = run_job(spec, progress=False)
    expected = 2 if algorithm == "grid" else spec.budget.num_samples
    assert len(result.trials) == expected
    assert result.count("FAILED") == 0
    assert result.best is not None and 0 <= result.best.best_value <= 1
    for trial in result.trials:
        for name, param in spec.search_space.items():
            assert contains(param, trial.config[name]), (name, trial.config[name])
    client = MlflowClient(tracking_uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["tuning.searcher"] == algorithm
    children = client.search_runs(
        [result.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    assert len(children) == expected
