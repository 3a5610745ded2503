"""The value types a job hands over: one trial's summary and the job's result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tuning.tracking.tags import FINISHED


@dataclass
class TrialSummary:
    """One trial as the job saw it: its config and its best report.

    The same shape is written into ``tuning_state.json`` (the job's best trial) and
    read back by ``tuning sync``.
    """

    trial_id: str
    status: str  # FINISHED | KILLED (stopped early) | FAILED
    config: dict[str, Any]
    best_value: float | None
    best_round: int | None
    rounds: int
    threshold: float | None
    metrics: dict[str, float] = field(default_factory=dict)  # val_* at the best round

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrialSummary:
        """Read one back; state files before format 2 kept only the best trial's
        id, config, metrics, best round and threshold."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        values.setdefault("status", FINISHED)
        values.setdefault("best_value", None)
        values.setdefault("rounds", values.get("best_round") or 0)
        values.setdefault("threshold", None)
        values.setdefault("metrics", {})
        return cls(**values)


@dataclass
class JobResult:
    """What ``run_job`` / ``resume_job`` return (and ``tuning run --json`` prints)."""

    name: str
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    experiment_dir: str
    metric: str
    mode: str
    wall_s: float
    trials: list[TrialSummary]
    best: TrialSummary | None
    test_metrics: dict[str, float]
    verdict: dict[str, Any] | None
    unlogged_records: int  # -1: an offline job (nothing logged yet)
    mlflow_ms_per_result: float

    def count(self, status: str) -> int:
        return sum(t.status == status for t in self.trials)
