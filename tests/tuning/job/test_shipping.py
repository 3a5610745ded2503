"""How data and checkpoints reach the cluster: data.ship and storage URIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainables.data import Dataset, load_dataset, make_synthetic
from trainables.data_ref import DataRef, dataset_nbytes
from tuning.spec import SpecError, parse_spec
from tuning.job.shipping import (
    data_ref,
    ship_mode,
    state_root,
    trial_data,
    tune_experiment_path,
    tune_storage,
)

SPACE = {"eta": {"type": "uniform", "low": 0.1, "high": 0.3}}


def spec_with(data: dict, **sections) -> object:
    return parse_spec({"name": "ship", "data": data, "search_space": SPACE, **sections})


@pytest.fixture(scope="module")
def small() -> Dataset:
    return load_dataset(rows=2_000, fraud_rate=0.05, seed=0)


def test_auto_ships_small_data_through_the_object_store(small):
    assert dataset_nbytes(small) < 2**20
    spec = spec_with({"rows": 2_000, "fraud_rate": 0.05})
    assert ship_mode(spec, small) == "object_store"
    assert trial_data(spec, small) is small


def test_auto_lets_nodes_read_data_above_the_threshold(small):
    spec = spec_with({"rows": 2_000, "fraud_rate": 0.05, "ship_max_mb": 0.01})
    ref = trial_data(spec, small)
    assert isinstance(ref, DataRef)
    assert ref.fingerprint == small.fingerprint
    assert ref.kwargs["rows"] == 2_000 and "ship" not in ref.kwargs


def test_explicit_modes_override_the_size(small):
    big = {"rows": 2_000, "fraud_rate": 0.05, "ship_max_mb": 0.01}
    assert ship_mode(spec_with({**big, "ship": "object_store"}), small) == "object_store"
    assert ship_mode(spec_with({"rows": 2_000, "ship": "path"}), small) == "path"


def test_unknown_ship_mode_names_the_field():
    with pytest.raises(SpecError, match="data.ship"):
        spec_with({"ship": "nfs"})


def test_loader_kwargs_leave_out_the_shipping_keys():
    kwargs = spec_with({"ship": "path", "ship_max_mb": 5}).data.loader_kwargs()
    assert "ship" not in kwargs and "ship_max_mb" not in kwargs
    load_dataset(**{**kwargs, "rows": 2_000, "fraud_rate": 0.05})  # all accepted


def test_a_relative_data_path_becomes_absolute_and_a_uri_stays_as_written(in_tmp):
    spec = spec_with({"path": "data/tx.parquet", "ship": "path"},
                     objective={"amount_column": "Amount"})
    ref = data_ref(spec, "abc")
    assert ref.kwargs["path"] == str(in_tmp / "data" / "tx.parquet")
    assert ref.kwargs["amount_column"] == "Amount"
    uri = "s3://bucket/fraud/tx.parquet"
    assert data_ref(spec_with({"path": uri, "ship": "path"}), None).kwargs["path"] == uri


def test_storage_uri_goes_to_tune_unchanged_and_job_state_stays_local(in_tmp):
    uri = "s3://bucket/fraud-tuning/"
    job = state_root(uri) / "fraud-20250101-000000"
    assert job.parent == in_tmp / "tuning_runs"
    assert tune_storage(uri, job) == uri
    assert tune_experiment_path(uri, job) == "s3://bucket/fraud-tuning/fraud-20250101-000000"


def test_local_storage_holds_both_the_experiment_and_its_state(in_tmp):
    job = state_root("runs") / "j-1"
    assert job == in_tmp / "runs" / "j-1"
    assert tune_storage("runs", job) == str(in_tmp / "runs")
    assert tune_experiment_path("runs", job) == str(job)
    assert state_root("/mnt/nfs/tuning") == Path("/mnt/nfs/tuning")


def test_a_file_uri_is_read_through_pandas(tmp_path):
    path = tmp_path / "tx.parquet"
    make_synthetic(rows=2_000, fraud_rate=0.05, seed=2).to_parquet(path)
    from_uri = load_dataset(path=f"file://{path}", min_positives=5)
    assert from_uri.fingerprint == load_dataset(path=str(path), min_positives=5).fingerprint
