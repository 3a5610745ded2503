"""Multi-objective search: the spec's objective.metrics and the Optuna searcher it builds."""

from __future__ import annotations

import pickle

import pytest

from tuning.errors import SpecError
from tuning.search.build import build_searcher
from tuning.search.registry import SEARCHERS
from tuning.spec import parse_spec

BASE = {"name": "mo", "data": {"rows": 3000},
        "search_space": {"eta": {"type": "loguniform", "low": 0.05, "high": 0.5},
                         "max_depth": {"type": "randint", "low": 2, "high": 6}},
        "search": {"algorithm": "nsga2", "seed": 0},
        "objective": {"metrics": ["recall_at_fpr", "model_size"]}}


def _spec(objective=None, algorithm="nsga2", **extra):
    return parse_spec({**BASE, "objective": objective or BASE["objective"],
                       "search": {"algorithm": algorithm, "seed": 0}, **extra})


def test_first_metric_is_the_tune_metric_and_modes_come_from_the_registry():
    obj = _spec().objective
    assert obj.metric == "recall_at_fpr" and obj.tune_key == "val_recall_at_fpr_best"
    assert obj.objective_keys == ["val_recall_at_fpr_best", "val_model_size_at_best"]
    assert obj.objective_modes == ["max", "min"]
    assert _spec({"metrics": ["val_logloss", "model_size", "aucpr"]}).objective.objective_modes == [
        "min", "min", "max"]
    assert not _spec({"metric": "aucpr"}).objective.multi  # one objective: as before


def test_scoring_time_is_a_further_objective_and_a_constrained_metric():
    obj = _spec({"metrics": ["recall_at_fpr", "scoring_ms", "model_size"],
                 "constraints": [{"metric": "val_scoring_ms", "max": 5}]}).objective
    assert obj.objective_keys == ["val_recall_at_fpr_best", "val_scoring_ms_at_best",
                                  "val_model_size_at_best"]
    assert obj.objective_modes == ["max", "min", "min"]
    assert obj.at_best == ["scoring_ms", "model_size"]
    with pytest.raises(SpecError, match="the first metric drives early stopping"):
        _spec({"metrics": ["scoring_ms", "aucpr"]})


@pytest.mark.parametrize(("objective", "algorithm", "needle"), [
    ({"metrics": ["recall_at_fpr", "size"]}, "nsga2", "unknown metric 'size'; valid: aucpr"),
    ({"metrics": ["recall_at_fpr"]}, "nsga2", "two or more metrics"),
    ({"metrics": ["aucpr", "aucpr"]}, "nsga2", "names a metric twice"),
    ({"metrics": ["model_size", "aucpr"]}, "nsga2", "the first metric drives early stopping"),
    ({"metrics": ["aucpr", "model_size"], "mode": "min"}, "nsga2", "mode cannot be combined"),
    ({"metrics": ["aucpr", "model_size"], "metric": "f1"}, "nsga2", "disagree"),
    ({"metrics": ["aucpr", "model_size"]}, "tpe", "needs a multi-objective searcher "
     "(optuna_tpe, nsga2); search.algorithm is 'tpe'"),
    ({"metrics": ["aucpr", "model_size"]}, "cmaes", "needs a multi-objective searcher"),
])
def test_bad_multi_objective_specs_fail_with_one_line(objective, algorithm, needle):
    with pytest.raises(SpecError) as err:
        _spec(objective, algorithm)
    assert needle in str(err.value)
    assert "\n" not in str(err.value).strip()


def test_only_nsga2_and_optuna_tpe_are_multi_objective():
    assert {n for n, e in SEARCHERS.items() if e.multi_objective} == {"nsga2", "optuna_tpe"}


def _started(searcher, n):
    """Tune's setup of the searcher, then ``n`` suggestions."""
    from tuning.search.space import param_space

    spec = _spec()
    assert searcher.set_search_properties("val_recall_at_fpr_best", "max", param_space(spec))
    return [searcher.suggest(f"t{i}") for i in range(n)]


@pytest.mark.parametrize("algorithm", ["nsga2", "optuna_tpe"])
def test_searcher_keeps_its_objectives_and_tells_early_stopped_trials_as_pruned(algorithm):
    from optuna.trial import TrialState

    searcher = build_searcher(_spec(algorithm=algorithm))
    _started(searcher, 3)
    # Tune handed it TuneConfig's one metric; it keeps both objectives.
    assert searcher.metric == ["val_recall_at_fpr_best", "val_model_size_at_best"]
    assert searcher.mode == ["max", "min"]
    done = {"val_recall_at_fpr_best": 0.5, "val_model_size_at_best": 300.0, "training_done": True}
    searcher.on_trial_complete("t0", {**done})
    searcher.on_trial_complete("t1", {**done, "val_model_size_at_best": 20.0,
                                      "training_done": False})  # the scheduler stopped it
    searcher.on_trial_complete("t2", None, error=True)
    states = [t.state for t in searcher._ot_study.trials]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
    assert searcher._ot_study.trials[0].values == [0.5, 300.0]


def test_multi_objective_searcher_survives_tunes_save_and_restore(tmp_path):
    searcher = build_searcher(_spec())
    _started(searcher, 2)
    searcher.on_trial_complete("t0", {"val_recall_at_fpr_best": 0.4, "val_model_size_at_best": 90.0,
                                      "training_done": True})
    searcher.save(str(tmp_path / "searcher.pkl"))
    restored = build_searcher(_spec())
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored.metric == searcher.metric
    assert len(restored._ot_study.trials) == 2
    pickle.loads(pickle.dumps(restored))  # Tune pickles the searcher with the experiment


@pytest.mark.parametrize(("constraint", "algorithm", "needle"), [
    ({"metric": "size", "max": 1}, "nsga2", "unknown metric 'size'"),
    ({"metric": "val_model_size"}, "nsga2", "needs max or min"),
    ({"metric": "model_size", "min": 5, "max": 1}, "nsga2", "min (5.0) > max (1.0)"),
    ({"metric": "model_size", "max": 100}, "tpe", "objective.constraints needs a searcher that "
     "takes Optuna constraints (optuna_tpe, nsga2)"),
])
def test_bad_constraints_fail_with_one_line(constraint, algorithm, needle):
    with pytest.raises(SpecError) as err:
        _spec({"metric": "aucpr", "constraints": [constraint]}, algorithm)
    assert needle in str(err.value) and "\n" not in str(err.value).strip()


@pytest.mark.parametrize("objective", [
    {"metric": "aucpr", "constraints": [{"metric": "val_model_size", "max": 100}]},
    {"metrics": ["aucpr", "model_size"], "constraints": [{"metric": "logloss", "max": 0.2}]},
])
def test_constraints_reach_optuna_as_the_violation_at_the_best_round(objective):
    spec = _spec(objective, "optuna_tpe")
    assert spec.objective.at_best == [*(spec.objective.metrics or [])[1:],
                                      objective["constraints"][0]["metric"].removeprefix("val_")]
    searcher = build_searcher(spec)
    _started(searcher, 3)
    values = dict(zip(spec.objective.objective_keys, [0.5, 120.0]))
    searcher.on_trial_complete("t0", {**values, "val_constraint_violation": 20.0, "training_done": True})
    searcher.on_trial_complete("t1", {**values, "val_constraint_violation": 0.0, "training_done": False})
    searcher.on_trial_complete("t2", {**values, "val_constraint_violation": float("nan"),
                                      "training_done": True})
    constraints = [t.constraints for t in searcher._ot_study.trials]
    assert constraints == [{"violation": 20.0}, {"violation": 0.0}, {"violation": float("inf")}]
    searcher.suggest("t3")  # the sampler reads them (constrained TPE) without complaint
