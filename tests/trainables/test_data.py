"""Tests for trainables.data: the synthetic generator, the file loader and the splits."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainables.data import DataError, Dataset, load_dataset, make_synthetic, read_table


def _frame(rows: int = 400, positives: int = 60, seed: int = 0) -> pd.DataFrame:
    """A small fraud-like frame: two numeric features, positives spread over the rows."""
    rng = np.random.default_rng(seed)
    y = np.zeros(rows, dtype=int)
    y[rng.choice(rows, positives, replace=False)] = 1
    return pd.DataFrame(
        {
            "f1": rng.normal(size=rows) + y,
            "f2": rng.normal(size=rows),
            "Class": y,
        }
    )


def _write_csv(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


# --- synthetic -------------------------------------------------------------------


def test_synthetic_same_seed_gives_identical_frame() -> None:
    a = make_synthetic(rows=5_000, seed=3)
    pd.testing.assert_frame_equal(a, make_synthetic(rows=5_000, seed=3))
    assert not a.equals(make_synthetic(rows=5_000, seed=4))


@pytest.mark.parametrize(
    ("rows", "fraud_rate", "expected"),
    [(100_000, 0.002, 200), (1_234, 0.01, 12), (100, 0.001, 1), (50, 0.5, 25)],
)
def test_synthetic_has_exact_fraud_count(rows: int, fraud_rate: float, expected: int) -> None:
    frame = make_synthetic(rows=rows, fraud_rate=fraud_rate)
    assert len(frame) == rows
    assert int(frame["Class"].sum()) == expected


@pytest.mark.parametrize("n_features", [3, 10, 30])
def test_synthetic_columns_look_like_kaggle(n_features: int) -> None:
    frame = make_synthetic(rows=3_000, n_features=n_features, fraud_rate=0.01)
    v_cols = [f"V{i}" for i in range(1, n_features - 1)]
    assert list(frame.columns) == ["Time", *v_cols, "Amount", "Class"]
    assert frame["Time"].is_monotonic_increasing
    assert 0 <= frame["Time"].min() and frame["Time"].max() <= 2 * 86_400
    assert (frame["Amount"] > 0).all()
    assert set(frame["Class"].unique()) == {0, 1}
    assert not frame.isna().any().any()


def test_synthetic_features_are_correlated_and_fraud_amounts_differ() -> None:
    frame = make_synthetic(rows=50_000, fraud_rate=0.02)
    corr = frame[[f"V{i}" for i in range(1, 29)]].corr().to_numpy()
    off_diagonal = np.abs(corr[~np.eye(28, dtype=bool)])
    assert off_diagonal.max() > 0.3  # PCA-like features, not independent noise
    medians = frame.groupby("Class")["Amount"].median()
    assert medians[1] != pytest.approx(medians[0], rel=0.2)


@pytest.mark.parametrize(
    "kwargs", [{"rows": 1}, {"fraud_rate": 0.0}, {"fraud_rate": 1.0}, {"n_features": 2}, {"rows": 2, "fraud_rate": 0.9}]
)
def test_synthetic_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        make_synthetic(**kwargs)


def test_load_synthetic_dataset(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="trainables.data"):
        ds = load_dataset(rows=20_000, fraud_rate=0.01, seed=1)
    assert not caplog.records  # no single feature gives fraud away
    summary = ds.summary()
    assert summary["train_rows"] + summary["val_rows"] + summary["test_rows"] == 20_000
    assert (summary["train_positives"], summary["val_positives"], summary["test_positives"]) == (120, 40, 40)
    assert summary["n_features"] == 30 and summary["fraud_rate"] == pytest.approx(0.01)
    assert ds.source == "synthetic" and ds.categorical == []
    assert "Time" in ds.feature_names and "Amount" in ds.feature_names and "Class" not in ds.feature_names
    for split in (ds.train, ds.val, ds.test):
        assert list(split.X.columns) == ds.feature_names
        assert (split.X.dtypes == np.float32).all()
        assert split.y.dtype == np.int8
        np.testing.assert_array_equal(split.amount, split.X["Amount"].to_numpy(dtype=np.float64).round(2))


def test_fingerprint_is_stable_and_tracks_the_data() -> None:
    a = load_dataset(rows=5_000, fraud_rate=0.01, seed=0)
    assert a.fingerprint == load_dataset(rows=5_000, fraud_rate=0.01, seed=0).fingerprint
    assert a.fingerprint != load_dataset(rows=5_000, fraud_rate=0.01, seed=1).fingerprint
    assert a.fingerprint != load_dataset(rows=5_000, fraud_rate=0.01, seed=0, val_fraction=0.3).fingerprint
    assert len(a.fingerprint) == 12


def test_dataset_survives_pickling() -> None:
    # The driver ships the Dataset to workers through the Ray object store.
    ds = load_dataset(rows=2_000, fraud_rate=0.05)
    copy = pickle.loads(pickle.dumps(ds))
    assert isinstance(copy, Dataset) and copy.fingerprint == ds.fingerprint
    pd.testing.assert_frame_equal(copy.val.X, ds.val.X)


# --- splits ----------------------------------------------------------------------


def test_stratified_split_is_disjoint_complete_and_seeded(tmp_path: Path) -> None:
    frame = _frame()
    frame["row"] = np.arange(len(frame), dtype=float)
    path = _write_csv(tmp_path, frame)
    ds = load_dataset(path=path, seed=5, val_fraction=0.25, test_fraction=0.15, min_positives=5)
    rows = [set(s.X["row"]) for s in (ds.train, ds.val, ds.test)]
    assert set.union(*rows) == set(range(400)) and sum(map(len, rows)) == 400
    assert [int(s.y.sum()) for s in (ds.train, ds.val, ds.test)] == [36, 15, 9]
    again = load_dataset(path=path, seed=5, val_fraction=0.25, test_fraction=0.15, min_positives=5)
    pd.testing.assert_frame_equal(ds.val.X, again.val.X)
    other = load_dataset(path=path, seed=6, val_fraction=0.25, test_fraction=0.15, min_positives=5)
    assert set(other.val.X["row"]) != rows[1]


def test_time_split_orders_train_val_test(tmp_path: Path) -> None:
    frame = _frame(seed=2).sample(frac=1.0, random_state=0)  # file rows out of time order
    frame["ts"] = np.random.default_rng(1).permutation(len(frame)) * 60.0
    frame["row"] = frame["ts"]  # a copy of the time that stays a feature, to check the ordering
    ds = load_dataset(path=_write_csv(tmp_path, frame), split="time", time_column="ts", min_positives=1)
    assert "ts" not in ds.feature_names  # absolute time is not a feature for file data
    train, val, test = (s.X["row"].to_numpy() for s in (ds.train, ds.val, ds.test))
    assert (len(train), len(val), len(test)) == (240, 80, 80)
    assert train.max() <= val.min() and val.max() <= test.min()
    assert test.min() >= train.max()


def test_time_split_parses_date_strings(tmp_path: Path) -> None:
    frame = _frame(rows=300, positives=90)
    stamps = pd.date_range("2024-01-01", periods=300, freq="h")
    frame["when"] = stamps[::-1].strftime("%Y-%m-%d %H:%M:%S")
    frame["hour"] = np.arange(300)[::-1].astype(float)
    ds = load_dataset(path=_write_csv(tmp_path, frame), split="time", time_column="when")
    assert ds.train.X["hour"].max() < ds.test.X["hour"].min()


@pytest.mark.parametrize(
    ("val_fraction", "test_fraction"), [(0.0, 0.2), (0.2, 0.0), (0.5, 0.5), (-0.1, 0.2), (0.7, 0.4)]
)
def test_bad_fractions_are_rejected(val_fraction: float, test_fraction: float) -> None:
    with pytest.raises(DataError, match="val_fraction"):
        load_dataset(rows=1_000, val_fraction=val_fraction, test_fraction=test_fraction)


def test_time_split_needs_time_column() -> None:
    with pytest.raises(DataError, match="time_column"):
        load_dataset(rows=1_000, split="time")


@pytest.mark.parametrize(("kwargs", "word"), [({"source": "s3"}, "source"), ({"split": "kfold"}, "split")])
def test_unknown_source_or_split_lists_valid_ones(kwargs: dict, word: str) -> None:
    with pytest.raises(DataError, match=f"unknown (data )?{word}.*valid"):
        load_dataset(rows=1_000, **kwargs)


def test_too_few_positives_names_split_and_count(tmp_path: Path) -> None:
    path = _write_csv(tmp_path, _frame(rows=400, positives=30))
    with pytest.raises(DataError, match=r"val split of .*data\.csv has 6 positives, fewer than min_positives=10"):
        load_dataset(path=path)


# --- file quirks -----------------------------------------------------------------


def test_csv_with_categories_missing_values_id_and_spaces(tmp_path: Path) -> None:
    frame = _frame()
    frame.insert(0, "txn id", [f"T{i:05d}" for i in range(len(frame))])
    frame["merchant type"] = np.random.default_rng(0).choice(["grocery", "online", "travel"], len(frame))
    frame.loc[::7, "f2"] = np.nan
    frame.loc[::11, "merchant type"] = None
    frame = frame.rename(columns={"f1": "score[0]<x"})
    ds = load_dataset(path=_write_csv(tmp_path, frame), drop=["txn id"])
    assert ds.feature_names == ["score_0__x", "f2", "merchant type"]
    assert ds.categorical == ["merchant type"]
    cats = [list(s.X["merchant type"].cat.categories) for s in (ds.train, ds.val, ds.test)]
    assert cats[0] == cats[1] == cats[2] == ["grocery", "online", "travel"]
    all_x = pd.concat([ds.train.X, ds.val.X, ds.test.X])
    assert all_x["f2"].isna().sum() == len(range(0, 400, 7))
    assert all_x["merchant type"].isna().sum() == len(range(0, 400, 11))
    assert ds.train.amount is None and ds.source.endswith("data.csv")


@pytest.mark.parametrize(
    ("pos", "neg"),
    [("Y", "N"), ("true", "false"), ("TRUE", "False"), (" yes", "no "), ("t", "f"), ("fraud", "legit"), ("1.0", "0.0")],
)
def test_recognised_label_spellings(tmp_path: Path, pos: str, neg: str) -> None:
    frame = _frame()
    labels = np.where(frame["Class"] == 1, pos, neg)
    frame["Class"] = labels
    ds = load_dataset(path=_write_csv(tmp_path, frame))
    assert sum(int(s.y.sum()) for s in (ds.train, ds.val, ds.test)) == 60


@pytest.mark.parametrize(
    ("pos", "neg", "positive_label"),
    [("fraud", "legit", "FRAUD"), ("chargeback", "ok", "chargeback"), (2, 1, 2), ("true", "false", 1), (1, 0, True)],
)
def test_positive_label(tmp_path: Path, pos: object, neg: object, positive_label: object) -> None:
    frame = _frame()
    frame["Class"] = np.where(frame["Class"] == 1, pos, neg)
    ds = load_dataset(path=_write_csv(tmp_path, frame), positive_label=positive_label)
    assert sum(int(s.y.sum()) for s in (ds.train, ds.val, ds.test)) == 60


def test_boolean_and_float_labels_from_parquet(tmp_path: Path) -> None:
    frame = _frame()
    for labels in (frame["Class"].astype(bool), frame["Class"].astype(float)):
        path = tmp_path / "labels.parquet"
        frame.assign(Class=labels).to_parquet(path)
        assert load_dataset(path=str(path)).summary()["train_positives"] == 36


def test_parquet_round_trip_matches_csv(tmp_path: Path) -> None:
    frame = _frame()
    frame["channel"] = np.where(np.arange(400) % 3 == 0, "web", "pos")
    frame["Amount"] = np.round(np.random.default_rng(0).lognormal(3, 1, 400), 2)
    frame.to_parquet(tmp_path / "data.parquet")
    pd.testing.assert_frame_equal(read_table(tmp_path / "data.parquet"), frame)
    from_parquet = load_dataset(path=str(tmp_path / "data.parquet"), amount_column="Amount")
    from_csv = load_dataset(path=_write_csv(tmp_path, frame), amount_column="Amount")
    assert from_parquet.fingerprint == from_csv.fingerprint
    assert from_parquet.categorical == ["channel"] and "Amount" in from_parquet.feature_names
    np.testing.assert_allclose(from_parquet.test.amount, from_parquet.test.X["Amount"], rtol=1e-6)


def test_format_argument_overrides_suffix(tmp_path: Path) -> None:
    path = tmp_path / "export.dat"
    _frame().to_parquet(path)
    assert load_dataset(path=str(path), format="parquet").summary()["n_features"] == 2
    with pytest.raises(DataError, match=r"export\.dat"):
        read_table(path)


def test_infinite_feature_values_become_missing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frame = _frame()
    frame.loc[:4, "f2"] = np.inf
    with caplog.at_level(logging.WARNING, logger="trainables.data"):
        ds = load_dataset(path=_write_csv(tmp_path, frame))
    assert "'f2'" in caplog.text and "5 infinite" in caplog.text
    assert not any(np.isinf(s.X["f2"]).any() for s in (ds.train, ds.val, ds.test))


def test_leaking_feature_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frame = _frame().sort_values("Class", kind="stable")
    frame["row_number"] = np.arange(len(frame))  # sorted by label: the counter gives fraud away
    with caplog.at_level(logging.WARNING, logger="trainables.data"):
        load_dataset(path=_write_csv(tmp_path, frame))
    assert "row_number" in caplog.text and "f1" not in caplog.text


# --- errors ----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv does not exist"):
        load_dataset(path=str(tmp_path / "nope.csv"))


@pytest.mark.parametrize(("content", "reason"), [("", "is empty"), ("a,b,Class\n", "has no rows")])
def test_empty_csv(tmp_path: Path, content: str, reason: str) -> None:
    (tmp_path / "empty.csv").write_text(content)
    with pytest.raises(DataError, match=rf"empty\.csv {reason}"):
        load_dataset(path=str(tmp_path / "empty.csv"))


def test_unreadable_parquet(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_bytes(b"this is not parquet \x00\x01\x02" * 10)
    with pytest.raises(DataError, match=r"cannot read data file .*x\.parquet as parquet") as info:
        load_dataset(path=str(tmp_path / "x.parquet"))
    assert "\n" not in str(info.value)


def test_unknown_suffix_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data\.xlsx"):
        read_table(tmp_path / "data.xlsx")
    with pytest.raises(DataError, match="needs a path"):
        load_dataset(source="file")


def test_missing_target_lists_columns(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"target column 'label' not found in .*data\.csv.*'f1', 'f2', 'Class'"):
        load_dataset(path=_write_csv(tmp_path, _frame()), target="label")


@pytest.mark.parametrize(
    ("column", "message"), [("drop", r"drop columns \['ghost'\] not found"), ("time_column", "time_column 'ghost'")]
)
def test_unknown_columns(tmp_path: Path, column: str, message: str) -> None:
    value = ["ghost"] if column == "drop" else "ghost"
    with pytest.raises(DataError, match=message):
        load_dataset(path=_write_csv(tmp_path, _frame()), **{column: value})


@pytest.mark.parametrize("bad", [np.nan, np.inf, ""])
def test_missing_labels_are_counted(tmp_path: Path, bad: object) -> None:
    frame = _frame().astype({"Class": object})
    frame.loc[[3, 8, 13], "Class"] = bad
    with pytest.raises(DataError, match=r"target column 'Class' in .*data\.csv has 3 rows with missing"):
        load_dataset(path=_write_csv(tmp_path, frame))


def test_constant_target(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"target column 'Class' in .*data\.csv is constant"):
        load_dataset(path=_write_csv(tmp_path, _frame().assign(Class=0)))


def test_more_than_two_classes_are_listed(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[:9, "Class"] = 2
    with pytest.raises(DataError, match=r"'Class'.*more than two classes: \['0', '1', '2'\]"):
        load_dataset(path=_write_csv(tmp_path, frame))
    with pytest.raises(DataError, match="more than two classes"):
        load_dataset(path=_write_csv(tmp_path, frame), positive_label=1)


def test_unrecognised_label_pair_asks_for_positive_label(tmp_path: Path) -> None:
    frame = _frame()
    frame["Class"] = np.where(frame["Class"] == 1, "chargeback", "ok")
    with pytest.raises(DataError, match=r"'Class'.*unrecognised labels \['chargeback', 'ok'\].*positive_label"):
        load_dataset(path=_write_csv(tmp_path, frame))


def test_positive_label_not_present(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"positive_label 'fraud' not found in target column 'Class'"):
        load_dataset(path=_write_csv(tmp_path, _frame()), positive_label="fraud")


def test_non_numeric_amount_and_datetime_features(tmp_path: Path) -> None:
    frame = _frame().assign(amt="12 EUR")
    with pytest.raises(DataError, match="amount_column 'amt'.*not numeric"):
        load_dataset(path=_write_csv(tmp_path, frame), amount_column="amt")
    # Parquet datetimes become days since 1970, like date strings in a CSV.
    frame = _frame().assign(seen=pd.date_range("2024-01-01", periods=400, freq="D"))
    frame.to_parquet(tmp_path / "dates.parquet")
    ds = load_dataset(path=str(tmp_path / "dates.parquet"))
    days = pd.concat([ds.train.X, ds.val.X, ds.test.X])["seen"]
    assert days.dtype == np.float32 and sorted(days) == [19723.0 + i for i in range(400)]


def test_string_id_column_is_dropped_or_kept_with_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frame = _frame().assign(txn=[f"T{i}" for i in range(400)])
    path = _write_csv(tmp_path, frame)
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(path=path)
    assert "'txn'" in caplog.text and "id" in caplog.text
    assert ds.categorical == [] and [(f.column, f.kind) for f in ds.flags] == [("txn", "id")]
    kept = load_dataset(path=path, on_leak="warn")
    assert kept.categorical == ["txn"] and kept.flags == ds.flags
