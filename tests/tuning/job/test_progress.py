"""The live progress line: counts by outcome, best so far, time left."""

from __future__ import annotations

import io
from types import SimpleNamespace

from tuning.job.progress import ProgressCallback


def _trial(trial_id: str, done: bool | None = None) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id,
                           last_result=None if done is None else {"training_done": done})


def test_counts_best_and_eta():
    out = io.StringIO()
    progress = ProgressCallback(num_samples=4, metric="val_aucpr", mode="max", interval=0,
                                stream=out)
    a, b, c = _trial("a", True), _trial("b", False), _trial("c")
    for trial in (a, b, c):
        progress.on_trial_start(0, [], trial)
    progress.on_trial_result(0, [], a, {"val_aucpr": 0.7})
    progress.on_trial_result(0, [], b, {"val_aucpr": 0.8})
    progress.on_trial_result(0, [], c, {"val_aucpr": float("nan")})
    progress.on_trial_complete(0, [], a)
    progress.on_trial_complete(0, [], b)
    progress.on_trial_error(0, [], c)
    line = progress.line()
    assert "3/4 trials done (1 finished, 1 stopped early, 1 failed), 0 running" in line
    assert "best val_aucpr 0.8000 (b)" in line
    assert "s left" in line
    assert "[###############-----]" in line
    assert out.getvalue().count("\n") >= 3  # printed at each trial end


def test_min_mode_keeps_the_lowest():
    progress = ProgressCallback(num_samples=2, metric="val_cost", mode="min", interval=0,
                                stream=io.StringIO())
    for trial_id, value in (("a", 3.0), ("b", 1.0), ("c", 2.0)):
        progress.on_trial_result(0, [], _trial(trial_id), {"val_cost": value})
    assert progress.best == (1.0, "b")
