"""Build the search algorithm of a spec, with earlier results replayed into it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuning.search.registry import SEARCHERS
from tuning.search.warm_start import Observation, Prefilled

if TYPE_CHECKING:
    from tuning.spec import Spec


def build_searcher(spec: Spec, observations: list[Observation] | None = None,
                   baseline: dict[str, Any] | None = None) -> Any:
    """Build the search algorithm named by ``spec.search.algorithm``.

    Args:
        spec: the job.
        observations: earlier results to replay into the searcher first (a warm
            start read by :func:`tuning.tracking.store.load_observations`, or stage 1
            of a two-stage job).
        baseline: the baseline trial's config (:mod:`tuning.search.baseline`), suggested
            first after the replayed observations.

    Concurrency is capped by ``TuneConfig(max_concurrent_trials=...)``, which wraps
    the searcher for us.
    """
    observations = observations or []
    points = ([o.config for o in observations] + ([dict(baseline)] if baseline else [])
              + [dict(p) for p in spec.search.points_to_evaluate])
    searcher = SEARCHERS[spec.search.algorithm].build(spec, points)
    if observations:
        return Prefilled(searcher, observations, spec.max_t)
    return searcher
