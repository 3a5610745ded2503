"""What complete_parent hands over, without Ray: flags, data set, model, calibration, registry.

A booster is trained directly on the loaded data and passed to
``tuning.tracking.model.hand_over`` against a real SQLite store.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from trainables.calibration import fit_calibrator

from conftest import new_store


def _frame(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """One column of every flag kind, one entity-like column, and real features."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(int)
    order = np.argsort(y, kind="stable")  # label-sorted rows: a per-class counter
    y = y[order]
    per_class = np.concatenate([np.arange((y == 0).sum()), np.arange((y == 1).sum())])
    return pd.DataFrame({
        "row_no": np.arange(n) * 7 + 3,                                # counter
        "class_seq": per_class,                                        # class_counter
        "ref": [f"r{i}" for i in rng.permutation(n)],                  # id (strings)
        "chargeback": np.where(y == 1, rng.uniform(10, 20, n), rng.uniform(0, 5, n)),  # separates
        "region": "eu",                                                # constant
        "customer_id": rng.integers(0, 120, n),                        # entity
        "amount": rng.gamma(2.0, 30.0, n).round(2) + y * 20,
        "channel": rng.choice(["web", "pos", "atm"], n),
        "is_fraud": y,
    })


@pytest.fixture
def job(tmp_path, monkeypatch):
    """(make(data, tracking) -> (spec, data), tracking uri, the file)."""
    from tuning.job.preflight import load_data
    from tuning.spec import parse_spec

    monkeypatch.chdir(tmp_path)  # a SQLite store keeps artifacts under ./mlruns
    path = tmp_path / "txns.csv"
    _frame().to_csv(path, index=False)
    uri = new_store(tmp_path)

    def make(data: dict | None = None, tracking: dict | None = None):
        spec = parse_spec({"name": "handover", "search_space": {"eta": 0.1},
                           "data": {"path": str(path), "target": "is_fraud", **(data or {})},
                           "tracking": {"tracking_uri": uri, **(tracking or {})}})
        return spec, load_data(spec)

    return make, uri, path


def _booster(data):
    return xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
                     xgb.DMatrix(data.train.X, label=data.train.y, enable_categorical=True), 15)


def _parent(uri: str) -> str:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name("handover")
    experiment_id = found.experiment_id if found else client.create_experiment("handover")
    return client.create_run(experiment_id).info.run_id


def test_every_flag_kind_reaches_the_parent_run_tags(job):
    from mlflow.tracking import MlflowClient

    from tuning.tracking.model import hand_over

    make, uri, _ = job
    spec, data = make()
    run_id = _parent(uri)
    hand_over(uri, run_id, spec, data, None, None, {})
    tags = MlflowClient(uri).get_run(run_id).data.tags
    kinds = {k.removeprefix("tuning.leak."): v.split(":")[0] for k, v in tags.items() if k.startswith("tuning.leak.")}
    assert kinds == {"row_no": "counter", "class_seq": "class_counter", "ref": "id", "chargeback": "separates",
                     "region": "constant"}
    assert tags["tuning.leak.chargeback"].startswith("separates: fraud in [")


def test_on_leak_modes_through_the_spec(job):
    from tuning.errors import DataError, SpecError

    make, _, _ = job
    _, dropped = make()
    assert "chargeback" not in dropped.feature_names and "ref" not in dropped.feature_names
    _, warned = make({"on_leak": "warn"})
    assert {"chargeback", "ref", "row_no"} <= set(warned.feature_names)
    with pytest.raises(DataError, match="column 'row_no' flagged as counter.*set on_leak to 'drop' or 'warn'"):
        make({"on_leak": "error"})
    with pytest.raises(SpecError, match="data.on_leak: .*unknown on_leak action 'ignore'; valid: drop, warn, error"):
        make({"on_leak": "ignore"})


def test_na_values_and_group_column_flow_to_the_loader(job):
    make, _, _ = job
    _, data = make({"na_values": ["web"], "group_column": "customer_id"})
    levels = data.preprocessor.to_dict()["columns"]
    channel = next(c for c in levels if c["name"] == "channel")
    assert channel["levels"] == ["atm", "pos"]  # "web" now means missing
    assert "customer_id" not in data.feature_names
    train, test = set(data.train.groups), set(data.test.groups)
    assert not train & test  # one customer, one split


def test_preflight_warns_about_an_entity_column_without_group_column(job, caplog):
    make, _, _ = job
    with caplog.at_level(logging.WARNING, logger="tuning.job.preflight"):
        make()
    warned = [r.getMessage() for r in caplog.records if r.name == "tuning.job.preflight"]
    assert len(warned) == 1 and "column 'customer_id'" in warned[0] and "data.group_column" in warned[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tuning.job.preflight"):
        make({"group_column": "customer_id"})
    assert not [r for r in caplog.records if r.name == "tuning.job.preflight"]


def test_calibrated_probability_registry_version_and_data_set(job):
    import mlflow.pyfunc
    from mlflow.tracking import MlflowClient

    from tuning._mlflow_compat import use_tracking_uri
    from tuning.tracking.model import hand_over

    make, uri, path = job
    spec, data = make(tracking={"register_as": "fraud-model"})
    booster = _booster(data)
    val = booster.predict(xgb.DMatrix(data.val.X, enable_categorical=True))
    calibrator = fit_calibrator(data.val.y, val, "sigmoid")
    run_id = _parent(uri)
    hand_over(uri, run_id, spec, data, booster, 0.4, {"aucpr": 0.75, "recall": 0.5}, calibrator)
    with use_tracking_uri(uri):
        model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
        out = model.predict(pd.read_csv(path))
        assert list(out.columns) == ["score", "decision", "probability"]
        assert out["probability"].mean() == pytest.approx(data.val.y.mean(), abs=0.05)
        registered = mlflow.pyfunc.load_model("models:/fraud-model@challenger").predict(pd.read_csv(path))
    pd.testing.assert_frame_equal(out, registered)
    client = MlflowClient(uri)
    version = client.get_model_version_by_alias("fraud-model", "challenger")
    assert int(version.version) == 1 and version.run_id == run_id
    assert float(version.tags["test_aucpr"]) == 0.75 and float(version.tags["test_recall"]) == 0.5
    # a second job: a new version takes the alias
    spec2, _ = make(tracking={"register_as": "fraud-model", "register_alias": "candidate"})
    hand_over(uri, _parent(uri), spec2, data, booster, 0.4, {"aucpr": 0.8})
    assert int(client.get_model_version_by_alias("fraud-model", "candidate").version) == 2
    assert int(client.get_model_version_by_alias("fraud-model", "challenger").version) == 1
    (dataset_input,) = client.get_run(run_id).inputs.dataset_inputs
    assert dataset_input.dataset.name == "txns.csv"
    assert {t.key: t.value for t in dataset_input.tags}["test_rows"] == str(len(data.test.y))


def test_no_model_without_log_model_but_the_lineage_stays(job):
    from mlflow.tracking import MlflowClient

    from tuning.tracking.model import hand_over

    make, uri, _ = job
    spec, data = make(tracking={"log_model": False})
    run_id = _parent(uri)
    assert hand_over(uri, run_id, spec, data, None, None, {}) == {}
    client = MlflowClient(uri)
    assert client.search_logged_models([client.get_run(run_id).info.experiment_id]) == []
    assert client.get_run(run_id).inputs.dataset_inputs


def test_registry_settings_are_checked_in_the_spec():
    from tuning.errors import SpecError
    from tuning.spec import parse_spec

    base = {"name": "x", "search_space": {"eta": 0.1}}
    with pytest.raises(SpecError, match="register_as needs log_model: true"):
        parse_spec({**base, "tracking": {"register_as": "m", "log_model": False}})
    with pytest.raises(SpecError, match="'latest' is reserved by MLflow"):
        parse_spec({**base, "tracking": {"register_as": "m", "register_alias": "latest"}})
    assert parse_spec(base).tracking.register_alias == "challenger"


def test_a_large_input_is_recorded_from_its_first_rows(job, monkeypatch):
    """MLflow's data set record walks every value: above DATASET_PROFILE_ROWS it describes
    the first rows only, and says how many; the split sizes still count every row."""
    import json

    from mlflow.tracking import MlflowClient

    from tuning.tracking import model as handover

    make, uri, _ = job
    spec, data = make(tracking={"log_model": False})
    monkeypatch.setattr(handover, "DATASET_PROFILE_ROWS", 25)
    run_id = _parent(uri)
    handover.hand_over(uri, run_id, spec, data, None, None, {})
    (dataset_input,) = MlflowClient(uri).get_run(run_id).inputs.dataset_inputs
    tags = {t.key: t.value for t in dataset_input.tags}
    assert json.loads(dataset_input.dataset.profile)["num_rows"] == 25 == int(tags["profiled_rows"])
    assert sum(int(tags[f"{s}_rows"]) for s in ("train", "val", "test")) > 25
