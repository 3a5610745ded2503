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


SCHEDULERS: dict[str, SchedulerEntry] = {
    "asha": SchedulerEntry(_asha, "asynchronous successive halving (default)"),
    "hyperband": SchedulerEntry(_hyperband, "synchronous Hyperband"),
    "fifo": SchedulerEntry(_fifo, "no early stopping: every trial runs all rounds"),
}


def build_scheduler(spec: Spec) -> Any:
    """Build the trial scheduler named by ``spec.scheduler.type``."""
    return SCHEDULERS[spec.scheduler.type].build(spec)
