"""The Tune callback on the driver: trial events become records for the writer."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from ray.tune import Callback

from tuning.search.baseline import is_baseline
from tuning.tracking.tags import (
    BASELINE_TAG,
    ERROR_TAG,
    FAILED,
    FINISHED,
    GPUS_TAG,
    INFEASIBLE_TAG,
    JOB_TAG,
    LAST_ERROR_TAG,
    NODE_TAG,
    RESTORED_FROM_TAG,
    RETRIES_TAG,
    RUN_NAME_TAG,
    infeasible,
    stopped_early_tags,
    trial_status,
)
from tuning.tracking.pareto import PARETO_ARTIFACT, PARETO_TAG, pareto_tags
from tuning.tracking.writer import Record, RunWriter, metrics_of

logger = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


class MlflowTrackingCallback(Callback):
    """Tune callback on the driver: turns trial events into :class:`Record` s.

    It is pickled with the Tuner (for ``tuning resume``); the writer thread is not,
    and is started again in :meth:`setup`. With ``job_dir`` (the job folder), records
    MLflow refuses for good are listed in its ``tracking_errors.jsonl``.
    """

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str,
                 job_name: str, extra_tags: dict[str, str] | None = None,
                 job_dir: str | None = None, flush_timeout_s: float = 120) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.job_name = job_name
        self.extra_tags = extra_tags or {}
        self.job_dir = job_dir
        # tracking.flush_timeout_s: how long the end of the job waits for the store, in all.
        self.flush_timeout_s = flush_timeout_s
        self._flush_deadline: float | None = None
        # The baseline trial's config (set by tuning.job.tuner); its child run is tagged.
        self.baseline: dict[str, Any] | None = None
        # A multi-objective job's result keys -> modes (set by tuning.job.tuner); the
        # Pareto set is tagged and logged at the end.
        self.objectives: dict[str, str] | None = None
        self.writer: RunWriter | None = None
        self.driver_seconds = 0.0
        self.results_seen = 0
        self._seen_nodes: dict[str, str] = {}
        self._restored: dict[str, int] = {}
        self._retries: dict[str, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["writer"] = None
        state["_flush_deadline"] = None  # a monotonic time means nothing in another process
        return state

    def setup(self, **info: Any) -> None:
        if self.writer is None:
            # getattr: a callback pickled before job_dir existed has no such attribute.
            self.writer = RunWriter(self.tracking_uri, self.experiment_id, self.parent_run_id,
                                    job_dir=getattr(self, "job_dir", None))
            self.writer.start()

    def _submit(self, record: Record) -> None:
        if self.writer is None:
            self.setup()
        assert self.writer is not None
        self.writer.submit(record)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        t0 = time.perf_counter()
        tags = {RUN_NAME_TAG: f"{self.job_name}-{trial.trial_id}", JOB_TAG: self.job_name,
                **self.extra_tags}
        # getattr: a callback pickled before baselines existed has no such attribute.
        if is_baseline(dict(trial.config), getattr(self, "baseline", None)):
            tags[BASELINE_TAG] = "true"
        self._submit(Record("start", trial.trial_id, params=dict(trial.config), tags=tags,
                            timestamp=_now_ms()))
        self.driver_seconds += time.perf_counter() - t0

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        t0 = time.perf_counter()
        self.results_seen += 1
        node = result.get("node_id")
        gpus = result.get("cuda_visible_devices") or ""
        placement = f"{node}/{gpus}"
        if node and self._seen_nodes.get(trial.trial_id) != placement:
            self._seen_nodes[trial.trial_id] = placement
            tags = {NODE_TAG: node}
            if gpus:  # the GPU ids Ray gave the trial (its CUDA_VISIBLE_DEVICES)
                tags[GPUS_TAG] = str(gpus)
            self._submit(Record("tags", trial.trial_id, tags=tags))
        restored = result.get("restored_from_round")
        if restored and self._restored.get(trial.trial_id) != restored:
            self._restored[trial.trial_id] = restored
            self._submit(Record("tags", trial.trial_id,
                                tags={RESTORED_FROM_TAG: str(restored)}))
        self._submit(Record("metrics", trial.trial_id, step=int(result.get("rounds", iteration)),
                            metrics=metrics_of(result), timestamp=_now_ms()))
        self.driver_seconds += time.perf_counter() - t0

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        status = trial_status(last)
        tags = stopped_early_tags(last) if status != FINISHED else {}
        if infeasible(last):
            tags[INFEASIBLE_TAG] = "true"
        self._submit(Record("end", trial.trial_id, status=status, tags=tags, timestamp=_now_ms()))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # The same child run continues after the retry; the tag counts the retries.
        self._retries[trial.trial_id] = self._retries.get(trial.trial_id, 0) + 1
        self._submit(Record("tags", trial.trial_id, tags={
            RETRIES_TAG: str(self._retries[trial.trial_id]),
            LAST_ERROR_TAG: error_message(trial)}))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        tags = {ERROR_TAG: error_message(trial)}
        self._submit(Record("end", trial.trial_id, status=FAILED, tags=tags,
                            timestamp=_now_ms()))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        # Written before the Pareto tags; the wait starts the job's end budget
        # (tracking.flush_timeout_s), which close() then finishes: a store that is down
        # costs the end of the job that long once, not twice.
        self._flush_deadline = time.monotonic() + getattr(self, "flush_timeout_s", 120)
        if self.writer is not None:
            self.writer.flush(timeout=self.end_wait_left())
        if getattr(self, "objectives", None):
            self.log_pareto(trials)

    def log_pareto(self, trials: list) -> dict[str, Any]:
        """Tag each child run ``tuning.pareto`` true / false and log ``pareto.json`` on the
        parent: the trials (not failed, not infeasible) that no other beats on every objective
        at its best round.

        Every trial is tagged, so a resumed job that computes the set again leaves no stale tag.
        """
        assert self.objectives is not None
        rows = {t.trial_id: dict(t.last_result or {}) for t in trials if t.status != "ERROR"}
        writer = self.writer
        record, tags = pareto_tags(rows, self.objectives, writer.run_ids if writer else None)
        for trial_id, value in tags.items():
            self._submit(Record("tags", trial_id, tags={PARETO_TAG: value}))
        assert self.writer is not None
        self.writer.flush(timeout=self.end_wait_left())
        try:
            self.writer.client.log_text(self.parent_run_id, json.dumps(record, indent=2),
                                        PARETO_ARTIFACT)
        except Exception as err:  # noqa: BLE001 - the tags are written; the job goes on
            logger.warning("could not log %s on the parent run: %s", PARETO_ARTIFACT, err)
        return record

    def end_wait_left(self) -> float:
        """Seconds left of the job's end budget for the store (all of it before the end)."""
        budget = getattr(self, "flush_timeout_s", 120)
        deadline = getattr(self, "_flush_deadline", None)
        return budget if deadline is None else max(0.0, deadline - time.monotonic())

    def close(self, timeout: float = 60) -> int:
        """Flush and stop the writer; return the number of records left unwritten."""
        if self.writer is None:
            return 0
        return self.writer.close(timeout)


def error_message(trial: Any) -> str:
    """The last line of a failed trial's error (the exception), for a run tag."""
    path = getattr(trial, "error_file", None)
    try:
        with open(path) as handle:  # type: ignore[arg-type]
            lines = [line.strip() for line in handle if line.strip()]
        return lines[-1] if lines else "unknown error"
    except (OSError, TypeError):
        return "unknown error"
