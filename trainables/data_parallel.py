"""Data-parallel trials: each Tune trial is a Ray Train XGBoost run over N workers.

With ``resources.workers`` a trial is no longer one process training on a full copy
of the data. The trial itself is a small *coordinator* (:data:`COORDINATOR_CPU` of a
CPU) that starts a Ray Train ``XGBoostTrainer`` run: N workers, each holding
``resources.cpu`` / ``resources.gpu``, each building its quantised matrix from every
N-th training row and boosting one shared model through XGBoost's collective
(histograms are allreduced, so every worker holds the same booster).

Why each piece is as it is:

* The preprocessing was fitted once on the driver, before any worker: every shard's
  categoricals carry the same levels in the same order, so their codes agree.
* The fraud metrics need the whole validation split (a threshold chosen on one
  shard is not the job's threshold): each worker scores its share of the validation
  rows and one allreduce assembles the full score vector on every worker, so the
  report equals the single-worker evaluation of the same booster on the same split.
* The coordinator is a class ``Trainable``, not a function: Tune calls its
  ``cleanup`` before it drops a stopped trial (ASHA), and that is where the Train
  run is aborted. A Train run whose controller dies unannounced keeps its
  placement group, and with it the workers' CPUs, until the driver exits (Ray
  Train's own cleaner needs the state API, which a cluster without a dashboard, or
  a machine running several Ray instances, does not give it).
* Reports reach Tune through a queue that a small Train controller callback feeds
  (Ray's own ``TuneReportCallback`` does the same but drops the checkpoint). Rank
  0's checkpoint, saved by Train, is copied into Tune's checkpoint, so retries and
  ``Tuner.restore`` resume from the last reported round as single-worker trials do.

* Sharded Parquet input (:class:`~trainables.shards.StreamedDataset`): the trial
  hands Ray Train two Ray Data datasets, the training and the validation rows read
  from the shards and converted on the cluster (``datasets=``); each worker takes
  its share with ``ray.train.get_dataset_shard`` (:mod:`trainables.shard_train`).
  The test rows are dropped in the read: they never reach a trial.

Ray Train's controller-callback interface is private: it is used only in
:class:`_Relay`, checked against ray 2.60.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune

from trainables import events
from trainables.data import Dataset
from trainables.data_ref import DataRef, materialise
from trainables.train_run import TRAIN_ENV, Rows, xgboost_trainer

logger = logging.getLogger(__name__)

__all__ = ["COORDINATOR_CPU", "DataParallelTrial", "Shared", "Workers", "shared"]

#: CPU the trial's coordinator holds (Tune refuses 0); its workers hold the rest.
COORDINATOR_CPU = 0.1

@dataclass(frozen=True)
class Workers:
    """How each data-parallel trial runs.

    Attributes:
        num_workers: Ray Train workers per trial.
        cpu: CPUs per worker (its XGBoost threads: ``max(1, int(cpu))``).
        gpu: GPUs per worker (``device="cuda"`` unless ``TUNING_FORCE_CPU=1``).
        storage_path: Where Ray Train keeps the runs' checkpoints (every node must
            reach it); None is Ray's default.
    """

    num_workers: int
    cpu: float = 1.0
    gpu: float = 0.0
    storage_path: str | None = None

    @property
    def per_trial_cpu(self) -> float:
        """CPUs one trial holds: its workers and its coordinator."""
        return self.num_workers * self.cpu + COORDINATOR_CPU


@dataclass(frozen=True)
class Shared:
    """The job's dataset in the object store, passed by reference.

    Tune resolves the arguments a trainable is bound to; wrapped like this the
    coordinator never deserialises the table, and each worker reads it from its
    node's object store.
    """

    ref: Any


def shared(data: Dataset | DataRef) -> Shared | DataRef:
    """What data-parallel trials are bound to: a :class:`DataRef` as is (each worker
    loads it), a dataset put once in the object store (call on the driver)."""
    if isinstance(data, DataRef) or getattr(data, "streamed", False):
        return data  # a streamed dataset holds labels and a plan, not the table: small
    import ray

    return Shared(ray.put(data))


# ------------------------------------------------------------------ coordinator
class DataParallelTrial(tune.Trainable):
    """A Tune trial that runs (and on restore resumes) one Ray Train XGBoost run."""

    def setup(self, config: dict[str, Any], data: Shared | DataRef = None,
              settings: Any = None, workers: Workers | None = None) -> None:
        self.data, self.settings, self.workers = data, settings, workers
        self.resume: dict[str, bytes] | None = None  # checkpoint files, from load_checkpoint
        self.latest = None  # rank 0's last Train checkpoint
        self.queue = self.thread = self.controller = self.failure = None
        self.placement_groups: list[Any] = []  # the Train run's worker placement group(s)

    def step(self) -> dict[str, Any]:
        if self.thread is None:
            self._start()
        while True:
            kind, payload = self._next()
            if kind == "controller":
                self.controller = payload
            elif kind == "placement_group":
                self.placement_groups.append(payload)
                events.emit("trial.placement_group", trial=self.trial_id, id=payload.id.hex())
            else:
                metrics, checkpoint = payload
                result = dict(metrics)
                if checkpoint is not None:
                    self.latest = checkpoint
                    result["should_checkpoint"] = True
                if result.get("training_done"):
                    result["done"] = True
                return result

    def save_checkpoint(self, checkpoint_dir: str) -> str | None:
        if self.latest is not None:
            self.latest.to_directory(checkpoint_dir)
        return checkpoint_dir

    def load_checkpoint(self, checkpoint: str | None) -> None:
        folder = Path(checkpoint or "")
        if folder.is_dir() and any(folder.iterdir()):
            self.resume = {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        return False  # each trial starts its own Train run; nothing to reuse

    def cleanup(self) -> None:
        # A run still going (a stopped trial's, or a finished one's winding down) is
        # aborted: its controller removes the workers' placement group, and exits.
        if self.thread is not None and self.thread.is_alive() and self.controller is not None:
            import ray

            try:
                ray.get(self.controller.abort.remote(), timeout=60)
            except Exception:  # noqa: BLE001 - abort ends the controller's process; any end will do
                logger.debug("Train controller abort", exc_info=True)
        if self.thread is not None:
            self.thread.join(timeout=60)
        self._remove_placement_groups()

    def _remove_placement_groups(self) -> None:
        """Remove the Train run's placement group if it outlived the run.

        A controller that dies before it removes its own (an abort that timed out under
        load, Tune ending this actor and, with it, the controller it owns) leaves the
        workers' CPUs reserved for the rest of the session: Ray Train's cleaner actor
        notices a dead controller only through the state API, which a Ray without its
        dashboard does not serve. Seen in CI: a leaked 2 x 0.9-CPU group on 2 cores
        starved the refit's Ray Data tasks until the test timed out.
        """
        from ray.util.placement_group import placement_group_table, remove_placement_group

        for pg in self.placement_groups:
            try:
                if placement_group_table(pg).get("state") != "REMOVED":
                    remove_placement_group(pg)
                    logger.info("removed the placement group a Train run left behind (%s)", pg.id.hex())
            except Exception:  # noqa: BLE001 - the cluster may be going away; nothing to keep
                logger.debug("placement group cleanup", exc_info=True)
        self.placement_groups = []

    def _start(self) -> None:
        from ray.util.queue import Queue

        for key, value in TRAIN_ENV.items():
            os.environ.setdefault(key, value)
        self.queue = Queue(actor_options={"num_cpus": 0})
        marker = None
        if self.settings.fail_at_round is not None:
            # Outside any trial folder, which a retry may not share: one fault per trial.
            marker = str(Path(tempfile.gettempdir(), "tuning-faults", "data-parallel", self.trial_name))
            Path(marker).parent.mkdir(parents=True, exist_ok=True)
        loop_config = {"config": dict(self.config), "data": self.data, "settings": self.settings,
                       "gpu": self.workers.gpu, "cpu": self.workers.cpu, "resume": self.resume,
                       "trial_id": self.trial_id, "fault_marker": marker}
        datasets = None
        if getattr(self.data, "streamed", False):
            from trainables.shard_train import trial_datasets

            datasets = trial_datasets(self.data)
        trainer = _trainer(loop_config, self.workers, f"{self.trial_id}-{uuid.uuid4().hex[:6]}", self.queue,
                           datasets)
        self.thread = threading.Thread(target=self._fit, args=(trainer,), daemon=True,
                                       name=f"train-{self.trial_id}")
        self.thread.start()

    def _fit(self, trainer: Any) -> None:
        try:
            trainer.fit()
        except BaseException as exc:  # noqa: BLE001 - step() raises it in Tune (a retry)
            self.failure = exc

    def _next(self) -> tuple[str, Any]:
        """The Train run's next item; its failure once it has ended with nothing left."""
        from ray.util.queue import Empty

        while True:
            try:
                return self.queue.get(timeout=1.0)
            except Empty:
                # The callback's last put returns before the run does: an ended run
                # with an empty queue has nothing more to say.
                if not self.thread.is_alive() and self.queue.empty():
                    raise self.failure or RuntimeError("the Ray Train run ended without a final report")


def _trainer(loop_config: dict[str, Any], workers: Workers, name: str, queue: Any,
             datasets: dict[str, Any] | None = None) -> Any:
    from ray.train import RunConfig

    return xgboost_trainer(_train_loop, loop_config, workers,
                           RunConfig(name=name, storage_path=workers.storage_path, callbacks=[_relay(queue)]),
                           datasets)


def _relay(queue: Any) -> Any:
    """A Train controller callback that hands its handle and every report to ``queue``."""
    from ray.train.v2._internal.execution.callback import (
        ControllerCallback,
        ReportCallback,
        WorkerGroupCallback,
    )

    class _Relay(ControllerCallback, ReportCallback, WorkerGroupCallback):
        def __init__(self, queue: Any) -> None:
            self.queue = queue

        def after_controller_start(self, train_run_context: Any) -> None:
            import ray

            self.queue.put(("controller", ray.get_runtime_context().current_actor))

        def after_worker_group_start(self, worker_group: Any) -> None:
            # For the coordinator's cleanup (DataParallelTrial._remove_placement_groups).
            try:
                pg = worker_group.get_worker_group_state().placement_group_handle.placement_group
            except AttributeError:  # another Ray Train layout: its own cleanup only
                return
            self.queue.put(("placement_group", pg))

        def after_report(self, training_report: Any, metrics: Any) -> None:
            # Every worker reports the same metrics (they share the booster and the scores).
            self.queue.put(("report", (dict(training_report.metrics), training_report.checkpoint)))

    return _Relay(queue)


# ------------------------------------------------------------------ workers
def _train_loop(cfg: dict[str, Any]) -> None:
    """One Ray Train worker: boost on its shard, report the full-validation metrics."""
    import ray
    import ray.train
    import xgboost as xgb

    from trainables.cv import Part, score_round
    from trainables.lockstep import Progress, judge_report, save_checkpoint, scoring_ms
    from trainables.xgboost_fraud import device_for, xgb_params

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    data = cfg["data"]
    data = materialise(ray.get(data.ref) if isinstance(data, Shared) else data)
    settings, config = cfg["settings"], cfg["config"]
    max_bin = int(config.get("max_bin", settings.max_bin))
    device = device_for(cfg["gpu"])
    if getattr(data, "streamed", False):
        from trainables.shard_train import streamed_rows

        rows = streamed_rows(data, world)
    else:
        rows = _object_store_rows(data, rank, world)
    dtrain = xgb.QuantileDMatrix(rows.train_X, label=rows.train_y, max_bin=max_bin, enable_categorical=True)
    dval = xgb.QuantileDMatrix(rows.val_X, ref=dtrain, max_bin=max_bin, enable_categorical=True)
    # Class weight and everything else from the whole training split: one booster.
    params = xgb_params(config, settings, data, max(1, int(cfg["cpu"])), device)
    total = int(config.get("num_boost_round", settings.num_boost_round))
    booster, progress = _resumed(cfg["resume"], params, dtrain)
    done = booster.num_boosted_rounds()
    nodes = [xgb.collective.broadcast(ray.get_runtime_context().get_node_id(), r) for r in range(world)]
    # Each worker's GPU ids in rank order, ";" between workers ("0;0": GPU 0 of each node).
    gpus = [xgb.collective.broadcast(os.environ.get("CUDA_VISIBLE_DEVICES", ""), r) for r in range(world)]
    extra = {"node_id": ",".join(nodes), "restored_from_round": done, "workers": world,
             "cuda_visible_devices": ";".join(gpus) if any(gpus) else ""}
    whole_val = Part(None, None, None, rows.whole_val_y, rows.whole_val_amount)
    # Scoring time is timed on this worker's validation shard (rank 0's is reported).
    own_val = Part(None, dval, None, rows.val_y)
    hooks = _Hooks(cfg, rank, nodes[rank])
    reports = 0
    for i in range(done, total):
        booster.update(dtrain, i)
        rounds = i + 1
        hooks.on_round(rounds)
        if rounds % settings.report_every and rounds < total:
            continue
        scores = xgb.collective.allreduce(rows.place(booster.predict(dval)), xgb.collective.Op.SUM)
        result = score_round([whole_val], [scores], settings)
        result["val_model_size"] = progress.model_size([booster], rounds)
        result["val_scoring_ms"] = scoring_ms([booster], [own_val])
        last = judge_report(result, progress, settings, rounds, total)
        result.update(rounds=rounds, training_done=last, cv_folds=1, **extra)
        reports += 1
        if rank == 0 and (last or reports % settings.checkpoint_every == 0):
            with tempfile.TemporaryDirectory() as tmp:
                save_checkpoint(tmp, [booster], progress)
                ray.train.report(result, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(result)
        hooks.reported(rounds)
        if last:
            return


def _object_store_rows(data: Dataset, rank: int, world: int) -> Rows:
    """Every N-th row of the shipped splits: each worker gets a like share of the rare class."""
    import numpy as np

    return Rows(data.train.X.iloc[rank::world], data.train.y[rank::world], data.val.X.iloc[rank::world],
                data.val.y[rank::world], data.val.y, data.val.amount, np.arange(len(data.val.y))[rank::world])


def _resumed(files: dict[str, bytes] | None, params: dict[str, Any], dtrain: Any) -> tuple[Any, Any]:
    """The booster and progress of a resumed trial (Tune's checkpoint), or fresh ones."""
    import xgboost as xgb

    from trainables.lockstep import Progress, load_checkpoint

    if not files:
        return xgb.Booster(params, [dtrain]), Progress()
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in files.items():
            Path(tmp, name).write_bytes(content)
        (saved,), progress = load_checkpoint(tmp, 1)
    return xgb.Booster(params, [dtrain], model_file=saved), progress


class _Hooks:
    """Rank 0's per-round test hooks: the injected fault and :mod:`trainables.events`."""

    def __init__(self, cfg: dict[str, Any], rank: int, node: str) -> None:
        self.active = rank == 0
        self.trial_id, self.node, self.settings = cfg["trial_id"], node, cfg["settings"]
        self.marker = Path(cfg["fault_marker"]) if cfg["fault_marker"] else None

    def on_round(self, rounds: int) -> None:
        if not self.active:
            return
        if self.marker is not None and rounds == self.settings.fail_at_round and not self.marker.exists():
            self.marker.write_text(str(rounds))
            raise RuntimeError(f"injected fault at round {rounds}")
        if events.enabled():
            events.hold("trial.round", self.trial_id, round=rounds, node=self.node)

    def reported(self, rounds: int) -> None:
        if self.active and events.enabled():
            events.emit("trial.reported", trial=self.trial_id, round=rounds)
