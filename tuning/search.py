"""The searcher registry: ``search.algorithm`` names -> Ray Tune search algorithms.

Each builder imports its optional library inside, so that listing names stays cheap.
Metric and mode are not given to searchers: ``TuneConfig`` sets them on all alike.
A builder takes the spec and the points to try first (the spec's
``points_to_evaluate``, preceded by warm-start points when there are any).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from tuning.config import Spec
    from tuning.warm_start import Observation

Points = list[dict[str, Any]]


@dataclass(frozen=True)
class SearcherEntry:
    build: Callable[[Spec, Points], Any]
    description: str
    learns: bool = True  # models earlier results, so a warm start can inform it


def _basic(spec: Spec, points: Points) -> Any:
    from ray.tune.search import BasicVariantGenerator

    # Tune's max_concurrent_trials only wraps Searchers; this generator caps itself.
    return BasicVariantGenerator(points_to_evaluate=points or None, random_state=spec.search.seed,
                                 max_concurrent=spec.budget.max_concurrent or 0)


def _tpe(spec: Spec, points: Points) -> Any:
    from ray.tune.search.hyperopt import HyperOptSearch

    return HyperOptSearch(
        points_to_evaluate=points or None,
        n_initial_points=spec.search.n_initial_points,
        random_state_seed=spec.search.seed,
    )


def _gp(spec: Spec, points: Points) -> Any:
    from tuning.gp_search import GPSearch

    return GPSearch(spec.search_space, n_initial_points=spec.search.n_initial_points,
                    seed=spec.search.seed, points_to_evaluate=points)


def _bohb(spec: Spec, points: Points) -> Any:
    from ray.tune.search.bohb import TuneBOHB

    return TuneBOHB(points_to_evaluate=points or None, seed=spec.search.seed)


def _two_stage(spec: Spec, points: Points) -> Any:
    raise TypeError("two_stage is two searches in a row; tuning.two_stage runs it")


SEARCHERS: dict[str, SearcherEntry] = {
    "tpe": SearcherEntry(_tpe, "HyperOpt Tree-structured Parzen Estimator (default)"),
    "random": SearcherEntry(_basic, "random sampling of the space", learns=False),
    "grid": SearcherEntry(_basic, "every combination; numeric ranges take search.grid_points "
                          "values", learns=False),
    "gp": SearcherEntry(_gp, "Gaussian-process Bayesian optimisation (expected improvement; "
                        "ints and choices mapped to cells of [0, 1])"),
    "bohb": SearcherEntry(_bohb, "BOHB: TPE-like model over Hyperband budgets; pairs with "
                          "scheduler 'bohb'"),
    "two_stage": SearcherEntry(_two_stage, "random over the full space, then search.refine_with "
                               "(tpe|gp) on ranges narrowed to the top trials", learns=False),
}


def check_search(spec: Spec) -> str | None:
    """Why the ``search`` section cannot run with the rest of the spec, or None."""
    search = spec.search
    entry = SEARCHERS[search.algorithm]
    if search.warm_start is not None and not entry.learns:
        learners = ", ".join(n for n, e in SEARCHERS.items() if e.learns)
        return (f"search.warm_start needs a searcher that learns from results ({learners}), "
                f"got {search.algorithm!r}")
    if search.algorithm == "two_stage":
        first = stage1_samples(spec)
        if first >= spec.budget.num_samples:
            return (f"search.stage1_samples ({first}) must be < budget.num_samples "
                    f"({spec.budget.num_samples}) to leave trials for stage 2")
    return None


def stage1_samples(spec: Spec) -> int:
    """Trials in stage 1 of a two-stage job (default: half the budget, at least 2)."""
    return spec.search.stage1_samples or max(2, spec.budget.num_samples // 2)


def build_searcher(spec: Spec, observations: list[Observation] | None = None) -> Any:
    """Build the search algorithm named by ``spec.search.algorithm``.

    Args:
        spec: the job.
        observations: earlier results to replay into the searcher first; when None
            and ``search.warm_start`` is set, they are read from MLflow.

    Concurrency is capped by ``TuneConfig(max_concurrent_trials=...)``, which wraps
    the searcher for us.
    """
    from tuning.warm_start import Prefilled, load_observations

    if observations is None and spec.search.warm_start is not None:
        observations = load_observations(spec)
    observations = observations or []
    points = [o.config for o in observations] + [dict(p) for p in spec.search.points_to_evaluate]
    searcher = SEARCHERS[spec.search.algorithm].build(spec, points)
    if observations:
        return Prefilled(searcher, observations, spec.max_t)
    return searcher
