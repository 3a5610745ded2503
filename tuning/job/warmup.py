"""Start a local Ray in a background thread while the driver prepares the job.

``ray.init`` takes about 5 s on 2 cores, most of it spent waiting for Ray's own
processes to come up. Meanwhile the driver can import MLflow and XGBoost (~4 s) and
check the tracking store (~4 s for a new SQLite store). Only a fresh local Ray is
started this way; connecting to a cluster (``--address``) is quick and stays in the
caller's thread.

The starting thread lives as long as the process: Ray starts its local processes
with ``PR_SET_PDEATHSIG`` (kernel fate sharing, checked against ray 2.60), and
Linux sends that signal when the *thread* that started a process ends, not the
process. A thread that returned after ``ray.init`` would take GCS and the raylet
with it.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from typing import Any
from urllib.parse import urlsplit

from tuning.job.preflight import connect_ray

__all__ = ["RayStart", "start_ray", "wait_for_ray"]

logger = logging.getLogger(__name__)

_LOCK = threading.Lock()
_PENDING: RayStart | None = None
# Never set: the thread that started Ray parks on it for the life of the process.
_PARK = threading.Event()


class RayStart:
    """A local ``ray.init`` under way in a background thread."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._error: BaseException | None = None
        self.started = False  # True once this start brought Ray up
        self.used = False  # a job waited for it: it is that job's Ray from then on
        self._thread = threading.Thread(target=self._run, name="tuning-ray-start", daemon=True)

    def _run(self) -> None:
        quiet = _DropRecord("SIGTERM handler is not set")
        worker_log = logging.getLogger("ray._private.worker")
        worker_log.addFilter(quiet)  # the handler is set on the main thread instead
        try:
            # Ray's own imports happen here, in one thread, before the driver's thread
            # reaches them: two threads importing one package's cycles can deadlock.
            import ray.tune  # noqa: F401

            self.started = connect_ray(None)
        except BaseException as err:  # noqa: BLE001 - handed to the caller by wait()
            self._error = err
        finally:
            worker_log.removeFilter(quiet)
            self._done.set()
        if self._error is None:
            _PARK.wait()  # see the module docstring: Ray's processes die with this thread

    def wait(self) -> bool:
        """Block until Ray is up; True when this start brought it up.

        Raises:
            JobError: Ray could not start (the error ``connect_ray`` raises).
        """
        self._done.wait()
        self.used = True
        if self._error is not None:
            raise self._error
        return self.started

    def discard(self) -> None:
        """The job failed before it needed Ray: wait for the start and shut Ray down
        again, so a failed call leaves the process as it found it."""
        import ray

        self._done.wait()
        if self._error is None and self.started and ray.is_initialized():
            ray.shutdown()


class _DropRecord(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def start_ray(address: str | None, tracking_uri: str | None = None) -> RayStart | None:
    """Begin starting a local Ray in the background; None when there is nothing to start
    (an ``address`` is given, or Ray is already initialised in this process), or when
    the tracking server at ``tracking_uri`` does not even accept a connection: the job
    is about to stop on it, and a Ray started for nothing would only delay the error.

    Calling it again before a job waited for the start returns that start: the CLI
    begins it before importing the job's modules, and the job it runs takes it over.
    """
    global _PENDING
    if address is not None or (tracking_uri is not None and not _server_answers(tracking_uri)):
        return None
    import ray

    with _LOCK:
        pending = _PENDING
        if pending is not None and not pending.used and (
                not pending._done.is_set() or (pending._error is None and ray.is_initialized())):
            return pending
        if ray.is_initialized():
            return None
        if threading.current_thread() is threading.main_thread():
            # What ray.init does on the main thread: SIGTERM exits through atexit, which
            # shuts the local Ray down (a signal handler can only be set from here).
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
        _PENDING = RayStart()
        _PENDING._thread.start()
        return _PENDING


def wait_for_ray(start: RayStart | None, address: str | None) -> bool:
    """Ray is up when this returns: the background ``start``, or connect now.

    Returns True when this job's call started Ray.
    """
    if start is not None:
        return start.wait()
    return connect_ray(address)


def _server_answers(uri: str) -> bool:
    """False only when ``uri`` is an HTTP server that refuses a TCP connection."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return True
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname, port), timeout=2):
            return True
    except (OSError, ValueError):
        return False


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    sys.exit(signum)
