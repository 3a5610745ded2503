"""Checks made before a job creates anything: data, tracking store, Ray, resources.

Everything that can reject a job is checked here, before the MLflow parent run
and the job folder exist, so bad input leaves nothing half-written behind.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import ray

from trainables.data import Dataset, load_dataset, read_table
from trainables.leaks import entity_candidates
from tuning.errors import JobError
from tuning.spec import Spec
from tuning.tracking.client import check_tracking

__all__ = ["check_reachable", "check_resources", "check_tracking", "connect_ray",
           "STREAMED_TAG", "default_concurrency", "load_data", "streams", "warn_entities"]

logger = logging.getLogger(__name__)

#: Parent-run tag of a job whose driver never held its table (:func:`streams`).
STREAMED_TAG = "tuning.data.streamed"


def load_data(spec: Spec) -> Dataset:
    """Load and split the job's data on the driver (once).

    A data-parallel job (``resources.workers``) on sharded Parquet (a folder, a glob,
    an ``s3://`` prefix) is planned instead (:func:`trainables.shard_plan.plan_shards`):
    streaming passes over the shards, never the whole table in the driver's memory;
    the workers read their rows with Ray Data.

    Raises:
        DataError: one line naming the file and the column.
    """
    if streams(spec):
        from trainables.shard_plan import plan_shards

        data = plan_shards(**spec.dataset_kwargs())
        warn_entities(spec, data.entities)
        return data
    data = load_dataset(**spec.dataset_kwargs())
    warn_entities(spec)
    return data


def streams(spec: Spec) -> bool:
    """True when the job's data is planned over shards rather than read (see :func:`load_data`)."""
    return spec.streams_data()


def warn_entities(spec: Spec, found: dict[str, str] | None = None) -> dict[str, str]:
    """Warn about entity-like columns (customer, card) when no ``data.group_column`` is set.

    Rows of one customer on both sides of the split let a model recognise the
    customer instead of the fraud, and the test metrics overstate it. The file is
    read a second time here (the loader keeps no raw frame); synthetic data has no
    entities. ``found``: candidates already computed (a streamed job's, on its row
    sample). Returns the candidates (column -> why).
    """
    d = spec.data
    if d.source != "file" or d.group_column is not None:
        return {}
    if found is None:
        exclude = [d.target, *d.drop, *(c for c in (d.time_column,) if c)]
        found = entity_candidates(read_table(str(d.path), d.format), exclude=exclude, na_values=d.na_values)
    for column, why in found.items():
        logger.warning("data.group_column is not set, but column %r of %s looks like an entity (%s): rows of "
                       "one entity may sit in both training and test and overstate the test metrics; set "
                       "data.group_column: %s, or add it to data.drop", column, d.path, why, column)
    return found


def connect_ray(address: str | None) -> bool:
    """Start a local Ray or connect to ``address``; True when this call started it."""
    if ray.is_initialized():
        return False
    if address and address != "auto":
        check_reachable(address)
    try:
        # No --address means a fresh local Ray, never one that happens to run here.
        ray.init(address=address or "local", include_dashboard=False if address is None else None,
                 log_to_driver=True, logging_level=logging.WARNING)
    except Exception as err:  # noqa: BLE001 - connection errors come in many types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise JobError(f"--address {address}: cannot connect to a Ray cluster ({first[:200]})") from None
    return True


def check_reachable(address: str) -> None:
    """A quick TCP check: ``ray.init`` retries an unreachable address for minutes."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise JobError(f"--address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as err:
        raise JobError(f"--address {address}: cannot connect to a Ray cluster "
                       f"({err.strerror or err})") from None


def check_resources(spec: Spec, autoscaling: bool = False) -> None:
    """Reject a per-trial request the cluster can never satisfy.

    On an existing cluster (``--address``) the autoscaler may add the nodes the
    trials ask for (GPU workers start at 0 in ``cluster.yaml``): warn instead.
    """
    total = ray.cluster_resources()
    problems = []
    if spec.resources.gpu > 0 and total.get("GPU", 0) <= 0:
        problems.append(f"resources.gpu: {spec.resources.gpu} GPU per trial requested, "
                        "but the Ray cluster has no GPU")
    per_node_cpu = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]),
                       default=0)
    if spec.resources.cpu > per_node_cpu:
        problems.append(f"resources.cpu: {spec.resources.cpu} CPUs per trial requested, but "
                        f"the largest Ray node has {per_node_cpu:g}")
    if problems and not autoscaling:
        raise JobError(problems[0])
    for problem in problems:
        logger.warning("%s now; waiting for the autoscaler to add such a node", problem)


def default_concurrency(spec: Spec) -> int:
    """Trials that fit side by side on the cluster, unless the spec caps it."""
    if spec.budget.max_concurrent:
        return spec.budget.max_concurrent
    total = ray.cluster_resources()
    fit = int(total.get("CPU", 1) // spec.resources.cpu)
    if spec.resources.gpu > 0:
        fit = min(fit, int(total.get("GPU", 0) // spec.resources.gpu))
    return max(1, fit)
