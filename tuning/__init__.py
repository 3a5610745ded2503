"""Driver side of the fraud tuning runner: spec, search, scheduling, tracking, CLI.

The public Python API (stable; what ``tuning validate | run | resume | best`` do)::

    from tuning import load_spec, run_job, resume_job, read_result

    spec = load_spec("examples/quick.yaml").with_overrides(**{"budget.num_samples": 6})
    result = run_job(spec, progress=False)         # a JobResult
    job = read_result(result.parent_run_id, result.tracking_uri)   # a finished job, from MLflow

``import tuning`` imports nothing heavy: each name is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["DataError", "Job", "JobError", "JobResult", "Spec", "SpecError", "TrackingError",
           "load_spec", "parse_spec", "read_result", "resume_job", "run_job"]

if TYPE_CHECKING:
    from tuning.errors import DataError, JobError, SpecError, TrackingError
    from tuning.job.lifecycle import resume_job, run_job
    from tuning.job.results import JobResult
    from tuning.spec import Spec, load_spec, parse_spec
    from tuning.tracking.store import Job


def read_result(name_or_run_id: str, tracking_uri: str | None = None) -> Job:
    """A job as the tracking store has it: parent run, trials, best trial, test metrics.

    Args:
        name_or_run_id: the parent run id (``JobResult.parent_run_id``), a job name or
            an experiment name (the newest job).
        tracking_uri: the store (default: ``$MLFLOW_TRACKING_URI``, then ``sqlite:///mlflow.db``).

    Raises:
        TrackingError: the store is unreachable or holds no such job.
    """
    # Imported on first use, like every name here: ``import tuning`` stays cheap.
    from tuning.spec import resolve_tracking_uri
    from tuning.tracking.store import load_job

    return load_job(resolve_tracking_uri(tracking_uri), name_or_run_id)


def __getattr__(name: str) -> Any:
    # Lazy public names: ``import tuning`` must not import Ray, MLflow or pandas.
    if name in ("load_spec", "parse_spec", "Spec"):
        from tuning import spec

        return getattr(spec, name)
    if name in ("run_job", "resume_job"):
        from tuning.job import lifecycle

        return getattr(lifecycle, name)
    if name == "JobResult":
        from tuning.job.results import JobResult

        return JobResult
    if name == "Job":
        from tuning.tracking.store import Job

        return Job
    if name in ("DataError", "JobError", "SpecError", "TrackingError"):
        from tuning import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'tuning' has no attribute {name!r}")
