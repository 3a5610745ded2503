"""Scheduler state saved with the experiment, so that ``tuning resume`` gets it back.

Ray Tune restores trials, their checkpoints and the searcher, but not the
scheduler's state (ray-project/ray#30838): a resumed ASHA would start with empty
rungs. :class:`SchedulerStateCallback` saves the scheduler with the experiment
state that Tune checkpoints, and puts it back on restore.
"""

from __future__ import annotations

import logging
import pickle
from typing import Any

from ray import cloudpickle
from ray.tune import Callback

from trainables import events
from tuning._ray_compat import asha_rungs

logger = logging.getLogger(__name__)


class SchedulerStateCallback(Callback):
    """Checkpoints the trial scheduler's internal state along with the experiment.

    The callback and the scheduler are pickled together with the Tuner, so after
    ``Tuner.restore`` this callback still points at the scheduler Tune uses.
    """

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def get_state(self) -> dict[str, Any] | None:
        # cloudpickle: HyperBandScheduler (and HyperBandForBOHB) keep lambdas in __dict__.
        return {"scheduler": cloudpickle.dumps(self.scheduler.__dict__)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.scheduler.__dict__.update(pickle.loads(state["scheduler"]))
        logger.info("restored %s state (%d recorded results)", type(self.scheduler).__name__,
                    recorded_results(self.scheduler))
        events.emit("scheduler.restored", scheduler=type(self.scheduler).__name__,
                    rungs=rungs(self.scheduler))


def recorded_results(scheduler: Any) -> int:
    """How many trial results a scheduler has recorded (ASHA rungs), for logs and tests."""
    return sum(len(recorded) for bracket in asha_rungs(scheduler) for _milestone, recorded in bracket)


def rungs(scheduler: Any) -> list[list[list[Any]]]:
    """ASHA's rungs as plain lists: per bracket, ``[milestone, {trial_id: value}]`` pairs."""
    return asha_rungs(scheduler)
