"""The XGBoost fraud classifier as a Ray Tune function trainable.

Fixed per-trial costs dominate short trials (ASHA stops most of them after a few
reports), so the expensive parts are paid once per worker process, not per trial:
the quantised matrices (holdout or K folds) are cached at module level and survive
from trial to trial when the runner reuses actors. The training loop itself is
:func:`trainables.lockstep.train_lockstep`; this module adds Ray: resources,
``tune.report``, checkpoints and the test hooks of :mod:`trainables.events`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from trainables import events
from trainables.cv import CACHE_STATS, matrices, parts_for, validation_negatives  # noqa: F401 - API
from trainables.data import Dataset
from trainables.data_ref import DataRef, materialise
from trainables.lockstep import MODEL_FILE, Progress, load_checkpoint, save_checkpoint, train_lockstep
from trainables.settings import TrainSettings
from trainables.thresholds import too_few_negatives
from trainables.xgb_params import TRAINABLE_KEYS, scale_pos_weight_for

logger = logging.getLogger(__name__)

__all__ = ["MODEL_FILE", "NON_XGB_KEYS", "TrainSettings", "fit_final", "train_xgboost_fraud", "xgb_params"]

# Search-space keys that shape training but are not XGBoost parameters.
NON_XGB_KEYS = TRAINABLE_KEYS


# ------------------------------------------------------------------ params
def xgb_params(
    config: dict[str, Any], settings: TrainSettings, data: Dataset, nthread: int, device: str,
    y_train: np.ndarray | None = None,
) -> dict[str, Any]:
    """XGBoost parameters of one trial: defaults, then fixed params, then the trial's config.

    ``y_train`` are the labels the booster trains on (a fold, or all non-test rows); the
    class weight follows them. None means the training split.
    """
    y = data.train.y if y_train is None else y_train
    params: dict[str, Any] = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "eval_metric": "logloss",
        "max_bin": settings.max_bin,
        "seed": settings.seed,
        "nthread": nthread,
        "device": device,
        # Imbalance: weigh the rare class up by negatives/positives unless searched.
        "scale_pos_weight": scale_pos_weight_for("balanced", y),
        "verbosity": 0,
    }
    if settings.cv_folds > 1:
        # K boosters draw from XGBoost's one global RNG in turn; seeding it per iteration
        # makes each fold's sampling independent of that order and of restores.
        params["seed_per_iteration"] = True
    merged = {**settings.fixed_params, **config}
    if "class_weight" in merged:
        if "scale_pos_weight" in merged:
            raise ValueError("give class_weight or scale_pos_weight, not both")
        params["scale_pos_weight"] = scale_pos_weight_for(str(merged["class_weight"]), y)
    params.update({k: v for k, v in merged.items() if k not in NON_XGB_KEYS})
    for int_key in ("max_depth", "max_bin", "min_child_weight_int", "max_leaves"):
        if int_key in params:
            params[int_key] = int(params[int_key])
    return params


# CPU-only test rigs declare logical GPUs (``num_gpus`` on a Ray node) to check
# placement; with this set to 1 a trial holding a GPU share still trains on the CPU.
FORCE_CPU_ENV = "TUNING_FORCE_CPU"


def trial_resources() -> tuple[int, str]:
    """(nthread, device) from the resources Ray gave this trial.

    A trial with a GPU share trains with ``device="cuda"`` (XGBoost uses the GPU that
    Ray put in ``CUDA_VISIBLE_DEVICES``), unless ``TUNING_FORCE_CPU=1``.
    """
    from ray import tune

    required = tune.get_context().get_trial_resources().required_resources
    nthread = max(1, int(required.get("CPU", 1)))
    return nthread, device_for(required.get("GPU", 0))


def device_for(gpu_share: float) -> str:
    """XGBoost's ``device`` for a trial holding ``gpu_share`` GPUs."""
    return "cuda" if gpu_share > 0 and os.environ.get(FORCE_CPU_ENV) != "1" else "cpu"



# -------------------------------------------------------------- reporting
class _TrialHooks:
    """Per-round hooks of a trial: fault injection and the test events."""

    def __init__(self, settings: TrainSettings, fault_marker: Path | None) -> None:
        self.settings, self.fault_marker = settings, fault_marker
        self.node_id = _node_id()
        # Test hooks (trainables.events): off unless TUNING_EVENTS_DIR is set.
        self.trial_id = _trial_id() if events.enabled() else None

    def on_round(self, rounds: int) -> None:
        if self.fault_marker is not None and rounds == self.settings.fail_at_round:
            if not self.fault_marker.exists():
                self.fault_marker.write_text(str(rounds))
                raise RuntimeError(f"injected fault at round {rounds}")
        if self.trial_id is not None:
            events.hold("trial.round", self.trial_id, round=rounds, node=self.node_id)

    def reported(self, rounds: int) -> None:
        if self.trial_id is not None:
            events.emit("trial.reported", trial=self.trial_id, round=rounds)


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - outside Ray (unit tests) there is no node
        return "local"


def _trial_id() -> str:
    from ray import tune

    return tune.get_context().get_trial_id()


def _restore(k: int) -> tuple[list[xgb.Booster] | None, Progress | None]:
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None, None
    with checkpoint.as_directory() as folder:
        return load_checkpoint(folder, k)


def _fault_marker(settings: TrainSettings) -> Path | None:
    if settings.fail_at_round is None:
        return None
    from ray import tune

    # Outside the trial folder, which a retry may not share: one fault per trial.
    ctx = tune.get_context()
    marker = Path(tempfile.gettempdir(), "tuning-faults", ctx.get_experiment_name(), ctx.get_trial_id())
    marker.parent.mkdir(parents=True, exist_ok=True)
    return marker


def _warn_on_budget(parts: list, settings: TrainSettings) -> None:
    rule, value = settings.rule()
    if rule == "max_fpr":
        budget = settings.objective_settings.max_fpr if value is None else value
        warning = too_few_negatives(validation_negatives(parts), budget)
        if warning:
            logger.warning("%s", warning)


# --------------------------------------------------------------- trainable
def train_xgboost_fraud(config: dict[str, Any], data: Dataset | DataRef,
                        settings: TrainSettings) -> None:
    """Ray Tune function trainable: train, report every k rounds, checkpoint the booster(s).

    With ``settings.cv_folds == 1`` one booster trains on train and is scored on
    validation; with K > 1, K boosters train in lockstep on the folds of all non-test
    rows and each report holds the fold means (threshold from out-of-fold scores).

    Args:
        config: the trial's hyperparameters (XGBoost names, plus ``num_boost_round``
            and ``class_weight``).
        data: the train/validation/test splits, shared through the object store, or a
            :class:`~trainables.data_ref.DataRef` that each worker process loads once.
        settings: fixed training settings of the job.
    """
    from ray import tune

    # Tune logs every checkpoint at INFO on the worker; that floods the driver console.
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    # A DataRef (data.ship: path) is read here, once per worker process.
    data = materialise(data)
    nthread, device = trial_resources()
    parts = parts_for(data, settings, int(config.get("max_bin", settings.max_bin)), device)
    params = [xgb_params(config, settings, data, nthread, device, y_train=p.y_train) for p in parts]
    total = int(config.get("num_boost_round", settings.num_boost_round))
    boosters, progress = _restore(len(parts))
    done = boosters[0].num_boosted_rounds() if boosters else 0
    if done >= total or (progress is not None and progress.stopped):
        return
    _warn_on_budget(parts, settings)
    hooks = _TrialHooks(settings, _fault_marker(settings))
    extra = {"node_id": hooks.node_id, "restored_from_round": done,
             "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    reports = 0
    for report in train_lockstep(params, parts, total, settings, boosters, progress, hooks.on_round):
        result = {**report.result, **extra}
        reports += 1
        if reports % settings.checkpoint_every and not report.done:
            tune.report(result)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                save_checkpoint(tmp, report.boosters, report.progress)
                tune.report(result, checkpoint=tune.Checkpoint.from_directory(tmp))
        hooks.reported(report.rounds)


def fit_final(data: Dataset, config: dict[str, Any], settings: TrainSettings, rounds: int,
              include_val: bool = False, nthread: int | None = None, *, dev: bool = False) -> xgb.Booster:
    """Refit the chosen configuration for ``rounds`` rounds (the trial's best round).

    Args:
        data: The job's dataset.
        config: The chosen trial's config.
        settings: The job's settings.
        rounds: Boosting rounds; with CV the round the folds chose (``best_round``).
        include_val: Train on train+validation (class weight from the training split,
            as before), else on train only.
        nthread: Threads; None uses every core.
        dev: Train on all non-test rows (``data.dev()``) with the class weight and
            sampling seeds of those rows: the refit after K-fold CV.
    """
    import pandas as pd

    y_weight = None
    if dev:
        rows = data.dev()
        X, y = rows.X, rows.y
        y_weight = y
    elif include_val:
        X = pd.concat([data.train.X, data.val.X], ignore_index=True)
        y = np.concatenate([data.train.y, data.val.y])
    else:
        X, y = data.train.X, data.train.y
    dtrain = xgb.QuantileDMatrix(X, label=y, max_bin=settings.max_bin, enable_categorical=True)
    params = xgb_params(config, settings, data, nthread or os.cpu_count() or 1, "cpu", y_train=y_weight)
    return xgb.train(params, dtrain, num_boost_round=rounds, verbose_eval=False)
