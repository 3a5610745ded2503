"""The run loop: spec -> data -> Ray Tune job -> MLflow runs -> final verdict.

``tuning.preflight`` checks everything that can reject a job before this module
creates the parent run and the job folder.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuning.config import Spec, parse_spec
from tuning.preflight import (  # noqa: F401 - JobError and load_data are part of this API
    JobError,
    _check_reachable,
    check_resources,
    check_tracking,
    connect_ray,
    default_concurrency,
    load_data,
)
from tuning.shipping import state_root, trial_data, tune_experiment_path, tune_storage

logger = logging.getLogger(__name__)


@dataclass
class TrialSummary:
    trial_id: str
    status: str  # FINISHED | KILLED (stopped early) | FAILED
    config: dict[str, Any]
    best_value: float | None
    best_round: int | None
    rounds: int
    threshold: float | None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class JobResult:
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
    unlogged_records: int
    mlflow_ms_per_result: float

    def count(self, status: str) -> int:
        return sum(t.status == status for t in self.trials)


# ------------------------------------------------------------------ tuner
def train_settings(spec: Spec) -> Any:
    from trainables.objectives import ObjectiveSettings
    from trainables.xgboost_fraud import TrainSettings

    obj = spec.objective
    return TrainSettings(
        num_boost_round=spec.training.num_boost_round,
        report_every=spec.training.report_every,
        checkpoint_every=spec.training.checkpoint_every,
        max_bin=spec.training.max_bin,
        objective=obj.metric,
        objective_settings=ObjectiveSettings(
            max_fpr=obj.max_fpr, min_recall=obj.min_recall, fn_cost=obj.fn_cost,
            fp_cost=obj.fp_cost, threshold=obj.threshold,
        ),
        fixed_params=dict(spec.training.params),
        seed=spec.data.seed,
        fail_at_round=spec.training.fail_at_round,
    )


def trainable_with_data(spec: Spec, data: Any) -> Any:
    from ray import tune

    from trainables.registry import get_trainable

    trainable = tune.with_parameters(get_trainable(spec.trainable), data=trial_data(spec, data),
                                     settings=train_settings(spec))
    return tune.with_resources(trainable, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})


def build_tuner(spec: Spec, data: Any, experiment_dir: Path, callbacks: list,
                observations: list | None = None, stopper: Any = None) -> Any:
    """The job's Tuner (a two-stage job gets a :class:`~tuning.two_stage.TwoStageTuner`).

    ``observations`` are earlier results replayed into the searcher; ``stopper`` the
    completion criteria to share (default: built from ``spec.budget``).
    """
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    from tuning.schedulers import build_scheduler
    from tuning.search import build_searcher
    from tuning.space import grid_size, param_space
    from tuning.state import SchedulerStateCallback
    from tuning.stoppers import build_stopper

    num_samples = spec.budget.num_samples
    if spec.search.algorithm == "grid":
        logger.info("grid search visits %d configurations (budget.num_samples is not used)",
                    grid_size(spec))
        num_samples = 1
    if spec.search.algorithm == "two_stage":
        from tuning.two_stage import TwoStageTuner

        return TwoStageTuner(spec, data, experiment_dir, callbacks)
    scheduler = build_scheduler(spec)
    stopper = stopper or build_stopper(spec)
    tune_config = tune.TuneConfig(
        metric=spec.objective.result_key,
        mode=spec.objective.resolved_mode,
        search_alg=build_searcher(spec, observations),
        scheduler=scheduler,
        num_samples=num_samples,
        max_concurrent_trials=default_concurrency(spec),
        time_budget_s=spec.budget.time_budget_s,
        # A function trainable reused across trials keeps its worker process, so
        # imports and the per-process DMatrix cache are paid once per worker.
        reuse_actors=True,
    )
    run_config = tune.RunConfig(
        name=experiment_dir.name,
        # A URI (s3://...) goes to Tune as written; a local path is the job folder's parent.
        storage_path=tune_storage(spec.storage.path, experiment_dir),
        callbacks=[*callbacks, *([stopper] if stopper else []), SchedulerStateCallback(scheduler),
                   JsonLoggerCallback()],
        stop=stopper,
        failure_config=tune.FailureConfig(max_failures=spec.budget.max_failures),
        # Tune forces an experiment snapshot whenever a trial has saved num_to_keep
        # checkpoints since the last one: keep it above the usual checkpoints per trial.
        checkpoint_config=tune.CheckpointConfig(num_to_keep=3),
        verbose=0,
    )
    return tune.Tuner(trainable_with_data(spec, data), param_space=param_space(spec),
                      tune_config=tune_config, run_config=run_config)


# ------------------------------------------------------------------- jobs
def run_job(spec: Spec, address: str | None = None, progress: bool = True,
            offline: bool = False) -> JobResult:
    """Run a whole tuning job and return its outcome.

    With ``offline`` nothing is sent to MLflow during the job; ``tuning sync``
    logs it later from the job folder.
    """
    from mlflow.tracking import MlflowClient

    from tuning.parent import start_parent_run
    from tuning.state import write_job_state

    data = load_data(spec)
    uri = spec.tracking_uri()
    _quiet_http_retries()
    if address and address != "auto":
        _check_reachable(address)  # before the store is touched: nothing half-written
    if not offline:
        check_tracking(uri)
    connect_ray(address)
    check_resources(spec, autoscaling=address is not None)
    experiment_dir = new_experiment_dir(spec)
    experiment_id = parent_run_id = None
    if not offline:
        experiment_id, parent_run_id = start_parent_run(MlflowClient(uri), spec, data.fingerprint,
                                                        str(experiment_dir))
    write_job_state(experiment_dir, spec=spec.model_dump(mode="json"), tracking_uri=uri,
                    experiment_id=experiment_id, parent_run_id=parent_run_id, status="RUNNING",
                    data_hash=data.fingerprint,
                    tune_path=tune_experiment_path(spec.storage.path, experiment_dir))
    tracker, callbacks = _callbacks(spec, uri, experiment_id, parent_run_id, progress)
    tuner = build_tuner(spec, data, experiment_dir, callbacks)
    return _fit_and_finish(spec, data, tuner, tracker, experiment_dir, resumed=False)


def resume_job(name_or_path: str, storage: str | None = None, tracking_uri: str | None = None,
               address: str | None = None, progress: bool = True) -> JobResult:
    """Finish a job whose driver died: same parent run, same child runs, no re-runs."""
    from mlflow.tracking import MlflowClient
    from ray import tune

    from tuning.config import DEFAULT_STORAGE
    from tuning.state import find_experiment_dir, read_job_state, write_job_state

    try:
        experiment_dir = find_experiment_dir(name_or_path, storage or DEFAULT_STORAGE)
    except FileNotFoundError as err:
        raise JobError(str(err)) from None
    state = read_job_state(experiment_dir)
    if state.get("status") == "FINISHED":
        raise JobError(f"{experiment_dir}: the job already finished; nothing to resume")
    spec = parse_spec(state["spec"], source=str(experiment_dir / "tuning_state.json"))
    if spec.search.algorithm == "two_stage":
        raise JobError(f"{experiment_dir}: a two-stage job cannot be resumed yet (only its "
                       "last stage's Tune state is saved); run it again")
    uri = tracking_uri or state["tracking_uri"]
    data = load_data(spec)
    _quiet_http_retries()
    online = state.get("parent_run_id") is not None
    if online:
        check_tracking(uri)
    connect_ray(address)
    if online:
        MlflowClient(uri).update_run(state["parent_run_id"], status="RUNNING")
    write_job_state(experiment_dir, **{**state, "tracking_uri": uri, "status": "RUNNING"})
    tuner = tune.Tuner.restore(state.get("tune_path", str(experiment_dir)),
                               trainable=trainable_with_data(spec, data),
                               resume_unfinished=True, resume_errored=False)
    tracker = _restored_tracker(tuner, uri)
    return _fit_and_finish(spec, data, tuner, tracker, experiment_dir, resumed=True)


def new_experiment_dir(spec: Spec) -> Path:
    """A fresh folder per job run, so two runs of one spec never mix their state."""
    root = state_root(spec.storage.path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{spec.name}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{spec.name}-{stamp}-{n}"
    return path


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


def _callbacks(spec: Spec, uri: str, experiment_id: str | None, parent_run_id: str | None,
               progress: bool) -> tuple[Any, list]:
    from tuning.progress import ProgressCallback
    from tuning.tracking import MlflowTrackingCallback

    tracker = None
    callbacks: list = []
    if parent_run_id is not None:
        tracker = MlflowTrackingCallback(uri, experiment_id, parent_run_id, spec.name)
        callbacks.append(tracker)
    if progress:
        callbacks.append(ProgressCallback(spec.budget.num_samples, spec.objective.result_key,
                                          spec.objective.resolved_mode))
    return tracker, callbacks


def _restored_tracker(tuner: Any, uri: str) -> Any:
    """The tracking callback unpickled with the Tuner, pointed at the current store."""
    from tuning.tracking import MlflowTrackingCallback

    run_config = tuner._local_tuner.get_run_config()
    for callback in run_config.callbacks or []:
        if isinstance(callback, MlflowTrackingCallback):
            callback.tracking_uri = uri
            return callback
    return None  # an offline job


def _fit_and_finish(spec: Spec, data: Any, tuner: Any, tracker: Any, experiment_dir: Path,
                    resumed: bool) -> JobResult:
    from tuning.final import evaluate_best, pick_best, summarise, verdict_of
    from tuning.verdict import write_verdict
    from tuning.stoppers import job_stop_reason
    from tuning.state import read_job_state, write_job_state
    from tuning.sync import BEST_MODEL_FILE

    state = read_job_state(experiment_dir)
    started = time.monotonic()
    try:
        results = tuner.fit()
    except BaseException:
        if tracker is not None:
            unwritten = tracker.close(timeout=30)
            if unwritten:
                logger.error("%d MLflow records were not written; `tuning sync` replays them",
                             unwritten)
        raise
    wall = time.monotonic() - started
    unwritten = (tracker.close(timeout=spec.tracking.flush_timeout_s)
                 if tracker is not None else 0)
    if _interrupted(results):
        # Ctrl-C: Tune saved its state; the job stays RUNNING for `tuning resume`.
        raise KeyboardInterrupt
    trials = summarise(results, spec)
    mode = spec.objective.resolved_mode
    best = pick_best(trials, mode)
    test_metrics: dict[str, float] = {}
    verdict: dict[str, Any] | None = None
    if best is not None:
        booster, scores = evaluate_best(spec, data, best)
        booster.save_model(str(experiment_dir / BEST_MODEL_FILE))
        verdict = verdict_of(spec, data, best, scores)
        write_verdict(experiment_dir, verdict, data.test.y, scores)
        test_metrics = verdict["metrics"]
    counts = {s.lower(): sum(t.status == s for t in trials)
              for s in ("FINISHED", "KILLED", "FAILED")}
    counts["total"] = len(trials)
    stop_reason = job_stop_reason(spec, tuner, len(trials))
    state.update(status="FINISHED", outcome={
        "best": None if best is None else {
            "trial_id": best.trial_id, "config": best.config, "metrics": best.metrics,
            "best_round": best.best_round, "threshold": best.threshold},
        "test_metrics": test_metrics, "verdict": verdict, "counts": counts,
        "stop_reason": stop_reason,
        "log_model": spec.tracking.log_model,
    })
    write_job_state(experiment_dir, **state)
    known = {t.trial_id for t in getattr(results._experiment_analysis, "trials", None) or []}
    unlogged = _finish_tracking(experiment_dir, state, tracker, unwritten, resumed, known, data)
    per_result = (tracker.driver_seconds * 1000 / max(tracker.results_seen, 1)
                  if tracker is not None else 0.0)
    return JobResult(
        name=spec.name, parent_run_id=state.get("parent_run_id") or "",
        experiment_id=state.get("experiment_id") or "", tracking_uri=state["tracking_uri"],
        experiment_dir=str(experiment_dir), metric=spec.objective.result_key, mode=mode,
        wall_s=wall, trials=trials, best=best, test_metrics=test_metrics, verdict=verdict,
        unlogged_records=unlogged, mlflow_ms_per_result=per_result,
    )


def _interrupted(results: Any) -> bool:
    trials = getattr(results._experiment_analysis, "trials", None) or []
    return any(t.status not in ("TERMINATED", "ERROR") for t in trials)


def _finish_tracking(experiment_dir: Path, state: dict[str, Any], tracker: Any,
                     unwritten: int, resumed: bool, known_trial_ids: set[str], data: Any) -> int:
    """Complete the MLflow side; return the records left unlogged (0 when all is there).

    After a resume or an outage, the job folder is replayed into MLflow first, so
    statuses and points a dead driver never wrote get there, without duplicates.
    """
    from mlflow.tracking import MlflowClient

    from tuning.sync import complete_parent, sync_job

    if tracker is None:
        logger.warning("offline job: nothing was logged to MLflow; run `tuning sync %s` to log it",
                       experiment_dir)
        return -1
    uri = state["tracking_uri"]
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
