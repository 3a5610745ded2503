"""Helpers of the fault-injection tests: wait on job events, count points exactly.

Ground truth is Ray Tune's own ``result.json`` per trial; what MLflow holds is
compared with it point by point: every (trial, step, metric) Tune recorded must be
in MLflow once, and nothing else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient
from ray import tune

from trainables.events import read_events
from tuning.tracking.tags import PARENT_TAG, TRIAL_TAG
from tuning.tracking.writer import metrics_of

Point = tuple[str, int, str]  # (trial id, step, metric)


class InterruptAfter(tune.Callback):
    """Sends this process SIGINT (Ctrl-C) when the ``n``-th trial of the job completes
    (a two-stage job's trials counted over both stages), once per marker file."""

    def __init__(self, n: int, marker: Path) -> None:
        self.n, self.marker, self.completed = n, str(marker), 0

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.completed += 1
        if self.completed >= self.n and not os.path.exists(self.marker):
            Path(self.marker).write_text(trial.trial_id)
            os.kill(os.getpid(), signal.SIGINT)  # Tune's handler takes it, in this (main) thread


def wait_for(condition: Callable[[], Any], what: str, proc: subprocess.Popen | None = None,
             hang_limit_s: float = 300) -> Any:
    """Poll ``condition`` until it returns something truthy; return that.

    The limit only bounds a hang: the tests arrange (with event holds) that the
    condition must come true, so reaching it is a failure, never a timing outcome.
    """
    deadline = time.monotonic() + hang_limit_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode()[-3000:] if proc.stderr else ""
            raise AssertionError(f"the job exited ({proc.returncode}) before {what}: {err}")
        time.sleep(0.2)
    raise AssertionError(f"hung: {what} did not happen within {hang_limit_s} s")


def held(events_dir: Path, name: str = "trial.round") -> set[str]:
    """Keys (trial ids) currently held at event ``name``."""
    state: dict[str, bool] = {}
    for event in read_events(events_dir):
        if event["event"] == f"{name}.held":
            state[event["key"]] = True
        elif event["event"] == f"{name}.released":
            state[event["key"]] = False
    return {key for key, on in state.items() if on}


def tune_points(tune_dir: Path, partial_ok: bool = False) -> set[Point]:
    """Every (trial, step, metric) in Tune's result files under ``tune_dir``.

    ``partial_ok``: pass over a line that is not whole JSON (Tune copies its files to
    storage in the background, not atomically: a poll can catch a line half-copied, and
    a driver killed mid-copy leaves one); otherwise such a line is an error.
    """
    points = set()
    for result_file in tune_dir.glob("*/result.json"):
        for line in result_file.read_text().splitlines():
            try:
                result = json.loads(line)
            except ValueError:
                if partial_ok:
                    continue
                raise
            step = int(result.get("rounds", result["training_iteration"]))
            points.update((result["trial_id"], step, key) for key in metrics_of(result))
    return points


def child_runs(client: MlflowClient, experiment_id: str, parent: str,
               deleted: bool = False) -> list[Any]:
    """The parent's child runs as a list (two runs of one trial stay two entries)."""
    return client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{parent}'",
                              run_view_type=3 if deleted else 1, max_results=10_000)


def mlflow_points(client: MlflowClient, runs: list[Any]) -> Counter[Point]:
    """Every (trial, step, metric) logged in ``runs``, with how often it was logged."""
    points: Counter[Point] = Counter()
    for run in runs:
        trial = run.data.tags[TRIAL_TAG]
        for key in run.data.metrics:
            for metric in client.get_metric_history(run.info.run_id, key):
                points[(trial, int(metric.step), key)] += 1
    return points


def compare(expected: set[Point], logged: Counter[Point]) -> dict[str, Any]:
    """Missing, duplicated and unexpected points of MLflow against Tune (counts), and
    a few of each (``examples``, for a failing assertion's message)."""
    odd = {"missing": sorted(expected - set(logged))[:3],
           "duplicated": sorted(p for p, n in logged.items() if n > 1)[:3],
           "unexpected": sorted(set(logged) - expected)[:3]}
    return {"expected": len(expected), "logged": sum(logged.values()),
            "missing": len(expected - set(logged)),
            "duplicated": sum(n - 1 for n in logged.values() if n > 1),
            "unexpected": len(set(logged) - expected),
            "examples": {k: v for k, v in odd.items() if v}}
