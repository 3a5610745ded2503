"""Data read on the worker node instead of shipped from the driver.

Small data travels best through Ray's object store: the driver reads it once and
every node gets a copy. Large data should not pass through the driver at all:
the trials receive a :class:`DataRef` (the ``load_dataset`` arguments, a few
hundred bytes) and each worker process reads the data itself from a path or URI
that every node can reach (``s3://...``, a shared filesystem), once, then keeps
it for the trials that reuse the process.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from trainables.data import DataError, Dataset, load_dataset

logger = logging.getLogger(__name__)

_CACHE_SIZE = 2
_LOADED: OrderedDict[str, Dataset] = OrderedDict()
LOAD_STATS = {"loads": 0, "hits": 0}


@dataclass(frozen=True)
class DataRef:
    """How to load a job's data on a worker: ``load_dataset(**kwargs)``.

    Attributes:
        kwargs: Arguments of :func:`trainables.data.load_dataset`; a file ``path``
            must be absolute or a URI, since workers do not share the driver's cwd.
        fingerprint: The driver's :attr:`Dataset.fingerprint`; a worker that reads
            different data (another file at the same path) fails instead of
            tuning on it.
    """

    kwargs: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None

    @property
    def key(self) -> str:
        """Cache key: the data spec, not the object (each trial gets its own copy)."""
        return json.dumps(self.kwargs, sort_keys=True, default=str)


def materialise(data: Dataset | DataRef) -> Dataset:
    """The dataset itself: as given, or loaded once per worker process from its ref.

    Raises:
        DataError: If the data read here differs from the driver's.
    """
    if isinstance(data, Dataset):
        return data
    key = data.key
    if key in _LOADED:
        LOAD_STATS["hits"] += 1
        _LOADED.move_to_end(key)
        return _LOADED[key]
    LOAD_STATS["loads"] += 1
    loaded = load_dataset(**data.kwargs)
    if data.fingerprint is not None and loaded.fingerprint != data.fingerprint:
        raise DataError(
            f"data {loaded.source} read on this node (pid {os.getpid()}) has fingerprint "
            f"{loaded.fingerprint}, the driver's has {data.fingerprint}: every node must "
            "see the same file"
        )
    logger.info("loaded %s on this worker (fingerprint %s)", loaded.source, loaded.fingerprint)
    _LOADED[key] = loaded
    while len(_LOADED) > _CACHE_SIZE:
        _LOADED.popitem(last=False)
    return loaded


def dataset_nbytes(data: Dataset) -> int:
    """Memory the splits take (features, labels, amounts), as shipped to each node."""
    total = 0
    for split in (data.train, data.val, data.test):
        total += int(split.X.memory_usage(deep=True, index=False).sum()) + split.y.nbytes
        if split.amount is not None:
            total += split.amount.nbytes
    return total
