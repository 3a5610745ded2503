"""Ray Train workers on sharded input: their rows from Ray Data, and the data-parallel refit.

A streamed job (:class:`~trainables.shards.StreamedDataset`) gives each Train run Ray
Data datasets of the training and validation rows (:func:`trial_datasets`; the test
rows never), which Ray Train splits among the workers. A worker's validation share is
arbitrary (blocks, not every N-th row), so the whole split's labels and amounts are
assembled once, as its scores are every report: each worker writes its rows into its
slots of a zero vector and one allreduce sums them (:func:`streamed_rows`).

The final refit of such a job is a Train run too (:func:`refit_streamed`): one run
fits every configuration asked for (the best, the baseline, the train-only model for
calibration) on the same matrices, and rank 0's checkpoint brings the boosters back.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainables import events
from trainables.shards import AMOUNT_COLUMN, SPLIT_COLUMN, Y_COLUMN, StreamedDataset, decode, ray_split

logger = logging.getLogger(__name__)

__all__ = ["refit_streamed", "streamed_rows", "trial_datasets"]


def trial_datasets(data: StreamedDataset) -> dict[str, Any]:
    """The Ray Data dataset of one trial's Train run: training and validation rows only."""
    return {"rows": ray_split(data.plan, ["train", "val"])}


def _shard(name: str, data: StreamedDataset) -> pd.DataFrame:
    """This worker's share of dataset ``name`` (``ray.train.get_dataset_shard``), as one frame."""
    import ray.train

    batches = [b for b in ray.train.get_dataset_shard(name).iter_batches(batch_format="pandas", batch_size=None)
               if len(b)]
    if batches:
        return pd.concat(batches, ignore_index=True)
    pre = data.plan.preprocessor  # an empty share: the columns, no rows
    empty = {c.feature: np.zeros(0, dtype=np.int32 if c.kind == "category" else np.float32) for c in pre.columns}
    return pd.DataFrame({**empty, Y_COLUMN: np.zeros(0, dtype=np.int8), AMOUNT_COLUMN: np.zeros(0),
                         SPLIT_COLUMN: np.zeros(0, dtype=np.int8)})


def _parts(data: StreamedDataset) -> dict[int, tuple[pd.DataFrame, np.ndarray, np.ndarray]]:
    """This worker's rows by split code: (X, y, amount)."""
    import ray.train

    X, y, amount, split = decode(_shard("rows", data), data.plan.preprocessor)
    parts = {code: (X[split == code].reset_index(drop=True), y[split == code], amount[split == code])
             for code in (0, 1)}
    events.emit("data.worker_rows", rank=ray.train.get_context().get_world_rank(), train=len(parts[0][1]),
                val=len(parts[1][1]), train_positives=int(parts[0][1].sum()), test=int((split == 2).sum()))
    return parts


def streamed_rows(data: StreamedDataset, world: int) -> Any:
    """This worker's rows (:class:`trainables.data_parallel.Rows`) from its dataset shard."""
    import ray.train
    import xgboost as xgb

    from trainables.train_run import Rows

    rank = ray.train.get_context().get_world_rank()
    parts = _parts(data)
    (train_X, train_y, _), (val_X, val_y, val_amount) = parts[0], parts[1]
    mine = np.zeros(world, dtype=np.float64)
    mine[rank] = len(val_y)
    counts = xgb.collective.allreduce(mine, xgb.collective.Op.SUM).astype(np.int64)
    start, total = int(counts[:rank].sum()), int(counts.sum())
    slots = np.arange(start, start + len(val_y))

    def whole(values: np.ndarray) -> np.ndarray:
        out = np.zeros(total, dtype=np.float64)
        out[slots] = values
        return xgb.collective.allreduce(out, xgb.collective.Op.SUM)

    whole_y = whole(val_y.astype(np.float64)).astype(np.int8)
    whole_amount = whole(val_amount) if data.plan.amount_column else None
    events.emit("data.val_assembled", rank=rank, rows=total, positives=int(whole_y.sum()))
    return Rows(train_X, train_y, val_X, val_y, whole_y, whole_amount, slots)


# ------------------------------------------------------------------ the refit
def refit_streamed(data: StreamedDataset, items: Sequence[tuple[dict[str, Any], int, bool]], settings: Any,
                   workers: Any, name: str) -> list[Any]:
    """Fit each ``(config, rounds, include_val)`` in one data-parallel Train run; the boosters.

    ``include_val`` trains on training and validation rows, else on training rows; the
    class weight follows the training split either way (as ``fit_final``).
    """
    import xgboost as xgb
    from ray.train import RunConfig

    from trainables.train_run import xgboost_trainer

    names = ["train", "val"] if any(include for _, _, include in items) else ["train"]
    datasets = {"rows": ray_split(data.plan, names)}
    loop_config = {"items": [tuple(i) for i in items], "data": data, "settings": settings,
                   "cpu": workers.cpu, "gpu": workers.gpu}
    trainer = xgboost_trainer(_refit_loop, loop_config, workers,
                              RunConfig(name=name, storage_path=workers.storage_path), datasets)
    result = trainer.fit()
    boosters = []
    with result.checkpoint.as_directory() as folder:
        for i in range(len(items)):
            boosters.append(xgb.Booster(model_file=str(Path(folder, f"refit-{i}.ubj"))))
    events.emit("refit.data_parallel", models=len(items), workers=workers.num_workers)
    return boosters


def _refit_loop(cfg: dict[str, Any]) -> None:
    """One Train worker of the refit: its share of the rows, every configuration in turn."""
    import ray.train
    import xgboost as xgb

    from trainables.xgboost_fraud import device_for, xgb_params

    rank = ray.train.get_context().get_world_rank()
    data, settings = cfg["data"], cfg["settings"]
    parts = _parts(data)
    frames = {"train": parts[0], "val": parts[1]}
    matrices: dict[tuple[bool, int], Any] = {}
    boosters = []
    for config, rounds, include_val in cfg["items"]:
        max_bin = int(config.get("max_bin", settings.max_bin))
        key = (bool(include_val), max_bin)
        if key not in matrices:
            parts = [frames["train"], *([frames["val"]] if include_val else [])]
            X = pd.concat([p[0] for p in parts], ignore_index=True)
            y = np.concatenate([p[1] for p in parts])
            matrices[key] = xgb.QuantileDMatrix(X, label=y, max_bin=max_bin, enable_categorical=True)
        params = xgb_params(config, settings, data, max(1, int(cfg["cpu"])), device_for(cfg["gpu"]))
        boosters.append(xgb.train(params, matrices[key], num_boost_round=int(rounds), verbose_eval=False))
    metrics = {"refits": len(boosters), "train_rows": int(len(frames["train"][1]))}
    if rank == 0:
        with tempfile.TemporaryDirectory() as tmp:
            for i, booster in enumerate(boosters):
                booster.save_model(str(Path(tmp, f"refit-{i}.ubj")))
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
    else:
        ray.train.report(metrics)
