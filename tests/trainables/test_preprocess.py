"""Tests for trainables.preprocess: the conversions fitted on the raw frame and replayed on raw rows."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trainables.preprocess as preprocess
from trainables.data import load_dataset
from trainables.preprocess import DataError, Preprocessor


def _raw(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Raw rows with every kind of column: numbers, text with '?', dates, an id, the label."""
    rng = np.random.default_rng(seed)
    y = np.zeros(rows, dtype=int)
    y[rng.choice(rows, rows // 5, replace=False)] = 1
    days = pd.Timestamp("2021-03-01") + pd.to_timedelta(rng.integers(0, 900, rows), unit="D")
    return pd.DataFrame(
        {
            "claim_id": rng.permutation(rows) + 10_000,
            "amount": np.round(rng.lognormal(3, 1, rows), 2) + y,
            "count": rng.integers(0, 5, rows),
            "channel": rng.choice(["web", "phone", "?", "branch"], rows),
            "opened": days.strftime("%m/%d/%Y"),
            "score[1]": rng.normal(size=rows),
            "label": np.where(y == 1, "Y", "N"),
        }
    )


def test_fit_records_kinds_levels_formats_and_names() -> None:
    pre = Preprocessor.fit(_raw(), ignore=["label"])
    kinds = {c.name: c.kind for c in pre.columns}
    assert kinds == {"claim_id": "numeric", "amount": "numeric", "count": "numeric", "channel": "category",
                     "opened": "date", "score[1]": "numeric"}
    channel = next(c for c in pre.columns if c.name == "channel")
    assert channel.levels == ("branch", "phone", "web")  # sorted, and "?" is missing, not a level
    assert next(c for c in pre.columns if c.name == "opened").date_format == "%m/%d/%Y"
    assert pre.feature_names[-1] == "score_1_" and pre.required_columns[-1] == "score[1]"
    assert pre.categorical == ["channel"] and pre.ignored == ("label",)
    assert [c.integer for c in pre.columns] == [True, False, True, False, False, False]


def test_transform_gives_the_training_dtypes_and_days_since_1970() -> None:
    raw = _raw()
    X = Preprocessor.fit(raw, ignore=["label"]).transform(raw)
    assert list(X.columns) == ["claim_id", "amount", "count", "channel", "opened", "score_1_"]
    assert all(X[c].dtype == np.float32 for c in X.columns if c != "channel")
    assert isinstance(X["channel"].dtype, pd.CategoricalDtype)
    assert X["channel"].isna().sum() == (raw["channel"] == "?").sum()
    expected = (pd.to_datetime(raw["opened"], format="%m/%d/%Y") - pd.Timestamp("1970-01-01")).dt.days
    np.testing.assert_array_equal(X["opened"].to_numpy(), expected.to_numpy(dtype=np.float32))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_missing_tokens_apply_to_csv_and_parquet_alike(tmp_path: Path, fmt: str) -> None:
    raw = _raw()
    raw["note"] = np.where(np.arange(len(raw)) % 3 == 0, " ? ", np.where(np.arange(len(raw)) % 3 == 1, "NULL", "x"))
    raw["zero"] = np.where(np.arange(len(raw)) % 2 == 0, "?", "0")  # numbers, text only because of "?"
    path = tmp_path / f"raw.{fmt}"
    raw.to_csv(path, index=False) if fmt == "csv" else raw.to_parquet(path)
    ds = load_dataset(path=str(path), target="label", drop=["claim_id"], min_positives=5)
    X = pd.concat([ds.train.X, ds.val.X, ds.test.X])
    assert list(X["channel"].cat.categories) == ["branch", "phone", "web"]
    assert X["note"].isna().sum() == 200 and list(X["note"].cat.categories) == ["x"]
    assert X["zero"].dtype == np.float32 and X["zero"].isna().sum() == 150


def test_custom_na_values_replace_the_default_list(tmp_path: Path) -> None:
    raw = _raw()
    raw.to_csv(tmp_path / "raw.csv", index=False)
    ds = load_dataset(path=str(tmp_path / "raw.csv"), target="label", na_values=["branch"], min_positives=5)
    assert list(ds.train.X["channel"].cat.categories) == ["?", "phone", "web"]


def test_date_detection_thresholds() -> None:
    base = pd.date_range("2020-01-01", periods=100, freq="D")
    frame = pd.DataFrame(
        {
            "iso": base.strftime("%Y-%m-%d %H:%M:%S"),
            "dayfirst": base.strftime("%d/%m/%Y"),
            "mostly": list(base.strftime("%Y-%m-%d")[:96]) + ["soon", "later", "n.a.", "tbd"],
            "too_few": list(base.strftime("%Y-%m-%d")[:90]) + ["soon"] * 10,
            "months": np.resize(["Jan", "Feb", "Mar"], 100),
            "yyyymmdd": np.arange(20200101, 20200201).repeat(4)[:100],  # a number, never a date
        }
    )
    kinds = {c.name: (c.kind, c.date_format) for c in Preprocessor.fit(frame).columns}
    assert kinds["iso"] == ("date", "%Y-%m-%d %H:%M:%S")
    assert kinds["dayfirst"] == ("date", "%d/%m/%Y")
    assert kinds["mostly"] == ("date", "%Y-%m-%d")
    assert kinds["too_few"][0] == kinds["months"][0] == "category"
    assert kinds["yyyymmdd"] == ("numeric", None)
    X = Preprocessor.fit(frame).transform(frame)
    assert X["mostly"].isna().sum() == 4 and X["iso"].iloc[0] == 18262.0
    assert X["iso"].iloc[1] - X["iso"].iloc[0] == 1.0


def test_unseen_levels_missing_values_and_integers_at_transform() -> None:
    raw = _raw()
    pre = Preprocessor.fit(raw, ignore=["label"])
    rows = raw.head(4).copy()
    rows["channel"] = ["web", "kiosk", None, "?"]
    rows["amount"] = [1, 2, 3, 4]  # integers where training saw floats
    rows["opened"] = ["01/02/2022", "not a date", None, "2022-01-02"]
    X = pre.transform(rows)
    assert X["channel"].tolist()[0] == "web" and X["channel"].isna().tolist() == [False, True, True, True]
    assert list(X["channel"].cat.categories) == ["branch", "phone", "web"]
    assert X["amount"].dtype == np.float32 and X["amount"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert X["opened"].isna().tolist() == [False, True, True, True]
    text = rows.astype(str)  # numbers as text, as a JSON request may send them
    np.testing.assert_array_equal(pre.transform(text)["count"], X["count"])


def test_target_dropped_and_extra_columns_are_ignored_and_missing_ones_named() -> None:
    raw = _raw()
    pre = Preprocessor.fit(raw, ignore=["label", "claim_id"])
    X = pre.transform(raw.assign(extra=1))
    assert "label" not in X.columns and "claim_id" not in X.columns and "extra" not in X.columns
    pd.testing.assert_frame_equal(pre.transform(raw.drop(columns=["label", "claim_id"])), X)
    with pytest.raises(DataError, match=r"lack required column\(s\) \['count', 'opened'\]") as info:
        pre.transform(raw.drop(columns=["count", "opened"]))
    assert "\n" not in str(info.value)


def test_round_trip_through_json() -> None:
    raw = _raw()
    pre = Preprocessor.fit(raw, ignore=["label"]).without(["claim_id"])
    text = json.dumps(pre.to_dict())
    again = Preprocessor.from_dict(json.loads(text))
    assert again == pre and again.ignored == ("label", "claim_id")
    pd.testing.assert_frame_equal(again.transform(raw), pre.transform(raw))
    bad = {**pre.to_dict(), "version": 99}
    with pytest.raises(DataError, match="version 99"):
        Preprocessor.from_dict(bad)


def test_name_clash_after_sanitising_is_refused() -> None:
    frame = pd.DataFrame({"a[0]": [1.0, 2.0], "a_0_": [3.0, 4.0]})
    with pytest.raises(DataError, match=r"'a_0_'.*clashes"):
        Preprocessor.fit(frame)


def test_dataset_rows_equal_transform_of_the_raw_file(tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    _raw(rows=500).to_csv(path, index=False)
    ds = load_dataset(path=str(path), target="label", min_positives=5)
    assert [f.column for f in ds.flags] == ["claim_id"] and "claim_id" in ds.preprocessor.ignored
    X = ds.preprocessor.transform(pd.read_csv(path))
    for split in (ds.train, ds.val, ds.test):
        pd.testing.assert_frame_equal(X.iloc[split.rows].reset_index(drop=True), split.X)
    assert ds.feature_names == ds.preprocessor.feature_names and ds.categorical == ["channel"]


def test_module_imports_only_numpy_and_pandas() -> None:
    # It travels with the deployed pyfunc model: nothing of ours, no sklearn/xgboost.
    tree = ast.parse(Path(preprocess.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    third_party = {n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party == {"numpy", "pandas"}
