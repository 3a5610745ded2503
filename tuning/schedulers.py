"""The scheduler registry: ``scheduler.type`` names -> Ray Tune trial schedulers.

Time is counted in reports (``training_iteration``); one report is
``training.report_every`` boosting rounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from tuning.config import Spec

TIME_ATTR = "training_iteration"


@dataclass(frozen=True)
class SchedulerEntry:
    build: Callable[[Spec], Any]
    description: str


def _asha(spec: Spec) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr=TIME_ATTR,
        max_t=spec.max_t,
        grace_period=spec.scheduler.grace_period,
        reduction_factor=spec.scheduler.reduction_factor,
        brackets=spec.scheduler.brackets,
    )


def _hyperband(spec: Spec) -> Any:
    from ray.tune.schedulers import HyperBandScheduler

    return HyperBandScheduler(
        time_attr=TIME_ATTR, max_t=spec.max_t, reduction_factor=spec.scheduler.reduction_factor
    )


def _fifo(spec: Spec) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def _median(spec: Spec) -> Any:
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(
        time_attr=TIME_ATTR, grace_period=spec.scheduler.grace_period,
        min_samples_required=spec.scheduler.min_samples_required,
    )


def _bohb(spec: Spec) -> Any:
    from ray.tune.schedulers import HyperBandForBOHB

    return HyperBandForBOHB(
        time_attr=TIME_ATTR, max_t=spec.max_t, reduction_factor=spec.scheduler.reduction_factor
    )


SCHEDULERS: dict[str, SchedulerEntry] = {
    "asha": SchedulerEntry(_asha, "asynchronous successive halving (default)"),
    "hyperband": SchedulerEntry(_hyperband, "synchronous Hyperband"),
    "fifo": SchedulerEntry(_fifo, "no early stopping: every trial runs all rounds"),
    "median": SchedulerEntry(_median, "stop a trial below the median of the others at the "
                             "same report (after grace_period, min_samples_required)"),
    "bohb": SchedulerEntry(_bohb, "Hyperband for BOHB; only with search.algorithm 'bohb' "
                           "(chosen automatically for it)"),
}

# Searchers that need one scheduler, and schedulers that need one searcher. BOHB's
# scheduler calls searcher.on_pause/on_unpause, which only TuneBOHB has, and TuneBOHB
# learns only from the Hyperband budgets that scheduler puts in each result.
PAIRED = {"bohb": "bohb"}


def default_scheduler_for(algorithm: str | None) -> str | None:
    """The scheduler a searcher gets when the spec names none."""
    return PAIRED.get(algorithm or "")


def check_pairing(algorithm: str, scheduler: str) -> str | None:
    """Why this searcher cannot run with this scheduler, or None when it can."""
    needed = PAIRED.get(algorithm)
    if needed and scheduler != needed:
        return (f"search.algorithm {algorithm!r} needs scheduler.type {needed!r}, got "
                f"{scheduler!r} (leave scheduler.type out to pair them automatically)")
    for searcher, sched in PAIRED.items():
        if scheduler == sched and algorithm != searcher:
            return (f"scheduler.type {scheduler!r} only works with search.algorithm "
                    f"{searcher!r}, got {algorithm!r}")
    return None


def build_scheduler(spec: Spec) -> Any:
    """Build the trial scheduler named by ``spec.scheduler.type``."""
    return SCHEDULERS[spec.scheduler.type].build(spec)
