"""The background writer: trial records to MLflow, off the trials' path.

Ray's ``MLflowLoggerCallback`` writes every metric of every result synchronously
(~70-200 ms of driver time per result, during which the trial waits in
``tune.report``), makes no parent run and duplicates runs on restore. Here the Tune
callback only queues records (microseconds); a background thread writes them with
``log_batch``, retries with backoff while the store is unreachable, and never logs
a (run, step) twice, so a resumed job continues the same child runs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from trainables import events
from tuning.tracking.tags import PARENT_TAG, RUN_NAME_TAG, TRIAL_TAG

logger = logging.getLogger(__name__)
# Result keys logged as metrics (besides every ``val_*`` key).
EXTRA_METRICS = ("train_time_s",)
_BATCH = 1000  # MLflow's limit of metrics per log_batch call


@dataclass
class Record:
    """One unit of work for the writer thread."""

    kind: str  # start | metrics | end
    trial_id: str
    step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    status: str = ""
    timestamp: int = 0


def metrics_of(result: dict[str, Any]) -> dict[str, float]:
    """The loggable metrics of one Tune result: numeric ``val_*`` values and extras."""
    out = {}
    for key, value in result.items():
        if (key.startswith("val_") or key in EXTRA_METRICS) and isinstance(value, (int, float)):
            if not isinstance(value, bool):
                out[key] = float(value)
    return out


class RunWriter:
    """Writes trial records to MLflow from a background thread, in order, in batches.

    Records that cannot be written (store unreachable) stay in a backlog and are
    retried with exponential backoff; nothing is dropped while the writer lives.
    """

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str,
                 max_backoff_s: float = 10.0) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.max_backoff_s = max_backoff_s
        self.client = MlflowClient(tracking_uri)
        self.run_ids: dict[str, str] = {}
        self.run_status: dict[str, str] = {}
        self.last_step: dict[str, int] = {}
        self.stats = {"records": 0, "metric_points": 0, "batches": 0, "retries": 0,
                      "skipped_duplicates": 0}
        self.last_error: str | None = None
        self._queue: queue.Queue[Record | None] = queue.Queue()
        self._backlog: list[Record] = []
        self._idle = threading.Event()
        self._idle.set()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Load the child runs that already exist (resume) and start the thread."""
        self.load_existing()
        self._thread = threading.Thread(target=self._loop, name="mlflow-writer", daemon=True)
        self._thread.start()

    def submit(self, record: Record) -> None:
        self._idle.clear()
        self._queue.put(record)

    def flush(self, timeout: float | None = None) -> int:
        """Wait until everything queued is written; return the records still unwritten."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (self._queue.empty() and not self._backlog and self._idle.is_set()):
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            self._idle.wait(0.05 if remaining is None else min(0.05, remaining))
        return self.pending()

    def pending(self) -> int:
        return self._queue.qsize() + len(self._backlog)

    def close(self, timeout: float | None = None) -> int:
        """Flush, then stop the thread; records still unwritten are abandoned and counted.

        Abandoned records are not lost: Tune's own result files hold them, and
        ``tuning sync`` replays them later.
        """
        unwritten = self.flush(timeout)
        self._closing.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)
        return unwritten

    # ----------------------------------------------------------- internals
    def load_existing(self) -> None:
        """Learn the child runs (and their last logged step) a previous driver made."""
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{self.parent_run_id}'",
            max_results=50_000,
        )
        for run in runs:
            trial_id = run.data.tags.get(TRIAL_TAG)
            if not trial_id:
                continue
            self.run_ids[trial_id] = run.info.run_id
            self.run_status[trial_id] = run.info.status
            # All metrics of a result are logged together: one key gives the steps.
            key = next(iter(run.data.metrics), None)
            history = self.client.get_metric_history(run.info.run_id, key) if key else []
            self.last_step[trial_id] = max((m.step for m in history), default=-1)

    def _loop(self) -> None:
        backoff = 0.5
        while True:
            stop = self._drain()
            if self._backlog:
                try:
                    self.write(self._backlog)
                    self._backlog = []
                    events.emit("tracking.written", metric_points=self.stats["metric_points"],
                                records=self.stats["records"])
                    if backoff > 0.5:
                        logger.warning("MLflow store reachable again; buffered records written")
                    backoff = 0.5
                except Exception as err:  # noqa: BLE001 - any store failure is retried
                    self.stats["retries"] += 1
                    self.last_error = f"{type(err).__name__}: {err}"
                    events.emit("tracking.write_failed", buffered=len(self._backlog),
                                error=self.last_error.splitlines()[0][:200])
                    # One warning per outage; the retries themselves are debug noise.
                    log = logger.warning if backoff == 0.5 else logger.debug
                    log("MLflow write failed (%s); buffering and retrying with backoff "
                        "(%d records buffered)", self.last_error.splitlines()[0][:300],
                        len(self._backlog))
                    if self._closing.wait(backoff):
                        return
                    backoff = min(backoff * 2, self.max_backoff_s)
                    continue
            if stop:
                return
            if self._queue.empty():
                self._idle.set()

    def _drain(self) -> bool:
        """Move queued records to the backlog; True when asked to stop."""
        try:
            item = self._queue.get(timeout=0.2) if not self._backlog else self._queue.get_nowait()
        except queue.Empty:
            return False
        while True:
            if item is None:
                return True
            self._backlog.append(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False

    def write(self, records: list[Record]) -> None:
        """Write records in order; metrics are grouped per run between lifecycle events.

        Written records are removed from ``records`` as they succeed, so a failure
        part-way leaves exactly the unwritten tail for the retry.
        """
        while records:
            head = records[0]
            if head.kind == "metrics":
                n = 1
                while n < len(records) and records[n].kind == "metrics":
                    n += 1
                self._write_metrics(records[:n])
                del records[:n]
            else:
                self._write_lifecycle(head)
                del records[0]
            self.stats["records"] += 1

    def _write_metrics(self, records: list[Record]) -> None:
        by_run: dict[str, list[Metric]] = defaultdict(list)
        newest: dict[str, int] = {}
        for rec in records:
            if rec.step <= self.last_step.get(rec.trial_id, -1):
                self.stats["skipped_duplicates"] += 1
                continue
            run_id = self.run_ids.get(rec.trial_id)
            if run_id is None:  # a result before its start record cannot happen; be safe
                continue
            by_run[run_id].extend(
                Metric(k, v, rec.timestamp, rec.step) for k, v in rec.metrics.items()
            )
            newest[rec.trial_id] = max(newest.get(rec.trial_id, -1), rec.step)
        for run_id, metrics in by_run.items():
            for i in range(0, len(metrics), _BATCH):
                self.client.log_batch(run_id, metrics=metrics[i:i + _BATCH], synchronous=True)
                self.stats["batches"] += 1
            self.stats["metric_points"] += len(metrics)
        self.last_step.update(newest)

    def _write_lifecycle(self, rec: Record) -> None:
        run_id = self.run_ids.get(rec.trial_id)
        if rec.kind == "start":
            if run_id is None:
                tags = {PARENT_TAG: self.parent_run_id, TRIAL_TAG: rec.trial_id, **rec.tags}
                run = self.client.create_run(
                    self.experiment_id, start_time=rec.timestamp, tags=tags,
                    run_name=rec.tags.get(RUN_NAME_TAG),
                )
                run_id = self.run_ids[rec.trial_id] = run.info.run_id
                self.last_step.setdefault(rec.trial_id, -1)
                params = [Param(k, _param_value(v)) for k, v in rec.params.items()]
                for i in range(0, len(params), 100):
                    self.client.log_batch(run_id, params=params[i:i + 100], synchronous=True)
            else:  # a resumed or retried trial continues its run
                self.client.update_run(run_id, status="RUNNING")
        elif rec.kind == "tags" and run_id is not None:
            self.client.log_batch(
                run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in rec.tags.items()],
                synchronous=True,
            )
        elif rec.kind == "end" and run_id is not None:
            if rec.tags:
                self.client.log_batch(
                    run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in rec.tags.items()],
                    synchronous=True,
                )
            self.client.set_terminated(run_id, rec.status, end_time=rec.timestamp)
            self.run_status[rec.trial_id] = rec.status


def _param_value(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)
