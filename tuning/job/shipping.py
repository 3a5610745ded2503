"""How a job's data and checkpoints reach the cluster.

Data (``data.ship``): ``object_store`` sends the driver's copy through Ray's object
store, one transfer per node; ``path`` sends a :class:`~trainables.data_ref.DataRef`
and each worker process reads ``data.path`` itself (a URI or a shared folder that
every node sees; synthetic data is regenerated from its seed); ``auto`` picks the
object store while the data takes less than ``data.ship_max_mb`` in memory.

Storage (``storage.path``): a URI (``s3://bucket/prefix``, ``gs://...``) is Ray
Tune's ``storage_path`` unchanged, and the job's resume file stays in a local
folder; a local or shared-filesystem path holds both.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from trainables.data_ref import DataRef, dataset_nbytes
from tuning.spec import DEFAULT_STORAGE, Spec

logger = logging.getLogger(__name__)


def is_uri(path: str) -> bool:
    """True for ``scheme://...`` locations, which must never go through ``Path``."""
    return "://" in path


def ship_mode(spec: Spec, data: Any) -> str:
    """``object_store`` or ``path`` for this job (``auto`` decided by the data's size)."""
    mode = spec.data.ship
    if mode != "auto":
        return mode
    size_mb = dataset_nbytes(data) / 2**20
    mode = "object_store" if size_mb < spec.data.ship_max_mb else "path"
    logger.info("data is %.1f MB in memory (data.ship_max_mb %g): trials get it via %s",
                size_mb, spec.data.ship_max_mb,
                "the object store" if mode == "object_store" else "their own read of the data")
    return mode


def data_ref(spec: Spec, fingerprint: str | None) -> Any:
    """What each worker needs to load the job's data itself."""
    kwargs = spec.dataset_kwargs()
    path = kwargs.get("path")
    if path and not is_uri(path):
        # Workers do not run in the driver's folder: a shared path must be absolute.
        kwargs["path"] = str(Path(path).expanduser().resolve())
    return DataRef(kwargs=kwargs, fingerprint=fingerprint)


def trial_data(spec: Spec, data: Any) -> Any:
    """The ``data`` argument every trial receives: the dataset, or a ref to load it.

    A streamed dataset (sharded input, data-parallel trials) goes as it is, whatever
    ``data.ship`` says: it holds the labels and the shard plan, not the table, and
    each worker reads its own rows with Ray Data. A :class:`DataRef` would make every
    worker read the whole table, which is what streaming is there to avoid.
    """
    if getattr(data, "streamed", False):
        if spec.data.ship == "path":
            logger.info("data.ship: path does not apply to sharded input read by the workers "
                        "(Ray Data); the trials get the shard plan")
        return data
    if ship_mode(spec, data) == "object_store":
        return data
    return data_ref(spec, getattr(data, "fingerprint", None))


def state_root(storage_path: str) -> Path:
    """Local folder for the job's own state (``tuning_state.json``).

    A local or shared path holds it next to Ray's experiment; with a URI it stays
    under ``tuning_runs/`` here, and the URI goes to Ray Tune unchanged.
    """
    if is_uri(storage_path):
        return Path(DEFAULT_STORAGE).resolve()
    return Path(storage_path).expanduser().resolve()


def tune_storage(storage_path: str, experiment_dir: Path) -> str:
    """Ray Tune's ``storage_path``: the URI as written, or the local job folder's parent."""
    return storage_path if is_uri(storage_path) else str(experiment_dir.parent)


def tune_experiment_path(storage_path: str, experiment_dir: Path) -> str:
    """Where Ray Tune keeps this experiment (what ``Tuner.restore`` reads)."""
    if is_uri(storage_path):
        return f"{storage_path.rstrip('/')}/{experiment_dir.name}"
    return str(experiment_dir)
