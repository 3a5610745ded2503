"""What a job keeps on disk so that ``tuning resume`` can finish it.

Ray Tune restores trials, their checkpoints and the searcher, but not the
scheduler's state (ray-project/ray#30838): a resumed ASHA would start with empty
rungs. :class:`SchedulerStateCallback` saves the scheduler with the experiment
state that Tune checkpoints, and puts it back on restore.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any

from ray.tune import Callback

from trainables import events

STATE_FILE = "tuning_state.json"
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
        from ray import cloudpickle

        return {"scheduler": cloudpickle.dumps(self.scheduler.__dict__)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.scheduler.__dict__.update(pickle.loads(state["scheduler"]))
        logger.info("restored %s state (%d recorded results)", type(self.scheduler).__name__,
                    recorded_results(self.scheduler))
        events.emit("scheduler.restored", scheduler=type(self.scheduler).__name__,
                    rungs=rungs(self.scheduler))


def recorded_results(scheduler: Any) -> int:
    """How many trial results a scheduler has recorded (ASHA rungs), for logs and tests."""
    brackets = getattr(scheduler, "_brackets", None) or []
    return sum(len(recorded) for bracket in brackets
               for _milestone, recorded in getattr(bracket, "_rungs", []))


def rungs(scheduler: Any) -> list[list[list[Any]]]:
    """ASHA's rungs as plain lists: per bracket, ``[milestone, {trial_id: value}]`` pairs."""
    brackets = getattr(scheduler, "_brackets", None) or []
    return [[[milestone, dict(recorded)] for milestone, recorded in getattr(bracket, "_rungs", [])]
            for bracket in brackets]


def write_job_state(experiment_dir: Path, **state: Any) -> None:
    """Write (atomically) the job's resume information next to Ray's experiment state."""
    experiment_dir.mkdir(parents=True, exist_ok=True)
    tmp = experiment_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2, default=str))
    tmp.replace(experiment_dir / STATE_FILE)


def read_job_state(experiment_dir: Path) -> dict[str, Any]:
    return json.loads((experiment_dir / STATE_FILE).read_text())


def find_experiment_dir(name_or_path: str, storage: str) -> Path:
    """A job folder given by path, or the newest job of that name under ``storage``."""
    path = Path(name_or_path)
    if (path / STATE_FILE).is_file():
        return path.resolve()
    root = Path(storage)
    candidates = sorted(
        (d for d in root.glob(f"{name_or_path}-*") if (d / STATE_FILE).is_file()),
        key=lambda d: d.stat().st_mtime,
    )
    if not candidates:
        raise FileNotFoundError(
            f"{name_or_path}: no tuning job of that name under {root.resolve()} "
            f"(and not a job folder holding {STATE_FILE})"
        )
    return candidates[-1].resolve()
