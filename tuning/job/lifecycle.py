"""The run loop: spec -> data -> Ray Tune job -> MLflow runs -> final verdict.

:mod:`tuning.job.preflight` checks everything that can reject a job before this
module creates the parent run and the job folder.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from mlflow.tracking import MlflowClient
from ray import tune

from tuning._ray_compat import grid_trials, run_config
from tuning.errors import JobError
from tuning.job.preflight import (
    STREAMED_TAG,
    check_reachable,
    check_resources,
    check_tracking,
    load_data,
)
from tuning.job.refit import pick_best, refit_and_judge, summarise
from tuning.job.results import JobResult
from tuning.job.shipping import tune_experiment_path
from tuning.job.state import FINISHED, RUNNING, JobState, Outcome, find_experiment_dir
from tuning.job.sync import complete_parent, sync_job
from tuning.job.tuner import (
    build_tuner,
    driver_callbacks,
    fit_noting_interrupts,
    new_experiment_dir,
    trainable_with_data,
    warn_on_threshold_budget,
)
from tuning.job.two_stage import (
    TwoStageTuner,
    enter_stage,
    restorable_stage,
    stage_trainable,
)
from tuning.job.warmup import RayStart, start_ray, wait_for_ray
from tuning.schedule.stoppers import job_stop_reason
from tuning.spec import DEFAULT_STORAGE, Spec, parse_spec
from tuning.tracking.callback import MlflowTrackingCallback
from tuning.tracking.parent import start_parent_run
from tuning.tracking.tags import STATUSES

logger = logging.getLogger(__name__)


def run_job(spec: Spec, address: str | None = None, progress: bool = True,
            offline: bool = False, data: Any = None) -> JobResult:
    """Run a whole tuning job and return its outcome (what ``tuning run`` does).

    Args:
        spec: the validated spec (:func:`tuning.load_spec`).
        address: a Ray cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``);
            None starts a local Ray.
        progress: print the live progress line on stderr.
        offline: send nothing to MLflow during the job; ``tuning sync`` logs it later.
        data: the spec's data when the caller loaded it already
            (``tuning.job.preflight.load_data(spec)``, as ``tuning run`` does); None loads it.

    Raises:
        DataError: the data cannot be read or split.
        JobError: the cluster, the resources or the tracking store cannot serve the job.
    """
    if data is None:
        data = load_data(spec)
    uri = spec.tracking_uri()
    _quiet_http_retries()
    # A local Ray comes up in the background while the tracking store is checked.
    with _preflight(start_ray(address, None if offline else uri)) as ray_start:
        if address and address != "auto":
            check_reachable(address)  # before the store is touched: nothing half-written
        if not offline:
            check_tracking(uri)
    wait_for_ray(ray_start, address)
    check_resources(spec, autoscaling=address is not None)
    warn_on_threshold_budget(spec, data)
    experiment_dir = new_experiment_dir(spec)
    experiment_id = parent_run_id = None
    if not offline:
        experiment_id, parent_run_id = start_parent_run(MlflowClient(uri), spec, data.fingerprint,
                                                        str(experiment_dir))
        if getattr(data, "streamed", False):  # sharded input planned, never read whole (issue #16)
            MlflowClient(uri).set_tag(parent_run_id, STREAMED_TAG, "true")
    state = JobState(spec=spec.model_dump(mode="json"), tracking_uri=uri,
                     experiment_id=experiment_id, parent_run_id=parent_run_id, status=RUNNING,
                     data_hash=data.fingerprint,
                     tune_path=tune_experiment_path(spec.storage.path, experiment_dir))
    two_stage = spec.search.algorithm == "two_stage"
    if two_stage:  # one Tune experiment per stage, in <job>/stage1 and <job>/stage2
        enter_stage(state, spec, experiment_dir, 1)
    else:
        state.write(experiment_dir)
    tracker, callbacks = driver_callbacks(spec, uri, experiment_id, parent_run_id, progress)
    if tracker is not None:  # refused records are listed there, for `tuning sync`
        tracker.job_dir = str(experiment_dir)
    if two_stage:
        tuner: Any = TwoStageTuner(spec, data, experiment_dir, callbacks, state)
    else:
        tuner = build_tuner(spec, data, experiment_dir, callbacks)
    return _fit_and_finish(spec, data, tuner, tracker, experiment_dir, state, resumed=False)


def resume_job(name_or_path: str, storage: str | None = None, tracking_uri: str | None = None,
               address: str | None = None, progress: bool = True) -> JobResult:
    """Finish a job whose driver died: same parent run, same child runs, no re-runs.

    A two-stage job goes on from the stage it was in: an unfinished stage 1 is restored
    and finished, then stage 2 runs; in stage 2, stage 1's results are read from its
    folder and stage 2 is restored.

    Args:
        name_or_path: a job folder, or a job name (its newest folder under ``storage``).
        storage: where job folders live (default ``tuning_runs``).
        tracking_uri: the store to log to (default: the one the job used).

    Raises:
        JobError: no such job, the job already finished, or it cannot be resumed.
    """
    experiment_dir = find_experiment_dir(name_or_path, storage or DEFAULT_STORAGE)
    state = JobState.read(experiment_dir)
    if state.status == FINISHED:
        raise JobError(f"{experiment_dir}: the job already finished; nothing to resume")
    spec = parse_spec(state.spec, source=str(experiment_dir / "tuning_state.json"))
    two_stage = spec.search.algorithm == "two_stage"
    if two_stage and state.stage is None:
        raise JobError(f"{experiment_dir}: a two-stage job written before its stages had Tune "
                       "folders of their own cannot be resumed (only its last stage's Tune "
                       "state is saved); run it again")
    uri = tracking_uri or state.tracking_uri
    data = load_data(spec)
    _quiet_http_retries()
    with _preflight(start_ray(address, uri if state.online else None)) as ray_start:
        if state.online:
            check_tracking(uri)
    wait_for_ray(ray_start, address)
    if state.online:
        MlflowClient(uri).update_run(state.parent_run_id, status=RUNNING)
    state.tracking_uri, state.status = uri, RUNNING
    state.write(experiment_dir)
    # With the job (a two-stage job's stage) folder: data-parallel trials keep their Train
    # runs' checkpoints there.
    if two_stage:
        trainable = stage_trainable(spec, data, experiment_dir,
                                    restorable_stage(state, experiment_dir) or 1)
    else:
        trainable = trainable_with_data(spec, data, experiment_dir)
    tuner = tune.Tuner.restore(state.tune_path, trainable=trainable,
                               resume_unfinished=True, resume_errored=False)
    tracker = _restored_tracker(tuner, uri, spec.tracking.flush_timeout_s)
    if tracker is not None:
        tracker.job_dir = str(experiment_dir)
    if two_stage:  # tune_path is the stage the driver died in
        tuner = TwoStageTuner.resumed(spec, data, experiment_dir, state, tuner, trainable)
    return _fit_and_finish(spec, data, tuner, tracker, experiment_dir, state, resumed=True)


@contextmanager
def _preflight(ray_start: RayStart | None) -> Iterator[RayStart | None]:
    """Checks made while Ray starts: a failed one stops the Ray this job began."""
    try:
        yield ray_start
    except BaseException:
        if ray_start is not None:
            ray_start.discard()
        raise


def _quiet_http_retries() -> None:
    """Our writer retries with its own backoff; MLflow's HTTP retries would stall it."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    # Snapshot the experiment state often enough that a killed driver loses little.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's CSV and TensorBoard loggers cost driver time per result and duplicate
    # what MLflow holds; result.json (JsonLoggerCallback, added in build_tuner) stays:
    # it is what `tuning sync` and the result grid read.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


def _restored_tracker(tuner: Any, uri: str,
                      flush_timeout_s: float) -> MlflowTrackingCallback | None:
    """The tracking callback unpickled with the Tuner, pointed at the current store and
    given the current spec's end-of-job wait."""
    config = run_config(tuner)
    for callback in (config.callbacks if config is not None else None) or []:
        if isinstance(callback, MlflowTrackingCallback):
            callback.tracking_uri = uri
            callback.flush_timeout_s = flush_timeout_s
            return callback
    return None  # an offline job


def _fit_and_finish(spec: Spec, data: Any, tuner: Any, tracker: Any, experiment_dir: Path,
                    state: JobState, resumed: bool) -> JobResult:
    started = time.monotonic()
    try:
        results, interrupted = fit_noting_interrupts(tuner)
    except BaseException:
        if tracker is not None:
            unwritten = tracker.close(timeout=30)
            if unwritten:
                logger.error("%d MLflow records were not written; `tuning sync` replays them",
                             unwritten)
        raise
    wall = time.monotonic() - started
    unwritten = tracker.close(timeout=tracker.end_wait_left()) if tracker is not None else 0
    tune_trials = grid_trials(results)
    if interrupted or any(t.status not in ("TERMINATED", "ERROR") for t in tune_trials):
        # Ctrl-C: Tune saved its state; the job stays RUNNING for `tuning resume`.
        raise KeyboardInterrupt
    trials = summarise(results, spec)
    mode = spec.objective.resolved_mode
    best = pick_best(trials, mode)
    test_metrics: dict[str, float] = {}
    verdict: dict[str, Any] | None = None
    if best is not None:
        verdict, test_metrics = refit_and_judge(spec, data, trials, best, experiment_dir)
    counts = {s.lower(): sum(t.status == s for t in trials) for s in STATUSES}
    counts["total"] = len(trials)
    state.status = FINISHED
    state.outcome = Outcome(best=best, test_metrics=test_metrics, verdict=verdict, counts=counts,
                            stop_reason=job_stop_reason(spec, tuner, len(trials)),
                            log_model=spec.tracking.log_model)
    state.write(experiment_dir)
    known = {t.trial_id for t in tune_trials}
    unlogged = _finish_tracking(experiment_dir, state, tracker, unwritten, resumed, known, data)
    per_result = (tracker.driver_seconds * 1000 / max(tracker.results_seen, 1)
                  if tracker is not None else 0.0)
    return JobResult(
        name=spec.name, parent_run_id=state.parent_run_id or "",
        experiment_id=state.experiment_id or "", tracking_uri=state.tracking_uri,
        experiment_dir=str(experiment_dir), metric=spec.objective.result_key, mode=mode,
        wall_s=wall, trials=trials, best=best, test_metrics=test_metrics, verdict=verdict,
        unlogged_records=unlogged, mlflow_ms_per_result=per_result,
    )


def _finish_tracking(experiment_dir: Path, state: JobState, tracker: Any,
                     unwritten: int, resumed: bool, known_trial_ids: set[str], data: Any) -> int:
    """Complete the MLflow side; return the records left unlogged (0 when all is there).

    After a resume or an outage, the job folder is replayed into MLflow first, so
    statuses and points a dead driver never wrote get there, without duplicates.
    """
    if tracker is None:
        logger.warning("offline job: nothing was logged to MLflow; run `tuning sync %s` to log it",
                       experiment_dir)
        return -1
    uri = state.tracking_uri
    try:
        if unwritten or resumed:
            report = sync_job(experiment_dir, uri, known_trial_ids, data)
            logger.info("replayed from the job folder: %d runs created, %d metric values, "
                        "%d statuses fixed, %d orphan runs removed", report.runs_created,
                        report.metric_points, report.statuses_fixed, report.orphans_removed)
        else:
            complete_parent(MlflowClient(uri), uri, experiment_dir, state, data)
    except Exception as err:  # noqa: BLE001 - the store may still be down: keep the job
        logger.error("MLflow store %s unreachable at the end of the job (%s); run `tuning sync "
                     "%s` when it is back", uri, str(err).splitlines()[0][:200], experiment_dir)
        return max(unwritten, 1)
    return 0
