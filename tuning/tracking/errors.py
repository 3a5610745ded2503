"""Which tracking-store errors are worth retrying, and how a skipped record is recorded.

The writer keeps one ordered queue, so an error retried forever blocks every record
behind it. Only errors that go away by themselves are retried: the store or the
network down (connection refused, a timeout), the server overloaded or failing
(HTTP 5xx, 408, 429). Everything else is permanent for the record that met it: a
4xx answer (``INVALID_PARAMETER_VALUE``, ``RESOURCE_DOES_NOT_EXIST`` ...), a record
MLflow's client refuses before sending it, a value that cannot be serialised, a bug.

MLflow's HTTP client wraps what it meets in an ``MlflowException``: a JSON error
body becomes a ``RestException`` with the server's error code; a status without a
JSON body gets the code of that status; a ``requests`` timeout is the ``__cause__``
and any other ``requests`` failure (connection refused, retries of a 5xx/429
exhausted) the ``__context__`` of a generic ``INTERNAL_ERROR`` (checked with mlflow
3.17, ``mlflow.utils.rest_utils.http_request`` / ``verify_rest_response``). Only
public names are read: ``MlflowException.get_http_status_code()`` and the chain.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from mlflow.exceptions import MlflowException

from trainables import events

logger = logging.getLogger(__name__)

TRANSIENT = "transient"
PERMANENT = "permanent"
# The JSON-lines file of skipped records in the job folder (one line per record).
ERRORS_FILE = "tracking_errors.jsonl"
# Parent-run tag: how many records the job's writers have skipped as permanent.
TRACKING_ERRORS_TAG = "tuning.tracking_errors"
# HTTP statuses that mean "try again later" (MLflow's client retries the same set).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,  # refused, reset, DNS; also ConnectTimeout
    requests.exceptions.Timeout,
    requests.exceptions.RetryError,  # MLflow's own retries of a 5xx / 429 ran out
    ConnectionError,  # the builtin one: refused, reset, broken pipe
    TimeoutError,
)


def _chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and the exceptions it was raised from or during (cycles cut)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def http_status(err: BaseException) -> int | None:
    """The HTTP status an MLflow error stands for (None when it is not one)."""
    return err.get_http_status_code() if isinstance(err, MlflowException) else None


def classify(err: BaseException) -> str:
    """:data:`TRANSIENT` (retry with backoff) or :data:`PERMANENT` (record and move on)."""
    if any(isinstance(e, _NETWORK_ERRORS) for e in _chain(err)):
        return TRANSIENT
    if isinstance(err, MlflowException):
        status = err.get_http_status_code()
        return TRANSIENT if status in RETRY_STATUSES or status >= 500 else PERMANENT
    if isinstance(err, OSError):  # the local side: too many open files, a full disk
        return TRANSIENT
    return PERMANENT  # TypeError, ValueError ...: a record that cannot be written


def describe(err: BaseException) -> str:
    """One line: the exception type, the HTTP status when there is one, the message."""
    status = http_status(err)
    text = (str(err).strip().splitlines() or [""])[0][:300]
    return f"{type(err).__name__}" + (f" (HTTP {status})" if status else "") + f": {text}"


def append_error(path: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line to ``path``; one O_APPEND write, so lines never interleave."""
    line = json.dumps({"time": round(time.time(), 3), **entry}, default=str) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_errors(path: Path) -> list[dict[str, Any]]:
    """The entries of an errors file (none when it does not exist; bad lines skipped)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a killed driver
            continue
    return entries


def skipped_steps(entries: list[dict[str, Any]], trial_id: str) -> set[int]:
    """The steps of ``trial_id`` whose metrics record the errors file lists as skipped."""
    return {e["step"] for e in entries if e.get("kind") == "metrics"
            and e.get("trial_id") == trial_id and isinstance(e.get("step"), int)}


class ErrorLog:
    """Where a skipped record is reported: an error line, the file, the parent's count.

    Args:
        path: the job folder's errors file (None: no file, e.g. a writer in a test).
        client: an ``MlflowClient`` of the store, for the parent-run tag.
        parent_run_id: the job's parent run.
    """

    def __init__(self, path: Path | None, client: Any, parent_run_id: str) -> None:
        self.path = path
        self.client = client
        self.parent_run_id = parent_run_id
        self.count = 0

    def load(self) -> list[dict[str, Any]]:
        """The entries written so far (by this job's earlier drivers too); sets the count."""
        entries = read_errors(self.path) if self.path is not None else []
        self.count = len(entries)
        return entries

    def report(self, entry: dict[str, Any]) -> None:
        """Report one skipped record (``entry``: trial_id, run_id, kind, step, error ...)."""
        self.count += 1
        logger.error("MLflow refused the %s record of trial %s (run %s, step %s): %s; skipped%s",
                     entry["kind"], entry["trial_id"], entry["run_id"], entry["step"],
                     entry["error"], f", listed in {self.path}" if self.path else "")
        events.emit("tracking.skipped", **entry)
        if self.path is not None:
            try:
                append_error(self.path, entry)
            except OSError as err:
                logger.warning("could not append to %s: %s", self.path, err)
        try:  # best effort: the store that refused the record may refuse this too
            self.client.set_tag(self.parent_run_id, TRACKING_ERRORS_TAG, str(self.count),
                                synchronous=True)
        except Exception as err:  # noqa: BLE001 - never block the queue on the count
            logger.debug("could not tag the parent run with the error count: %s", err)
