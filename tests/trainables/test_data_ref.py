"""Data loaded on the worker: once per process, and only if it matches the driver's."""

from __future__ import annotations

import pytest

from trainables import data_ref
from trainables.data import DataError, load_dataset, make_synthetic
from trainables.data_ref import DataRef, materialise


def test_a_dataset_passes_through():
    ds = load_dataset(rows=1_000, fraud_rate=0.05)
    assert materialise(ds) is ds


def test_a_ref_is_loaded_once_per_process(monkeypatch):
    monkeypatch.setattr(data_ref, "_LOADED", type(data_ref._LOADED)())
    kwargs = {"rows": 1_500, "fraud_rate": 0.05, "seed": 4}
    expected = load_dataset(**kwargs).fingerprint
    before = dict(data_ref.LOAD_STATS)
    first = materialise(DataRef(kwargs=kwargs, fingerprint=expected))
    again = materialise(DataRef(kwargs=dict(kwargs), fingerprint=expected))  # a new copy
    assert again is first and first.fingerprint == expected
    assert data_ref.LOAD_STATS["loads"] - before["loads"] == 1
    assert data_ref.LOAD_STATS["hits"] - before["hits"] == 1


def test_data_that_differs_from_the_drivers_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(data_ref, "_LOADED", type(data_ref._LOADED)())
    path = tmp_path / "tx.parquet"
    make_synthetic(rows=2_000, fraud_rate=0.05, seed=1).to_parquet(path)
    driver = load_dataset(path=str(path), min_positives=5).fingerprint
    make_synthetic(rows=2_000, fraud_rate=0.05, seed=2).to_parquet(path)  # replaced since
    with pytest.raises(DataError, match=f"the driver's has {driver}: every node must see"):
        materialise(DataRef(kwargs={"path": str(path), "min_positives": 5}, fingerprint=driver))
