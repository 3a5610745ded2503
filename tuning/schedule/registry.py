"""The scheduler registry: ``scheduler.type`` names -> Ray Tune trial schedulers.

:data:`SCHEDULERS` is the single list of scheduler names (the spec, ``tuning list``,
the SageMaker translation and the contract tests read it); each builder imports
Ray inside. A scheduler that only works with one searcher would be paired in the
searcher registry (:func:`tuning.search.registry.searcher_for`); none does since
``bohb`` went (issue #15).

Time is counted in reports (``training_iteration``); one report is
``training.report_every`` boosting rounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from tuning.spec import Spec

TIME_ATTR = "training_iteration"


@dataclass(frozen=True)
class SchedulerEntry:
    build: Callable[[Spec], Any]
    description: str


def _asha(spec: Spec) -> Any:
    from ray.tune.schedulers import ASHAScheduler  # heavy: ray

    return ASHAScheduler(
        time_attr=TIME_ATTR,
        max_t=spec.max_t,
        grace_period=spec.grace_period,
        reduction_factor=spec.scheduler.reduction_factor,
        brackets=spec.scheduler.brackets,
    )


def _hyperband(spec: Spec) -> Any:
    from ray.tune.schedulers import HyperBandScheduler  # heavy: ray

    return HyperBandScheduler(
        time_attr=TIME_ATTR, max_t=spec.max_t, reduction_factor=spec.scheduler.reduction_factor
    )


def _fifo(spec: Spec) -> Any:
    from ray.tune.schedulers import FIFOScheduler  # heavy: ray

    return FIFOScheduler()


def _median(spec: Spec) -> Any:
    from ray.tune.schedulers import MedianStoppingRule  # heavy: ray

    return MedianStoppingRule(
        time_attr=TIME_ATTR, grace_period=spec.grace_period,
        min_samples_required=spec.scheduler.min_samples_required,
    )


SCHEDULERS: dict[str, SchedulerEntry] = {
    "asha": SchedulerEntry(_asha, "asynchronous successive halving (default)"),
    "hyperband": SchedulerEntry(_hyperband, "synchronous Hyperband"),
    "fifo": SchedulerEntry(_fifo, "no early stopping: every trial runs all rounds"),
    "median": SchedulerEntry(_median, "stop a trial below the median of the others at the "
                             "same report (after grace_period, min_samples_required)"),
}
# Names that were schedulers once: a spec naming one gets this line instead of "unknown".
REMOVED: dict[str, str] = {
    "bohb": "'bohb' was removed with search.algorithm 'bohb' (issue #15); use asha or hyperband",
}


def build_scheduler(spec: Spec) -> Any:
    """Build the trial scheduler named by ``spec.scheduler.type``."""
    return SCHEDULERS[spec.scheduler.type].build(spec)


def concurrency_warning(spec: Spec, at_once: int) -> str | None:
    """A warning when the scheduler cannot stop anything with ``at_once`` trials side by side.

    Ray's synchronous Hyperband halves a bracket among the trials live in it when the
    bracket's milestone is reached; with one trial at a time that is the one trial, and
    none is ever stopped (seen with ray 2.60: 6 trials one at a time, single-worker or
    data-parallel, all ran every round; two at a time stopped one). ASHA and the median
    rule compare a trial with every earlier trial's report at the same point instead.
    """
    if spec.scheduler.type == "hyperband" and at_once <= 1:
        return ("scheduler.type hyperband with one trial at a time (resources or "
                "budget.max_concurrent) stops no trial: synchronous Hyperband compares only trials "
                "that run together; use asha, which compares each trial with all earlier ones")
    return None
