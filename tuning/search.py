"""The searcher registry: ``search.algorithm`` names -> Ray Tune search algorithms.

Each builder imports its optional library inside, so that listing names stays cheap.
Metric and mode are not given to searchers: ``TuneConfig`` sets them on all alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from tuning.config import Spec


@dataclass(frozen=True)
class SearcherEntry:
    build: Callable[[Spec], Any]
    description: str


def _points(spec: Spec) -> list[dict[str, Any]] | None:
    return [dict(p) for p in spec.search.points_to_evaluate] or None


def _basic(spec: Spec) -> Any:
    from ray.tune.search import BasicVariantGenerator

    return BasicVariantGenerator(points_to_evaluate=_points(spec), random_state=spec.search.seed)


def _tpe(spec: Spec) -> Any:
    from ray.tune.search.hyperopt import HyperOptSearch

    return HyperOptSearch(
        points_to_evaluate=_points(spec),
        n_initial_points=spec.search.n_initial_points,
        random_state_seed=spec.search.seed,
    )


SEARCHERS: dict[str, SearcherEntry] = {
    "tpe": SearcherEntry(_tpe, "HyperOpt Tree-structured Parzen Estimator (default)"),
    "random": SearcherEntry(_basic, "random sampling of the space"),
    "grid": SearcherEntry(_basic, "every combination; numeric ranges take search.grid_points values"),
}


def build_searcher(spec: Spec) -> Any:
    """Build the search algorithm named by ``spec.search.algorithm``.

    Concurrency is capped by ``TuneConfig(max_concurrent_trials=...)``, which wraps
    the searcher for us.
    """
    return SEARCHERS[spec.search.algorithm].build(spec)
