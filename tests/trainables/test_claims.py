"""The loader on a real file: ../shared/data/insurance_claims.csv (read in place, never copied)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainables.data import Dataset, load_dataset
from trainables.folds import make_folds
from trainables.leaks import entity_candidates
from trainables.preprocess import Preprocessor

CLAIMS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "insurance_claims.csv"

pytestmark = pytest.mark.skipif(not CLAIMS.is_file(), reason=f"{CLAIMS} not available")


@pytest.fixture(scope="module")
def claims() -> Dataset:
    return load_dataset(path=str(CLAIMS), target="fraud_reported")


def test_ids_and_the_empty_column_are_flagged_and_dropped(claims: Dataset) -> None:
    assert [(f.column, f.kind) for f in claims.flags] == [
        ("policy_number", "id"),
        ("incident_location", "id"),
        ("_c39", "constant"),
    ]
    for name in ("policy_number", "incident_location", "_c39", "fraud_reported"):
        assert name not in claims.feature_names
        assert name in claims.preprocessor.ignored
    assert "insured_zip" in claims.feature_names  # 995 of 1,000 distinct: kept
    assert len(claims.feature_names) == 36


def test_dates_become_days_and_question_marks_missing(claims: Dataset) -> None:
    raw = pd.read_csv(CLAIMS)
    X = pd.concat([claims.train.X, claims.val.X, claims.test.X])
    rows = np.concatenate([claims.train.rows, claims.val.rows, claims.test.rows])
    for name in ("policy_bind_date", "incident_date"):
        assert X[name].dtype == np.float32 and not X[name].isna().any()
        days = (pd.to_datetime(raw[name], format="%m/%d/%Y") - pd.Timestamp("1970-01-01")).dt.days
        np.testing.assert_array_equal(X[name].to_numpy(), days.to_numpy(dtype=np.float32)[rows])
    assert X["incident_date"].min() == (pd.Timestamp("2015-01-01") - pd.Timestamp("1970-01-01")).days
    for name, unknown in (("collision_type", 178), ("property_damage", 360), ("police_report_available", 343)):
        assert X[name].isna().sum() == unknown
        assert "?" not in X[name].cat.categories
    assert claims.summary()["train_positives"] + claims.summary()["val_positives"] + claims.summary()[
        "test_positives"] == 247


def test_raw_file_rows_score_to_the_same_features(claims: Dataset) -> None:
    pre = Preprocessor.from_dict(json.loads(json.dumps(claims.preprocessor.to_dict())))  # as deployed
    X = pre.transform(pd.read_csv(CLAIMS))
    for split in (claims.train, claims.val, claims.test):
        pd.testing.assert_frame_equal(X.iloc[split.rows].reset_index(drop=True), split.X)
    # One raw row as a request would carry it: target and dropped columns present, ignored.
    one = pre.transform(pd.read_csv(CLAIMS).iloc[[claims.test.rows[0]]])
    pd.testing.assert_frame_equal(one, claims.test.X.head(1))


def test_no_entity_column_and_folds_over_the_dev_rows(claims: Dataset) -> None:
    assert entity_candidates(pd.read_csv(CLAIMS), exclude=["fraud_reported"]) == {}
    dev = claims.dev()
    folds = make_folds(dev.y, 5, seed=0)
    assert [int(dev.y[v].sum()) for _, v in folds] == [40, 40, 40, 39, 39]
