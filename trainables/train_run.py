"""Pieces every Ray Train run of a job shares: the trainer, its settings, a worker's rows.

Used by the data-parallel trials (:mod:`trainables.data_parallel`) and the streamed
refit (:mod:`trainables.shard_train`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

__all__ = ["TRAIN_ENV", "Rows", "xgboost_trainer"]

# Ray Train defaults tuned for long runs; a trial is short. The health check also
# paces the end of a run (2 s by default), the preemption watcher is one more actor
# per trial, the metrics callbacks feed a dashboard these jobs do not use.
TRAIN_ENV = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.25", "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
             "RAY_TRAIN_METRICS_ENABLED": "0"}


@dataclass
class Rows:
    """One worker's rows and how its validation scores join the whole split's.

    Attributes:
        train_X, train_y: This worker's training rows.
        val_X, val_y: This worker's validation rows.
        whole_val_y, whole_val_amount: Labels and amounts of the whole validation split,
            in the order :meth:`place` puts scores.
        slots: Positions of this worker's validation rows in the whole split.
    """

    train_X: Any
    train_y: Any
    val_X: Any
    val_y: Any
    whole_val_y: Any
    whole_val_amount: Any
    slots: Any

    def place(self, shard_scores: Any) -> Any:
        """This worker's validation scores at their rows of the full split, zeros elsewhere
        (summed over the workers by one allreduce)."""
        import numpy as np

        out = np.zeros(len(self.whole_val_y), dtype=np.float64)
        out[self.slots] = shard_scores
        return out


def xgboost_trainer(loop: Any, loop_config: dict[str, Any], workers: Any, run_config: Any,
                    datasets: dict[str, Any] | None = None) -> Any:
    """A Ray Train ``XGBoostTrainer`` of ``workers`` running ``loop`` (on ``datasets``, if any)."""
    from ray.train import ScalingConfig
    from ray.train.xgboost import XGBoostTrainer

    for key, value in TRAIN_ENV.items():
        os.environ.setdefault(key, value)
    per_worker = {"CPU": workers.cpu, **({"GPU": workers.gpu} if workers.gpu else {})}
    return XGBoostTrainer(
        loop, train_loop_config=loop_config,
        scaling_config=ScalingConfig(num_workers=workers.num_workers, use_gpu=workers.gpu > 0,
                                     resources_per_worker=per_worker),
        run_config=run_config, datasets=datasets)
