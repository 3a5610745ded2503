"""The deployable model without MLflow in the way: FraudModel loaded from its two files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from trainables.calibration import fit_calibrator
from trainables.data import load_dataset
from trainables.preprocess import DataError
from trainables.serving import FraudModel, reasons, serving_config


def _raw(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 50.0, n).round(2)
    channel = rng.choice(["web", "pos", "atm", "?"], n)
    age = rng.integers(18, 90, n)
    logit = -3 + 0.01 * amount + (channel == "web") * 1.5 - 0.02 * (age - 50)
    fraud = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"txn_id": [f"t{i:05d}" for i in range(n)], "amount": amount, "channel": channel,
                         "age": age, "opened": pd.Series(pd.date_range("2020-01-01", periods=n, freq="h"))
                         .dt.strftime("%Y-%m-%d"), "label": np.where(fraud, "Y", "N")})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(model, dataset, raw frame, booster) for a small file with a text, an int and a date column."""
    tmp = tmp_path_factory.mktemp("serving")
    raw = _raw()
    path = tmp / "txns.csv"
    raw.to_csv(path, index=False)
    data = load_dataset(path=str(path), target="label")
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
                        xgb.DMatrix(data.train.X, label=data.train.y, enable_categorical=True), 30)
    booster.save_model(str(tmp / "b.ubj"))
    val = booster.predict(xgb.DMatrix(data.val.X, enable_categorical=True))
    config = serving_config(data.preprocessor, 0.3, fit_calibrator(data.val.y, val, "isotonic"), "label")
    (tmp / "serving.json").write_text(json.dumps(config))
    return FraudModel().load(tmp / "b.ubj", tmp / "serving.json"), data, pd.read_csv(path), booster


def test_raw_rows_score_as_the_training_features(served):
    model, data, raw, booster = served
    out = model.predict(None, raw.iloc[data.test.rows])
    expected = booster.predict(xgb.DMatrix(data.test.X, enable_categorical=True))
    np.testing.assert_allclose(out["score"], expected, atol=1e-7)
    assert list(out.index) == list(data.test.rows)  # the input's index is kept
    assert list(out.columns) == ["score", "decision", "probability"]
    assert ((out["decision"] == 1) == (out["score"] >= 0.3)).all()
    assert out["probability"].between(0, 1).all()


def test_ignored_columns_may_be_absent_and_extra_ones_present(served):
    model, _, raw, _ = served
    rows = raw.head(50)
    full = model.predict(None, rows)
    lean = model.predict(None, rows.drop(columns=["label", "txn_id"]).assign(unknown_column=1))
    pd.testing.assert_frame_equal(full, lean)


def test_a_missing_required_column_is_one_line_naming_it(served):
    model, _, raw, _ = served
    with pytest.raises(DataError, match=r"required column\(s\) \['channel'\]") as err:
        model.predict(None, raw.head(5).drop(columns=["channel"]))
    assert "\n" not in str(err.value)


def test_an_unseen_level_and_a_missing_token_score_as_missing(served):
    model, _, raw, _ = served
    row = raw.head(1)
    unseen = model.predict(None, row.assign(channel="teleport"))["score"].iloc[0]
    token = model.predict(None, row.assign(channel="?"))["score"].iloc[0]
    nan = model.predict(None, row.assign(channel=np.nan))["score"].iloc[0]
    assert unseen == token == nan


def test_integers_as_floats_or_text_score_the_same(served):
    model, _, raw, _ = served
    rows = raw.head(30)
    base = model.predict(None, rows)["score"]
    as_float = model.predict(None, rows.assign(age=rows["age"].astype(float)))["score"]
    as_text = model.predict(None, rows.assign(age=rows["age"].astype(str)))["score"]
    pd.testing.assert_series_equal(base, as_float)
    pd.testing.assert_series_equal(base, as_text)


def test_reasons_are_the_largest_contributions_that_add_up_to_the_margin(served):
    model, data, raw, booster = served
    rows = raw.iloc[data.test.rows[:40]]
    out = model.predict(None, rows, params={"explain": 2})
    assert list(out.columns)[-4:] == ["reason_1", "contribution_1", "reason_2", "contribution_2"]
    assert set(out["reason_1"]) <= set(data.preprocessor.required_columns)
    assert (out["contribution_1"].abs() >= out["contribution_2"].abs()).all()
    everything = model.predict(None, rows, params={"explain": 99})  # capped at the feature count
    k = len(data.feature_names)
    total = sum(everything[f"contribution_{i}"] for i in range(1, k + 1))
    matrix = xgb.DMatrix(data.test.X.head(40), enable_categorical=True)
    bias = booster.predict(matrix, pred_contribs=True)[:, -1]
    np.testing.assert_allclose(total.to_numpy() + bias, booster.predict(matrix, output_margin=True), atol=1e-4)
    with pytest.raises(ValueError, match="explain must be >= 0"):
        model.predict(None, rows, params={"explain": -1})


def test_reasons_ties_go_to_the_earlier_feature():
    out = reasons(np.array([[0.5, -0.5, 0.1]]), ["a", "b", "c"], 3)
    assert [out[f"reason_{i}"][0] for i in (1, 2, 3)] == ["a", "b", "c"]
    assert out["contribution_2"][0] == -0.5


def test_serving_config_is_json_and_skips_an_identity_calibrator(served):
    _, data, _, _ = served
    config = serving_config(data.preprocessor, None, {"method": "none"})
    assert json.loads(json.dumps(config)) == config
    assert config["threshold"] == 0.5 and config["calibrator"] is None
