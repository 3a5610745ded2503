"""The searcher registry: ``search.algorithm`` names -> Ray Tune search algorithms.

:data:`SEARCHERS` is the single list of searcher names: the spec, ``tuning list``,
the SageMaker translation, the docs and the contract tests read it. Each builder
imports its library inside, so that listing names stays cheap. Metric and mode
are not given to searchers: ``TuneConfig`` sets them on all alike. A builder takes
the spec and the points to try first (the spec's ``points_to_evaluate``, preceded
by warm-start points when there are any).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from tuning.spec import Spec

Points = list[dict[str, Any]]


@dataclass(frozen=True)
class SearcherEntry:
    build: Callable[[Spec, Points], Any]
    description: str
    learns: bool = True  # models earlier results, so a warm start can inform it
    refines: bool = False  # may run stage 2 of a two-stage job (search.refine_with)
    first_stage: bool = False  # may run stage 1 of a two-stage job (search.stage1_with)
    # The scheduler this searcher needs (and that needs it); none does since bohb went.
    scheduler: str | None = None
    # Searches several objectives at once (objective.metrics) and takes constraints.
    multi_objective: bool = False
    # Why this searcher cannot search this spec (its space, its budget), or None.
    check: Callable[[Spec], str | None] | None = None


def _basic(spec: Spec, points: Points) -> Any:
    from ray.tune.search import BasicVariantGenerator  # heavy: ray

    # Tune's max_concurrent_trials only wraps Searchers; this generator caps itself.
    return BasicVariantGenerator(points_to_evaluate=points or None, random_state=spec.search.seed,
                                 max_concurrent=spec.budget.max_concurrent or 0)


def _tpe(spec: Spec, points: Points) -> Any:
    from ray.tune.search.hyperopt import HyperOptSearch  # heavy: ray, hyperopt

    return HyperOptSearch(
        points_to_evaluate=points or None,
        n_initial_points=spec.search.n_initial_points,
        random_state_seed=spec.search.seed,
    )


def _gp(spec: Spec, points: Points) -> Any:
    # Our GP searcher subclasses Ray's Searcher and drives bayesian-optimization:
    # imported here so that reading this registry does not import Ray.
    from tuning.search.gp import GPSearch

    return GPSearch(spec.search_space, n_initial_points=spec.search.n_initial_points,
                    seed=spec.search.seed, points_to_evaluate=points)


def _optuna(spec: Spec, points: Points) -> Any:
    # Ray's OptunaSearch with the sampler the spec names; imported here (Ray, Optuna).
    from tuning.search.optuna_samplers import build_optuna

    return build_optuna(spec, points)


def _numeric_only(spec: Spec) -> str | None:
    # CMA-ES models a continuous space; Optuna would sample choices at random behind
    # its back. Said before Ray starts.
    choices = [n for n, p in spec.search_space.items()
               if getattr(p, "type", None) in ("choice", "grid")]
    if choices:
        return (f"search.algorithm 'cmaes' searches numeric ranges only; search_space has "
                f"choices: {', '.join(choices)} (make them constants, or use optuna_tpe)")
    return None


def _two_stage(spec: Spec, points: Points) -> Any:
    raise TypeError("two_stage is two searches in a row; tuning.job.two_stage runs it")


SEARCHERS: dict[str, SearcherEntry] = {
    "tpe": SearcherEntry(_tpe, "HyperOpt Tree-structured Parzen Estimator (default)",
                         refines=True),
    "random": SearcherEntry(_basic, "random sampling of the space", learns=False,
                            first_stage=True),
    "grid": SearcherEntry(_basic, "every combination; numeric ranges take search.grid_points "
                          "values", learns=False),
    "gp": SearcherEntry(_gp, "Gaussian-process Bayesian optimisation (expected improvement; "
                        "ints and choices mapped to cells of [0, 1])", refines=True),
    "optuna_tpe": SearcherEntry(_optuna, "Optuna's multivariate TPE over parameter groups "
                                "(search.n_initial_points random first)", refines=True,
                                multi_objective=True),
    "cmaes": SearcherEntry(_optuna, "Optuna's CMA-ES; numeric ranges only (no choices)",
                           refines=True, check=_numeric_only),
    "qmc": SearcherEntry(_optuna, "scrambled Sobol sequence (quasi-random, space-filling); "
                         "also a first stage of two_stage", learns=False, first_stage=True),
    "nsga2": SearcherEntry(_optuna, "Optuna's NSGA-II genetic search; population a fifth of "
                           "budget.num_samples (4 to 50)", multi_objective=True),
    "two_stage": SearcherEntry(_two_stage, "search.stage1_with (random) over the full space, then "
                               "search.refine_with on ranges narrowed to the top trials",
                               learns=False),
}
REFINERS: tuple[str, ...] = tuple(n for n, e in SEARCHERS.items() if e.refines)
FIRST_STAGES: tuple[str, ...] = tuple(n for n, e in SEARCHERS.items() if e.first_stage)

# Names that were searchers once: a spec naming one gets this line instead of "unknown".
REMOVED: dict[str, str] = {
    "bohb": ("'bohb' was removed (hpbandster is unmaintained and its netifaces dependency "
             "needs a C compiler to install); use optuna_tpe or tpe with scheduler.type asha "
             "for model-based search with early stopping"),
}


def scheduler_for(algorithm: str | None) -> str | None:
    """The scheduler a searcher needs (given when the spec names none), or None."""
    entry = SEARCHERS.get(algorithm or "")
    return entry.scheduler if entry else None


def searcher_for(scheduler: str) -> str | None:
    """The searcher a scheduler only works with, or None when any will do."""
    return next((n for n, e in SEARCHERS.items() if e.scheduler == scheduler), None)


def check_pairing(algorithm: str, scheduler: str) -> str | None:
    """Why this searcher cannot run with this scheduler, or None when it can."""
    needed = scheduler_for(algorithm)
    if needed and scheduler != needed:
        return (f"search.algorithm {algorithm!r} needs scheduler.type {needed!r}, got "
                f"{scheduler!r} (leave scheduler.type out to pair them automatically)")
    only = searcher_for(scheduler)
    if only and algorithm != only:
        return (f"scheduler.type {scheduler!r} only works with search.algorithm "
                f"{only!r}, got {algorithm!r}")
    return None


def check_search(spec: Spec) -> str | None:
    """Why the ``search`` section cannot run with the rest of the spec, or None."""
    search = spec.search
    entry = SEARCHERS[search.algorithm]
    if search.warm_start is not None and not entry.learns:
        learners = ", ".join(n for n, e in SEARCHERS.items() if e.learns)
        return (f"search.warm_start needs a searcher that learns from results ({learners}), "
                f"got {search.algorithm!r}")
    if spec.objective.constraints and not entry.multi_objective:
        capable = ", ".join(n for n, e in SEARCHERS.items() if e.multi_objective)
        return (f"objective.constraints needs a searcher that takes Optuna constraints "
                f"({capable}); search.algorithm is {search.algorithm!r}")
    if spec.objective.multi:
        problem = _multi_objective_problem(spec)
        if problem:
            return problem
    if entry.check is not None:
        problem = entry.check(spec)
        if problem:
            return problem
    if search.algorithm == "two_stage":
        first = stage1_samples(spec)
        if first >= spec.budget.num_samples:
            return (f"search.stage1_samples ({first}) must be < budget.num_samples "
                    f"({spec.budget.num_samples}) to leave trials for stage 2")
    return None


def stage1_samples(spec: Spec) -> int:
    """Trials in stage 1 of a two-stage job (default: half the budget, at least 2)."""
    return spec.search.stage1_samples or max(2, spec.budget.num_samples // 2)


def _multi_objective_problem(spec: Spec) -> str | None:
    """Why ``objective.metrics`` cannot run with this ``search`` section, or None."""
    capable = [n for n, e in SEARCHERS.items() if e.multi_objective]
    if not SEARCHERS[spec.search.algorithm].multi_objective:
        return (f"objective.metrics needs a multi-objective searcher ({', '.join(capable)}); "
                f"search.algorithm is {spec.search.algorithm!r}")
    return None
