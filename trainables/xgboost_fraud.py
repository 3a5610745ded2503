"""The XGBoost fraud classifier as a Ray Tune function trainable.

Fixed per-trial costs dominate short trials (ASHA stops most of them after a few
reports), so the expensive parts are paid once per worker process, not per trial:
the quantised training/validation matrices are cached at module level and survive
from trial to trial when the runner reuses actors.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from trainables import events
from trainables.data import Dataset
from trainables.data_ref import DataRef, materialise
from trainables.objectives import ObjectiveSettings, evaluate

logger = logging.getLogger(__name__)

MODEL_FILE = "model.ubj"
# Search-space keys that shape training but are not XGBoost parameters.
NON_XGB_KEYS = ("num_boost_round",)


@dataclass(frozen=True)
class TrainSettings:
    """Everything a trial needs besides its hyperparameters (same for all trials)."""

    num_boost_round: int = 300
    report_every: int = 10
    checkpoint_every: int = 1
    max_bin: int = 256
    objective: str = "aucpr"
    objective_settings: ObjectiveSettings = ObjectiveSettings()
    fixed_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    # Fault injection for the reliability tests: raise once per trial at this round.
    fail_at_round: int | None = None


# ------------------------------------------------------------ matrix cache
_CACHE_SIZE = 2
_MATRICES: OrderedDict[tuple, tuple[xgb.DMatrix, xgb.DMatrix]] = OrderedDict()
CACHE_STATS = {"hits": 0, "misses": 0}


def matrices(data: Dataset, max_bin: int, device: str) -> tuple[xgb.DMatrix, xgb.DMatrix]:
    """Training and validation matrices, built once per worker process.

    A ``QuantileDMatrix`` costs ~10x a plain ``DMatrix`` to build but saves the
    quantile sketch every trial would otherwise redo at its first round.
    """
    key = (data.fingerprint, max_bin, device)
    if key in _MATRICES:
        CACHE_STATS["hits"] += 1
        _MATRICES.move_to_end(key)
        return _MATRICES[key]
    CACHE_STATS["misses"] += 1
    dtrain = xgb.QuantileDMatrix(
        data.train.X, label=data.train.y, max_bin=max_bin, enable_categorical=True
    )
    dval = xgb.QuantileDMatrix(
        data.val.X, label=data.val.y, ref=dtrain, max_bin=max_bin, enable_categorical=True
    )
    _MATRICES[key] = (dtrain, dval)
    while len(_MATRICES) > _CACHE_SIZE:
        _MATRICES.popitem(last=False)
    return dtrain, dval


# ------------------------------------------------------------------ params
def xgb_params(
    config: dict[str, Any], settings: TrainSettings, data: Dataset, nthread: int, device: str
) -> dict[str, Any]:
    """XGBoost parameters of one trial: defaults, then fixed params, then the trial's config."""
    positives = int(data.train.y.sum())
    params: dict[str, Any] = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "eval_metric": "logloss",
        "max_bin": settings.max_bin,
        "seed": settings.seed,
        "nthread": nthread,
        "device": device,
        # Imbalance: weigh the rare class up by negatives/positives unless searched.
        "scale_pos_weight": (len(data.train.y) - positives) / max(positives, 1),
        "verbosity": 0,
    }
    params.update(settings.fixed_params)
    params.update({k: v for k, v in config.items() if k not in NON_XGB_KEYS})
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
class _Reporter(xgb.callback.TrainingCallback):
    """Scores the validation set every ``report_every`` rounds and reports to Tune."""

    def __init__(self, data: Dataset, dval: xgb.DMatrix, settings: TrainSettings, total: int,
                 fault_marker: Path | None, restored_from: int) -> None:
        super().__init__()
        self.data, self.dval, self.settings, self.total = data, dval, settings, total
        self.restored_from = restored_from
        self.fault_marker = fault_marker
        self.started = time.perf_counter()
        self.reports = 0
        self.node_id = _node_id()
        # Test hooks (trainables.events): off unless TUNING_EVENTS_DIR is set.
        self.trial_id = _trial_id() if events.enabled() else None

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        rounds = model.num_boosted_rounds()
        self._maybe_fail(rounds)
        if self.trial_id is not None:
            events.hold("trial.round", self.trial_id, round=rounds, node=self.node_id)
        if rounds % self.settings.report_every and rounds < self.total:
            return False
        self._report(model, rounds)
        return False

    def _maybe_fail(self, rounds: int) -> None:
        if self.fault_marker is None or rounds != self.settings.fail_at_round:
            return
        if not self.fault_marker.exists():
            self.fault_marker.write_text(str(rounds))
            raise RuntimeError(f"injected fault at round {rounds}")

    def _report(self, model: xgb.Booster, rounds: int) -> None:
        from ray import tune

        train_s = time.perf_counter() - self.started
        scores = model.predict(self.dval)
        metrics = evaluate(
            self.data.val.y, scores, self.settings.objective,
            self.settings.objective_settings, amounts=self.data.val.amount,
        )
        result: dict[str, Any] = {f"val_{k}": v for k, v in metrics.items()}
        result.update(rounds=rounds, training_done=rounds >= self.total,
                      train_time_s=train_s, node_id=self.node_id,
                      restored_from_round=self.restored_from,
                      cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES", ""))
        self.reports += 1
        if self.reports % self.settings.checkpoint_every and rounds < self.total:
            tune.report(result)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                Path(tmp, MODEL_FILE).write_bytes(model.save_raw("ubj"))
                tune.report(result, checkpoint=tune.Checkpoint.from_directory(tmp))
        if self.trial_id is not None:
            events.emit("trial.reported", trial=self.trial_id, round=rounds)
        # Training time excludes the time blocked in report (driver callbacks).
        self.started = time.perf_counter() - train_s


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - outside Ray (unit tests) there is no node
        return "local"


def _trial_id() -> str:
    from ray import tune

    return tune.get_context().get_trial_id()


def _restore_booster() -> xgb.Booster | None:
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return xgb.Booster(model_file=str(Path(folder, MODEL_FILE)))


# --------------------------------------------------------------- trainable
def train_xgboost_fraud(config: dict[str, Any], data: Dataset | DataRef,
                        settings: TrainSettings) -> None:
    """Ray Tune function trainable: train, report every k rounds, checkpoint the booster.

    Args:
        config: the trial's hyperparameters (XGBoost names, plus ``num_boost_round``).
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
    dtrain, dval = matrices(data, int(config.get("max_bin", settings.max_bin)), device)
    params = xgb_params(config, settings, data, nthread, device)
    total = int(config.get("num_boost_round", settings.num_boost_round))
    booster = _restore_booster()
    done = booster.num_boosted_rounds() if booster is not None else 0
    if done >= total:
        return
    marker = None
    if settings.fail_at_round is not None:
        # Outside the trial folder, which a retry may not share: one fault per trial.
        ctx = tune.get_context()
        marker = Path(tempfile.gettempdir(), "tuning-faults", ctx.get_experiment_name(),
                      ctx.get_trial_id())
        marker.parent.mkdir(parents=True, exist_ok=True)
    xgb.train(
        params, dtrain, num_boost_round=total - done, xgb_model=booster,
        callbacks=[_Reporter(data, dval, settings, total, marker, done)], verbose_eval=False,
    )


def fit_final(data: Dataset, config: dict[str, Any], settings: TrainSettings, rounds: int,
              include_val: bool, nthread: int | None = None) -> xgb.Booster:
    """Refit the chosen configuration on train (or train+validation) for ``rounds`` rounds."""
    import pandas as pd

    X, y = data.train.X, data.train.y
    if include_val:
        X = pd.concat([data.train.X, data.val.X], ignore_index=True)
        y = np.concatenate([data.train.y, data.val.y])
    dtrain = xgb.QuantileDMatrix(X, label=y, max_bin=settings.max_bin, enable_categorical=True)
    params = xgb_params(config, settings, data, nthread or os.cpu_count() or 1, "cpu")
    return xgb.train(params, dtrain, num_boost_round=rounds, verbose_eval=False)
