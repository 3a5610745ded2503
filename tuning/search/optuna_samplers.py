"""Optuna's samplers as Ray Tune searchers, through Ray's ``OptunaSearch``.

One small builder per ``search.algorithm`` name (``optuna_tpe``, ``cmaes``, ``qmc``,
``nsga2``); :mod:`tuning.search.registry` lists them. ``OptunaSearch`` is built
without a space: Tune hands it the job's ``param_space`` (from
:mod:`tuning.search.space`) and converts it to Optuna distributions itself
(``randint``'s exclusive upper bound, log scales and ``quniform`` steps included).
Metric and mode come from ``TuneConfig`` like every other searcher's, except in a
multi-objective job (``objective.metrics``): there :class:`MultiObjectiveSearch` holds its
lists of keys and modes itself, and ``TuneConfig`` keeps the first metric for the scheduler.

Optuna's seeds live in the samplers (``OptunaSearch`` ignores its own ``seed`` when
given a sampler). Checked against Ray 2.60 and Optuna 5.0.

Warm start and resume need nothing of their own: :class:`~tuning.search.warm_start.Prefilled`
replays earlier results through ``suggest`` / ``on_trial_complete`` (Optuna's
ask / tell), and ``OptunaSearch.save`` pickles the study with its in-memory storage
and the sampler, which Tune restores on ``tuning resume``.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import TYPE_CHECKING, Any

from tuning.search.params import is_tuned

if TYPE_CHECKING:
    from tuning.spec import Spec

logger = logging.getLogger(__name__)

Points = list[dict[str, Any]]

# NSGA-II's first generation is random: a population of 50 (Optuna's default) would
# make a 40-trial job random search. A fifth of the budget leaves five generations.
NSGA2_MIN_POPULATION = 4
NSGA2_MAX_POPULATION = 50


#: The result key of a constrained job's trials: their violation at the best round.
VIOLATION_KEY = "val_constraint_violation"


def constraint_value(result: dict[str, Any]) -> float:
    """The Optuna constraint of a trial (<= 0 feasible); one that never scored is infeasible."""
    value = result.get(VIOLATION_KEY)
    if not isinstance(value, (int, float)) or math.isnan(value):
        return math.inf
    return float(value)


def nsga2_population(num_samples: int) -> int:
    """NSGA-II's population for a budget of ``num_samples`` trials (a fifth, in [4, 50])."""
    return max(NSGA2_MIN_POPULATION, min(NSGA2_MAX_POPULATION, num_samples // 5))


def tpe_sampler(spec: Spec) -> Any:
    """Multivariate TPE over groups of parameters that appear together (Optuna's ``group``)."""
    import optuna

    with warnings.catch_warnings():
        # ``group`` is marked experimental since Optuna 2.8; the warning says only that.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            multivariate=True, group=True, n_startup_trials=spec.search.n_initial_points,
            seed=spec.search.seed)


def cmaes_sampler(spec: Spec) -> Any:
    """CMA-ES. It starts at the centre of the space and learns nothing from random
    trials, so it runs ``search.n_initial_points`` random trials only when the spec
    names that setting (default: one)."""
    import optuna

    startup = (spec.search.n_initial_points
               if "n_initial_points" in spec.search.model_fields_set else 1)
    return optuna.samplers.CmaEsSampler(n_startup_trials=startup, seed=spec.search.seed)


def qmc_sampler(spec: Spec) -> Any:
    """A scrambled Sobol sequence: space-filling, seeded, learns nothing from results."""
    import optuna

    with warnings.catch_warnings():  # experimental since Optuna 3.0; says only that
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True,
                                          seed=spec.search.seed)


def nsga2_sampler(spec: Spec) -> Any:
    """NSGA-II with a population sized from the budget (:func:`nsga2_population`)."""
    import optuna

    return optuna.samplers.NSGAIISampler(
        population_size=nsga2_population(spec.budget.num_samples), seed=spec.search.seed)


SAMPLERS = {"optuna_tpe": tpe_sampler, "cmaes": cmaes_sampler, "qmc": qmc_sampler,
            "nsga2": nsga2_sampler}


def multi_objective_search() -> type:
    """``OptunaSearch`` for several objectives or constraints (built on first use: it imports Ray).

    Two changes, checked against Ray 2.60: Tune hands every searcher ``TuneConfig``'s one
    metric and mode in ``set_search_properties``, which would replace the lists; and
    ``OptunaSearch`` tells Optuna a trial the scheduler stopped as complete with its last
    values. Here a trial whose last report does not say ``training_done`` enters the study
    as pruned, so half-trained small models do not crowd the sampler's Pareto front. A
    constrained job's violation at the best round becomes the Optuna trial's constraint.
    """
    global _MULTI
    if _MULTI is None:
        from ray.tune.search.optuna import OptunaSearch

        class MultiObjectiveSearch(OptunaSearch):
            def __init__(self, *args: Any, constrained: bool = False, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self._constrained = constrained

            def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
                return super().set_search_properties(None, None, config, **spec)

            def on_trial_complete(self, trial_id: str, result: dict | None = None,
                                  error: bool = False) -> None:
                if self._constrained and trial_id in self._ot_trials:
                    # Optuna 5's way (its samplers' constraints_func is deprecated): TPE and
                    # NSGA-II prefer feasible trials once any trial carries a constraint.
                    self._ot_trials[trial_id].set_constraint(
                        "violation", constraint_value(result or {}))
                if result is not None and not error and not result.get("training_done", False):
                    result = None  # OptunaSearch tells a result-less, error-less trial as pruned
                super().on_trial_complete(trial_id, result, error)

        MultiObjectiveSearch.__module__ = __name__
        MultiObjectiveSearch.__qualname__ = "MultiObjectiveSearch"
        _MULTI = MultiObjectiveSearch
    return _MULTI


_MULTI: type | None = None


def build_optuna(spec: Spec, points: Points) -> Any:
    """``OptunaSearch`` with the sampler ``spec.search.algorithm`` names."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch  # heavy: ray

    # Optuna logs every finished trial at INFO on its own handler; the job's progress
    # output already says it.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tuned = [n for n, p in spec.search_space.items() if is_tuned(p)]
    # OptunaSearch wants each point over exactly its space: constants (the baseline
    # point carries them) are Tune's business, not the sampler's.
    points = [{n: p[n] for n in tuned if n in p} for p in points]
    sampler = SAMPLERS[spec.search.algorithm](spec)
    if spec.objective.multi or spec.objective.constraints:
        return multi_objective_search()(metric=spec.objective.objective_keys,
                                        mode=spec.objective.objective_modes,
                                        points_to_evaluate=points or None, sampler=sampler,
                                        constrained=bool(spec.objective.constraints))
    return OptunaSearch(points_to_evaluate=points or None, sampler=sampler)



def __getattr__(name: str) -> Any:
    # Pickle (Tune's searcher checkpoint) finds the class by module and name.
    if name == "MultiObjectiveSearch":
        return multi_objective_search()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
