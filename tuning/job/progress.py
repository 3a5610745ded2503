"""Live progress of a tuning job on the terminal (a Tune callback on the driver)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ray.tune import Callback

from tuning.tracking.tags import FINISHED, trial_status


class ProgressCallback(Callback):
    """Prints one status line at most every ``interval`` seconds and at each trial end.

    The line shows trials done / running / stopped early / failed, the best objective
    so far with its trial, elapsed time and an estimate of the time left.
    """

    def __init__(self, num_samples: int, metric: str, mode: str, interval: float = 5.0,
                 stream: TextIO | None = None) -> None:
        self.num_samples = num_samples
        self.metric, self.mode = metric, mode
        self.interval = interval
        self.stream = stream
        self.started = time.monotonic()
        self.last_print = 0.0
        self.best: tuple[float, str] | None = None
        self.finished = self.stopped = self.failed = 0
        self.running: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["stream"] = None
        return state

    def setup(self, **info: Any) -> None:
        self.started = time.monotonic()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.add(trial.trial_id)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        value = result.get(self.metric)
        if isinstance(value, (int, float)) and value == value:
            if self.best is None or (value > self.best[0] if self.mode == "max"
                                     else value < self.best[0]):
                self.best = (float(value), trial.trial_id)
        self._maybe_print()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.discard(trial.trial_id)
        if trial_status(trial.last_result) == FINISHED:
            self.finished += 1
        else:
            self.stopped += 1
        self._maybe_print(force=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.discard(trial.trial_id)
        self.failed += 1
        self._maybe_print(force=True)

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        done = self.finished + self.stopped + self.failed
        eta = ""
        if 0 < done < self.num_samples:
            eta = f", ~{elapsed / done * (self.num_samples - done):.0f}s left"
        best = (f"best {self.metric} {self.best[0]:.4f} ({self.best[1]})"
                if self.best else "no result yet")
        filled = int(20 * done / max(self.num_samples, 1))
        bar = "#" * min(filled, 20) + "-" * max(20 - filled, 0)
        return (f"[{elapsed:6.1f}s] [{bar}] {done}/{self.num_samples} trials done "
                f"({self.finished} finished, {self.stopped} stopped early, {self.failed} failed), "
                f"{len(self.running)} running | {best}{eta}")

    def _maybe_print(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_print < self.interval:
            return
        self.last_print = now
        stream = self.stream or sys.stderr
        print(self.line(), file=stream, flush=True)
