"""The one exception hierarchy of the driver side (as Optuna's ``exceptions.py``).

Every error a user can cause or fix carries a one-line message; the CLI prints it
after ``error:`` and exits 2 (bad input: :class:`SpecError`, :class:`DataError`)
or 1 (the job could not run: :class:`JobError` and its subclasses).

``DataError`` is raised by the worker side (``trainables``), which never imports
``tuning``; it is re-exported here so that callers catch every error from one place.
"""

from __future__ import annotations

from trainables.data import DataError

__all__ = ["DataError", "JobError", "ServerError", "SpecError", "StateError", "TrackingError",
           "TuningError"]


class TuningError(Exception):
    """Base of the errors raised by ``tuning``; the message is one line."""


class SpecError(TuningError, ValueError):
    """A spec that cannot be run; the message names the YAML path, the value and what is allowed."""


class JobError(TuningError, RuntimeError):
    """A job that cannot start or continue (cluster, resources, job folder)."""


class TrackingError(JobError):
    """The MLflow tracking store cannot be reached or lacks what was asked for."""


class StateError(JobError):
    """A job folder whose ``tuning_state.json`` is missing, unreadable or of another version."""


class ServerError(JobError):
    """``tuning server`` cannot start the MLflow server."""
