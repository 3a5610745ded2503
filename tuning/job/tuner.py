"""Assemble a job's Ray Tune ``Tuner``: trainable, search space, searcher, scheduler,
completion criteria and the driver callbacks."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray import tune
from ray.tune.logger import JsonLoggerCallback

from trainables.objectives import ObjectiveSettings
from trainables.thresholds import too_few_negatives
from trainables.registry import get_trainable
from trainables.xgboost_fraud import TrainSettings
from tuning.job.preflight import default_concurrency
from tuning.job.progress import ProgressCallback
from tuning.job.shipping import state_root, trial_data, tune_storage
from tuning.schedule.registry import build_scheduler, concurrency_warning
from tuning.schedule.state import SchedulerStateCallback
from tuning.schedule.stoppers import build_stopper
from tuning.search.baseline import baseline_point
from tuning.search.build import build_searcher
from tuning.search.space import grid_size, param_space
from tuning.errors import SpecError
from tuning.spec import Spec
from tuning.tracking.callback import MlflowTrackingCallback
from tuning.tracking.observations import load_observations

logger = logging.getLogger(__name__)


def cv_folds(spec: Spec, data: Any) -> int:
    """Folds of the job's cross-validation (``evaluation.cv``; ``auto`` reads the data)."""
    if data is None:
        return 1 if spec.evaluation.cv == "auto" else int(spec.evaluation.cv)
    return spec.evaluation.folds_for(int(data.train.y.sum()) + int(data.val.y.sum()))


def train_settings(spec: Spec, data: Any = None) -> TrainSettings:
    """What every trial (and the final refit) trains with, from the spec (and the data,
    which decides ``evaluation.cv: auto``)."""
    obj = spec.objective
    rule = spec.evaluation.threshold
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
        cv_folds=cv_folds(spec, data),
        time_folds=spec.data.split == "time",
        early_stopping_reports=spec.training.early_stopping_reports,
        threshold_rule=None if rule is None else rule.rule,
        threshold_value=None if rule is None else rule.value,
        also_at_best=tuple(obj.at_best),
        constraints=tuple((c.metric, c.min, c.max) for c in obj.constraints),
    )


def warn_on_threshold_budget(spec: Spec, data: Any) -> str | None:
    """Warn (and return the text) when validation cannot resolve the job's FPR budget."""
    settings = train_settings(spec, data)
    rule, value = settings.rule()
    if rule != "max_fpr":
        return None
    y = data.val.y if settings.cv_folds == 1 else np.concatenate([data.train.y, data.val.y])
    message = too_few_negatives(int((y == 0).sum()), value or spec.objective.max_fpr)
    if message:
        logger.warning("%s", message)
    return message


def trainable_with_data(spec: Spec, data: Any, experiment_dir: Path | None = None) -> Any:
    """The trainable with the job's data and settings bound, and its resources."""
    if spec.resources.workers:
        return data_parallel_trainable(spec, data, experiment_dir)
    trainable = tune.with_parameters(get_trainable(spec.trainable), data=trial_data(spec, data),
                                     settings=train_settings(spec, data))
    return tune.with_resources(trainable, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})


def data_parallel_trainable(spec: Spec, data: Any, experiment_dir: Path | None) -> Any:
    """``resources.workers``: each trial a Ray Train run (trainables.data_parallel).

    Tune holds only the coordinator's share of a CPU; the workers' own resources are
    Ray Train's, so :func:`concurrency` keeps Tune from starting more trials than fit.
    """
    from trainables.data_parallel import COORDINATOR_CPU, DataParallelTrial, Workers, shared

    settings = train_settings(spec, data)
    if settings.cv_folds != 1:
        raise SpecError(f"resources.workers: data-parallel trials train on one holdout; set "
                        f"evaluation.cv: 1 (got {spec.evaluation.cv!r}, {settings.cv_folds} folds)")
    storage = None
    if experiment_dir is not None:
        storage = f"{tune_storage(spec.storage.path, experiment_dir).rstrip('/')}/{experiment_dir.name}/train"
    workers = Workers(spec.resources.workers, spec.resources.cpu, spec.resources.gpu, storage)
    trainable = tune.with_parameters(DataParallelTrial, data=shared(trial_data(spec, data)),
                                     settings=settings, workers=workers)
    return tune.with_resources(trainable, {"cpu": COORDINATOR_CPU})


def concurrency(spec: Spec) -> int:
    """Trials side by side: :func:`default_concurrency`, or with ``resources.workers`` the
    whole data-parallel trials (workers and coordinator) the cluster holds at once."""
    if not spec.resources.workers:
        return default_concurrency(spec)
    from trainables.data_parallel import Workers

    total = ray.cluster_resources()
    per_trial = Workers(spec.resources.workers, spec.resources.cpu, spec.resources.gpu).per_trial_cpu
    fit = int(total.get("CPU", 1) // per_trial)
    if spec.resources.gpu > 0:
        fit = min(fit, int(total.get("GPU", 0) // (spec.resources.gpu * spec.resources.workers)))
    return max(1, min(fit, spec.budget.max_concurrent or fit))


def placement_warning(spec: Spec, nodes: list[dict[str, float]], at_once: int) -> str | None:
    """Why data-parallel trials may never start on these nodes (their Ray resources), or None.

    Ray places each trial's coordinator (0.1 CPU) on any node with room. On a node whose
    CPUs the workers fill exactly, a coordinator takes a worker's place; when the places
    left cannot hold the workers of the ``at_once`` trials, a Train run waits for a place
    that never comes (Ray Train's worker-group start times out, again and again).
    """
    from trainables.data_parallel import COORDINATOR_CPU

    r = spec.resources
    if not r.workers or r.cpu <= 0:
        return None

    def places(cpus: float, gpus: float) -> int:  # workers a node holds
        n = int(cpus // r.cpu + 1e-9)
        return min(n, int(gpus // r.gpu + 1e-9)) if r.gpu > 0 else n

    hosts = [(n.get("CPU", 0.0), n.get("GPU", 0.0)) for n in nodes]
    tight = sum(1 for c, g in hosts if places(c - COORDINATOR_CPU, g) < places(c, g))
    # At worst each coordinator sits on its own tight node and costs it one place.
    left = sum(places(c, g) for c, g in hosts) - min(at_once, tight)
    if left >= at_once * r.workers:
        return None
    return (f"resources.cpu {r.cpu:g} per worker fills the CPUs of {tight} node(s) exactly: a trial's "
            f"{COORDINATOR_CPU:g}-CPU coordinator placed there takes a worker's place, and the workers "
            f"of {at_once} trial(s) at once ({at_once * r.workers}) may then never all be placed (a Ray "
            f"Train run waits); leave {COORDINATOR_CPU:g} CPU spare, e.g. resources.cpu "
            f"{max(r.cpu - COORDINATOR_CPU, 0.0):g}")


def capped(search_alg: Any, spec: Spec) -> Any:
    """``search_alg``, a variant generator capped at :func:`concurrency` for data-parallel trials.

    Tune applies ``max_concurrent_trials`` to ``Searcher`` objects only; a
    ``BasicVariantGenerator`` (random, grid) caps itself, from ``budget.max_concurrent``
    alone. Tune does not see a data-parallel trial's workers, so without the cap it
    would start trials whose Train runs then wait for CPUs the running ones hold.
    """
    from ray.tune.search import BasicVariantGenerator

    if spec.resources.workers and isinstance(search_alg, BasicVariantGenerator):
        limit = concurrency(spec)
        if not 0 < search_alg.max_concurrent <= limit:
            search_alg.max_concurrent = limit
    return search_alg


def build_tuner(spec: Spec, data: Any, experiment_dir: Path, callbacks: list,
                observations: list | None = None, stopper: Any = None) -> tune.Tuner:
    """The job's Tuner (one search; :mod:`tuning.job.two_stage` runs two of these).

    ``observations`` are earlier results replayed into the searcher (default: the
    spec's ``search.warm_start``, read from MLflow); ``stopper`` the completion
    criteria to share (default: built from ``spec.budget``).
    """
    num_samples = spec.budget.num_samples
    if spec.search.algorithm == "grid":
        logger.info("grid search visits %d configurations (budget.num_samples is not used)",
                    grid_size(spec))
        num_samples = 1
    # Stage 2 of a two-stage job (observations given) refines: no baseline there.
    baseline = baseline_point(spec, data) if observations is None else None
    for callback in callbacks:  # the tracker tags the baseline trial's child run
        if isinstance(callback, MlflowTrackingCallback):
            callback.baseline = baseline
            if spec.objective.multi:  # it tags the Pareto set at the end
                callback.objectives = dict(zip(spec.objective.objective_keys,
                                               spec.objective.objective_modes))
    if observations is None and spec.search.warm_start is not None:
        observations = load_observations(spec)
    scheduler = build_scheduler(spec)
    at_once = concurrency(spec)
    warning = concurrency_warning(spec, at_once)
    if warning:
        logger.warning("%s", warning)
    placement = placement_warning(spec, [n["Resources"] for n in ray.nodes() if n.get("Alive")],
                                  at_once) if spec.resources.workers else None
    if placement:
        logger.warning("%s", placement)
    stopper = stopper or build_stopper(spec)
    tune_config = tune.TuneConfig(
        metric=spec.objective.tune_key,
        mode=spec.objective.resolved_mode,
        search_alg=capped(build_searcher(spec, observations, baseline), spec),
        scheduler=scheduler,
        num_samples=num_samples,
        max_concurrent_trials=at_once,
        time_budget_s=spec.budget.time_budget_s,
        # A function trainable reused across trials keeps its worker process, so
        # imports and the per-process DMatrix cache are paid once per worker. A
        # data-parallel trial starts its own Train workers: nothing to reuse.
        reuse_actors=not spec.resources.workers,
    )
    run_config = tune.RunConfig(
        name=experiment_dir.name,
        # A URI (s3://...) goes to Tune as written; a local path is the job folder's parent.
        storage_path=tune_storage(spec.storage.path, experiment_dir),
        callbacks=[*callbacks, *([stopper] if stopper else []), SchedulerStateCallback(scheduler),
                   JsonLoggerCallback(), InterruptWatch()],
        stop=stopper,
        failure_config=tune.FailureConfig(max_failures=spec.budget.max_failures),
        # Tune forces an experiment snapshot whenever a trial has saved num_to_keep
        # checkpoints since the last one: keep it above the usual checkpoints per trial.
        checkpoint_config=tune.CheckpointConfig(num_to_keep=3),
        verbose=0,
    )
    return tune.Tuner(trainable_with_data(spec, data, experiment_dir), param_space=param_space(spec),
                      tune_config=tune_config, run_config=run_config)


# Set when Ctrl-C (SIGINT) reached the driver during ``Tuner.fit``.
_INTERRUPTED = threading.Event()


class InterruptWatch(tune.Callback):
    """Notes a Ctrl-C that Tune turned into a graceful stop.

    Tune catches SIGINT itself, saves the experiment and returns from ``fit`` as
    if the job had ended; neither the result grid nor the trials' statuses say it
    was interrupted. Tune installs its handler before it calls ``setup`` on the
    callbacks (checked against ray 2.60), so this wraps Tune's handler there.
    """

    def setup(self, **info: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach only the main thread (e.g. Ray Client runs elsewhere)
        tune_handler = signal.getsignal(signal.SIGINT)

        def note_and_pass_on(signum: int, frame: Any) -> None:
            _INTERRUPTED.set()
            if callable(tune_handler):
                tune_handler(signum, frame)

        signal.signal(signal.SIGINT, note_and_pass_on)


def fit_noting_interrupts(tuner: Any) -> tuple[Any, bool]:
    """``tuner.fit()``; also return whether Ctrl-C stopped it. Restores the SIGINT handler."""
    _INTERRUPTED.clear()
    before = signal.getsignal(signal.SIGINT)
    try:
        results = tuner.fit()
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, before)
    return results, _INTERRUPTED.is_set()


def driver_callbacks(spec: Spec, uri: str, experiment_id: str | None, parent_run_id: str | None,
                     progress: bool) -> tuple[MlflowTrackingCallback | None, list]:
    """The tracking callback (None for an offline job) and every driver callback."""
    tracker = None
    callbacks: list = []
    if parent_run_id is not None and experiment_id is not None:
        tracker = MlflowTrackingCallback(uri, experiment_id, parent_run_id, spec.name,
                                         flush_timeout_s=spec.tracking.flush_timeout_s)
        callbacks.append(tracker)
    if progress:
        callbacks.append(ProgressCallback(spec.budget.num_samples, spec.objective.tune_key,
                                          spec.objective.resolved_mode))
    return tracker, callbacks


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
