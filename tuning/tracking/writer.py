"""The background writer: trial records to MLflow, off the trials' path.

Ray's ``MLflowLoggerCallback`` writes every metric of every result synchronously
(~70-200 ms of driver time per result, during which the trial waits in
``tune.report``), makes no parent run and duplicates runs on restore. Here the Tune
callback only queues records (microseconds); a background thread writes them with
``log_batch``, retries with backoff while the store is unreachable, and never logs
a (run, step) twice, so a resumed job continues the same child runs.

A record refused for good (:mod:`tuning.tracking.errors`) does not block the queue:
it is skipped and reported, and its neighbours in a batch are written one by one.
Its step stays a gap that a later replay (``tuning sync``) fills.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from trainables import events
from tuning.tracking.errors import ERRORS_FILE, TRANSIENT, ErrorLog, classify, describe, \
    http_status, skipped_steps
# Record and metrics_of are imported from here by the callback and `tuning sync`.
from tuning.tracking.records import EXTRA_METRICS, Record, StepLedger, metrics_of  # noqa: F401
from tuning.tracking.tags import PARENT_TAG, RUN_NAME_TAG, TRIAL_TAG

logger = logging.getLogger(__name__)
_BATCH = 1000  # MLflow's limit of metrics per log_batch call
_NO_RUN = "no child run: the trial's start record was not written"


class RunWriter:
    """Writes trial records to MLflow from a background thread, in order, in batches.

    Records that cannot be written for a while (store unreachable, HTTP 5xx / 429)
    stay in a backlog, retried with backoff; a record refused for good is skipped
    and listed in ``<job_dir>/tracking_errors.jsonl`` (when ``job_dir`` is given).
    """

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str,
                 max_backoff_s: float = 10.0, job_dir: str | Path | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.max_backoff_s = max_backoff_s
        self.client = MlflowClient(tracking_uri)
        self.errors = ErrorLog(Path(job_dir) / ERRORS_FILE if job_dir is not None else None,
                               self.client, parent_run_id)
        self.run_ids: dict[str, str] = {}
        self.run_status: dict[str, str] = {}
        self.steps = StepLedger()
        self.last_step = self.steps.last_step  # per trial: where a replay starts
        self.stats = {"records": 0, "metric_points": 0, "batches": 0, "retries": 0,
                      "skipped_duplicates": 0, "skipped_errors": 0}
        self.last_error: str | None = None
        self._params_due: set[str] = set()  # runs created here whose params are not logged
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
        """Learn the child runs (and their written steps) a previous driver made.

        A step the errors file lists and MLflow still lacks is a gap: ``last_step``
        stops before it, so a replay fills it (later written steps are passed by).
        """
        errors = self.errors.load()
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
            self.steps.load(trial_id, {m.step for m in history}, skipped_steps(errors, trial_id))

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
                except Exception as err:  # noqa: BLE001 - write() raises transient errors only
                    self.stats["retries"] += 1
                    self.last_error = describe(err)
                    events.emit("tracking.write_failed", buffered=len(self._backlog),
                                error=self.last_error[:200])
                    # One warning per outage; the retries themselves are debug noise.
                    log = logger.warning if backoff == 0.5 else logger.debug
                    log("MLflow write failed (%s); buffering and retrying with backoff "
                        "(%d records buffered)", self.last_error, len(self._backlog))
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

        Done groups leave ``records``; a transient error propagates and leaves the
        unwritten tail for the retry; a permanent one skips only its record.
        """
        while records:
            n = 1
            while records[0].kind == "metrics" and n < len(records) \
                    and records[n].kind == "metrics":
                n += 1
            group = records[:n]
            if group[0].kind == "metrics":
                for run_id, batch in self._metric_batches(group):
                    self._attempt(batch, lambda recs, run_id=run_id: self._log_metrics(run_id, recs))
            elif group[0].done:
                pass
            elif group[0].kind != "start" and group[0].trial_id not in self.run_ids:
                self._skip(group[0], _NO_RUN)
            else:
                self._attempt(group, lambda recs: self._write_lifecycle(recs[0]))
            del records[:n]
            self.stats["records"] += n

    def _attempt(self, batch: list[Record], write: Callable[[list[Record]], None]) -> None:
        """Write ``batch``; on a permanent error, record by record, skipping what fails."""
        try:
            write(batch)
        except Exception as err:  # noqa: BLE001 - sorted into transient and permanent
            if classify(err) == TRANSIENT:
                raise
            if len(batch) == 1:
                self._skip(batch[0], err)
                return
            logger.warning("MLflow refused a batch of %d records (%s); writing them one by one",
                           len(batch), describe(err))
            for rec in batch:
                self._attempt([rec], write)

    def _metric_batches(self, records: list[Record]) -> list[tuple[str, list[Record]]]:
        """The records still to write, per run, in batches of whole records."""
        by_run: dict[str, list[list[Record]]] = {}
        for rec in records:
            if rec.done:
                continue
            if self.steps.written(rec):
                rec.done = True
                self.stats["skipped_duplicates"] += 1
                continue
            run_id = self.run_ids.get(rec.trial_id)
            if run_id is None:
                self._skip(rec, _NO_RUN)
                continue
            chunks = by_run.setdefault(run_id, [[]])
            if chunks[-1] and sum(map(len, (r.metrics for r in chunks[-1]))) \
                    + len(rec.metrics) > _BATCH:
                chunks.append([])
            chunks[-1].append(rec)
        return [(run_id, chunk) for run_id, chunks in by_run.items() for chunk in chunks]

    def _log_metrics(self, run_id: str, records: list[Record]) -> None:
        metrics = [Metric(k, v, rec.timestamp, rec.step)
                   for rec in records for k, v in rec.metrics.items()]
        for i in range(0, len(metrics), _BATCH):
            self.client.log_batch(run_id, metrics=metrics[i:i + _BATCH], synchronous=True)
            self.stats["batches"] += 1
        self.stats["metric_points"] += len(metrics)
        for rec in records:
            rec.done = True
            self.steps.mark_written(rec.trial_id, rec.step)

    def _skip(self, rec: Record, err: BaseException | str) -> None:
        """Record a record MLflow will not take; its step stays a gap, never written."""
        rec.done = True
        self._params_due.discard(rec.trial_id)
        if rec.kind == "metrics" and not self.steps.written(rec):
            self.steps.mark_gap(rec.trial_id, rec.step)
        self.stats["skipped_errors"] += 1
        keys = {"metrics": rec.metrics, "start": rec.params}.get(rec.kind, rec.tags)
        self.errors.report({
            "trial_id": rec.trial_id, "run_id": self.run_ids.get(rec.trial_id),
            "kind": rec.kind, "step": rec.step, "keys": sorted(map(str, keys)),
            "points": len(rec.metrics),
            "error": describe(err) if isinstance(err, BaseException) else err,
            "http_status": http_status(err) if isinstance(err, BaseException) else None})

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
                self._params_due.add(rec.trial_id)
            elif rec.trial_id not in self._params_due:  # a resumed or retried trial
                self.client.update_run(run_id, status="RUNNING")
            if rec.trial_id in self._params_due:  # also after a failure past create_run
                params = [Param(k, _param_value(v)) for k, v in rec.params.items()]
                for i in range(0, len(params), 100):
                    self.client.log_batch(run_id, params=params[i:i + 100], synchronous=True)
                self._params_due.discard(rec.trial_id)
        elif rec.kind == "tags" or (rec.kind == "end" and rec.tags):
            self.client.log_batch(
                run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in rec.tags.items()],
                synchronous=True,
            )
        if rec.kind == "end":
            self.client.set_terminated(run_id, rec.status, end_time=rec.timestamp)
            self.run_status[rec.trial_id] = rec.status
        rec.done = True


def _param_value(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)
