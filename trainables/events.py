"""Named points of a job that tests can wait on or act at; off unless switched on.

Fault-injection tests must act when something has happened (a trial reached round
R, N results were logged), never after a guessed wall-clock delay. With
``TUNING_EVENTS_DIR`` set, the job appends one JSON line per event to
``events.jsonl`` in that folder, and a test can make processes wait at a point:

* ``emit(name, **fields)`` records that ``name`` happened (any process, any node
  that sees the folder: the tests run on one machine).
* ``hold(name, key, **fields)`` blocks the caller while ``hold-<name>.json``
  exists in the folder and its ``when`` fields equal the call's, except for the
  first ``pass`` distinct keys to arrive (the file holds ``{"pass": N, "when":
  {"round": 25}}``). A held caller emits ``<name>.held``; deleting the file
  releases every held caller. A hold never outlasts ``TUNING_EVENTS_HOLD_S``
  (default 600 s), so a test that dies cannot hang a job forever.

Without the variable every call returns at once; nothing is written. Only the
standard library is used: workers and the driver both import this module.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

EVENTS_ENV = "TUNING_EVENTS_DIR"
HOLD_LIMIT_ENV = "TUNING_EVENTS_HOLD_S"
EVENTS_FILE = "events.jsonl"
_POLL_S = 0.05

logger = logging.getLogger(__name__)


def events_dir() -> Path | None:
    """The events folder, or None when events are off (the normal case)."""
    folder = os.environ.get(EVENTS_ENV)
    return Path(folder) if folder else None


def enabled() -> bool:
    return events_dir() is not None


def emit(name: str, **fields: Any) -> None:
    """Record that ``name`` happened, with JSON-serialisable ``fields``."""
    folder = events_dir()
    if folder is None:
        return
    line = json.dumps({"event": name, "pid": os.getpid(), "time": time.time(), **fields},
                      default=str) + "\n"
    # One O_APPEND write per line: lines from concurrent processes never interleave.
    fd = os.open(folder / EVENTS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def hold(name: str, key: str, **fields: Any) -> None:
    """Wait here while the test holds ``name`` (see the module docstring)."""
    folder = events_dir()
    if folder is None:
        return
    gate = folder / f"hold-{name}.json"
    if not gate.exists() or not _must_wait(folder, name, key, gate, fields):
        return
    emit(f"{name}.held", key=key, **fields)
    limit = time.monotonic() + float(os.environ.get(HOLD_LIMIT_ENV, "600"))
    while gate.exists():
        if time.monotonic() > limit:
            logger.warning("event hold %s for %s outlasted %s; going on", name, key, HOLD_LIMIT_ENV)
            break
        time.sleep(_POLL_S)
    emit(f"{name}.released", key=key, **fields)


def _must_wait(folder: Path, name: str, key: str, gate: Path, fields: dict[str, Any]) -> bool:
    """Count ``key`` as an arrival at ``name``; True once ``pass`` other keys went first."""
    try:
        rule = json.loads(gate.read_text() or "{}")
    except (OSError, ValueError):  # released (deleted) or being written: do not hold
        return False
    if any(fields.get(k) != v for k, v in rule.get("when", {}).items()):
        return False
    allowed = int(rule.get("pass", 0))
    arrivals = folder / f"arrivals-{name}.json"
    with open(folder / f"arrivals-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two trials arriving at once get distinct places
        seen: list[str] = json.loads(arrivals.read_text()) if arrivals.exists() else []
        if key not in seen:
            seen.append(key)
            arrivals.write_text(json.dumps(seen))
    return seen.index(key) >= allowed


def read_events(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every event recorded so far in ``folder`` (for tests)."""
    path = Path(folder, EVENTS_FILE)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
