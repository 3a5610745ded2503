"""What the Tune callback hands the writer: one record per trial event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Result keys logged as metrics (besides every ``val_*`` key).
EXTRA_METRICS = ("train_time_s",)


@dataclass
class Record:
    """One unit of work for the writer thread."""

    kind: str  # start | metrics | tags | end
    trial_id: str
    step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    status: str = ""
    timestamp: int = 0
    # Written or skipped by this writer: a retry of a half-written batch passes it by.
    done: bool = field(default=False, repr=False, compare=False)


def metrics_of(result: dict[str, Any]) -> dict[str, float]:
    """The loggable metrics of one Tune result: numeric ``val_*`` values and extras."""
    out = {}
    for key, value in result.items():
        if (key.startswith("val_") or key in EXTRA_METRICS) and isinstance(value, (int, float)):
            if not isinstance(value, bool):
                out[key] = float(value)
    return out


class StepLedger:
    """Per trial: the steps written, the gaps (steps skipped as refused), where a replay
    starts (``last_step``: before the first gap, else the highest step written)."""

    def __init__(self) -> None:
        self.last_step: dict[str, int] = {}
        self._max: dict[str, int] = {}
        self._gaps: dict[str, set[int]] = {}

    def load(self, trial_id: str, written: set[int], skipped: set[int]) -> None:
        """What the store holds of a trial, and the steps an errors file lists."""
        self._max[trial_id] = max(written, default=-1)
        self._gaps[trial_id] = skipped - written
        self._update(trial_id)

    def written(self, rec: Record) -> bool:
        """True when ``rec``'s step is in the store already (a duplicate to pass by)."""
        gaps = self._gaps.get(rec.trial_id, ())
        return rec.step <= self._max.get(rec.trial_id, -1) and rec.step not in gaps

    def mark_written(self, trial_id: str, step: int) -> None:
        self._max[trial_id] = max(self._max.get(trial_id, -1), step)
        self._gaps.get(trial_id, set()).discard(step)
        self._update(trial_id)

    def mark_gap(self, trial_id: str, step: int) -> None:
        self._gaps.setdefault(trial_id, set()).add(step)
        self._update(trial_id)

    def _update(self, trial_id: str) -> None:
        gaps = self._gaps.get(trial_id)
        top = self._max.get(trial_id, -1)
        self.last_step[trial_id] = min(min(gaps) - 1, top) if gaps else top
