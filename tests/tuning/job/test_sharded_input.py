"""A spec whose data.path is a folder of Parquet shards passes the driver's preflight."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from tuning.job.preflight import load_data
from tuning.job.shipping import trial_data
from tuning.spec import parse_spec

from conftest import full_reads


def _customer_shards(folder, rows: int, seed: int) -> None:
    """Three Parquet shards of ``rows`` transactions with an entity-like ``customer_id``."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"amount": rng.gamma(2.0, 50.0, rows), "customer_id": rng.integers(0, 150, rows),
                          "Class": (rng.random(rows) < 0.05).astype(int)})
    folder.mkdir()
    for i in range(3):
        frame.iloc[i::3].to_parquet(folder / f"part-{i}.parquet")


def test_a_shard_folder_spec_loads_and_gets_the_entity_check(tmp_path, caplog):
    rows = 1200
    _customer_shards(tmp_path / "shards", rows, seed=0)
    spec = parse_spec({"name": "shards", "data": {"path": str(tmp_path / "shards"), "min_positives": 3},
                       "search_space": {"eta": 0.1}})
    assert spec.data.source == "file"
    with caplog.at_level(logging.WARNING):
        data = load_data(spec)
    assert sum(len(s.y) for s in (data.train, data.val, data.test)) == rows
    assert "customer_id" in caplog.text  # the second read (entity check) reads the shards too


def test_a_data_parallel_shard_job_is_planned_without_reading_the_table(tmp_path, caplog, job_events):
    from tuning.job.preflight import streams

    rows = 1500
    _customer_shards(tmp_path / "shards", rows, seed=1)
    spec = parse_spec({"name": "shards", "data": {"path": str(tmp_path / "shards"), "min_positives": 3},
                       "search_space": {"eta": 0.1}, "resources": {"workers": 2}, "evaluation": {"cv": 1}})
    assert streams(spec) and not streams(parse_spec({**spec.model_dump(mode="json"), "resources": {"cpu": 1}}))
    with caplog.at_level(logging.WARNING):
        data = load_data(spec)
    assert full_reads(job_events) == 0 and data.streamed
    # Whatever data.ship says, the trials get the plan: a DataRef would make every
    # worker read the whole table.
    for ship in ("path", "auto", "object_store"):
        shipped = parse_spec({**spec.model_dump(mode="json"),
                              "data": {**spec.model_dump(mode="json")["data"], "ship": ship}})
        assert trial_data(shipped, data) is data, ship
    assert sum(len(s.y) for s in (data.train, data.val, data.test)) == rows
    assert "customer_id" in caplog.text  # the entity check ran on the pass's sample
