"""Tests for trainables.leaks: id, counter, separation and constant flags, on_leak, entity candidates."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainables.data import DataError, load_dataset
from trainables.leaks import KINDS, LeakFlag, entity_candidates, find_leaks
from trainables.preprocess import Preprocessor


def _clean(rows: int = 1_000, positives: int = 150, seed: int = 0) -> pd.DataFrame:
    """Honest features only: nothing here may be flagged."""
    rng = np.random.default_rng(seed)
    y = np.zeros(rows, dtype=int)
    y[rng.choice(rows, positives, replace=False)] = 1
    return pd.DataFrame(
        {
            "f1": rng.normal(size=rows) + y,
            "premium": np.round(rng.uniform(500, 2000, rows), 2),  # near-unique floats: never an id
            "zip": rng.permutation(np.resize(rng.choice(np.arange(430_000, 480_000), rows - 5, replace=False), rows)),
            "age": rng.integers(18, 80, rows),
            "city": rng.choice(["a", "b", "c"], rows),
            "Class": y,
        }
    )  # zip: 995 of 1,000 distinct, like insured_zip


def _flags(frame: pd.DataFrame, **kwargs: object) -> dict[str, str]:
    y = frame["Class"].to_numpy()
    pre = Preprocessor.fit(frame, ignore=["Class"])
    found = find_leaks(frame, pre.transform(frame), pre, y, np.arange(0, len(y), 2), **kwargs)
    return {f.column: f.kind for f in found}


def test_clean_frame_has_no_flags_and_keeps_the_zip_like_column() -> None:
    frame = _clean()
    assert frame["zip"].nunique() == 995
    assert _flags(frame) == {}


def test_each_trap_is_flagged_with_its_kind() -> None:
    frame = _clean().sort_values("Class", kind="stable").reset_index(drop=True)  # a label-sorted file
    y = frame["Class"].to_numpy()
    n, rng = len(frame), np.random.default_rng(1)
    frame["row_number"] = np.arange(n) + 1
    frame["per_class_row"] = np.concatenate([np.arange(1, (y == 0).sum() + 1), np.arange(1, y.sum() + 1)])
    frame["policy_number"] = rng.permutation(n) + 100_000
    frame["location"] = [f"{i} Main St" for i in rng.permutation(n)]
    frame["chargeback"] = np.where(y == 1, "filed", "none")
    frame["refund_days"] = np.where(y == 1, rng.uniform(10, 20, n), rng.uniform(0, 5, n))
    frame["fraud_only_note"] = np.where(y == 1, 1.0, np.nan)  # missing for every legit row
    frame["_c39"] = np.nan
    frame["version"] = "v1"
    assert _flags(frame) == {
        "row_number": "counter",
        "per_class_row": "class_counter",
        "policy_number": "id",
        "location": "id",
        "chargeback": "separates",
        "refund_days": "separates",
        "fraud_only_note": "separates",
        "_c39": "constant",
        "version": "constant",
    }
    assert set(_flags(frame).values()) == set(KINDS)


def test_time_counter_is_a_counter_unless_it_is_the_time_column_and_amount_is_exempt() -> None:
    frame = _clean()
    frame["unix_time"] = 1_700_000_000 + np.cumsum(np.random.default_rng(0).integers(1, 90, len(frame)))
    frame["amount_cents"] = np.random.default_rng(1).permutation(len(frame)) * 7
    assert _flags(frame) == {"unix_time": "counter", "amount_cents": "id"}
    assert _flags(frame, exempt_id=["amount_cents", "unix_time"]) == {}


def test_few_positives_never_flag_separation() -> None:
    frame = _clean(positives=6)
    frame["odd"] = np.where(frame["Class"] == 1, 9.0, 0.0)
    assert _flags(frame) == {}  # 3 training positives: separation proves nothing
    frame = _clean(positives=40)
    frame["many_levels"] = [f"L{i}" for i in range(len(frame) // 2)] * 2  # 2 rows a level
    assert "many_levels" not in _flags(frame)


def test_flag_message_is_one_line() -> None:
    flag = LeakFlag("policy_number", "id", "1000 distinct integers in 1000 rows: a row id")
    assert flag.message == "column 'policy_number' flagged as id: 1000 distinct integers in 1000 rows: a row id"


def _leaky_file(tmp_path: Path) -> str:
    frame = _clean().sort_values("Class", kind="stable")
    frame["row_number"] = np.arange(len(frame))
    frame["txn"] = [f"T{i}" for i in range(len(frame))]
    frame.to_csv(tmp_path / "leaky.csv", index=False)
    return str(tmp_path / "leaky.csv")


def test_on_leak_drop_is_the_default(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(path=_leaky_file(tmp_path))
    assert [(f.column, f.kind) for f in ds.flags] == [("row_number", "counter"), ("txn", "id")]
    assert "row_number" not in ds.feature_names and "txn" not in ds.feature_names
    assert {"row_number", "txn"} <= set(ds.preprocessor.ignored)
    assert "'row_number' flagged as counter" in caplog.text and "dropped" in caplog.text


def test_on_leak_warn_keeps_and_error_refuses(tmp_path: Path) -> None:
    path = _leaky_file(tmp_path)
    kept = load_dataset(path=path, on_leak="warn")
    assert {"row_number", "txn"} <= set(kept.feature_names) and len(kept.flags) == 2
    with pytest.raises(DataError, match=r"'row_number' flagged as counter.*'txn' flagged as id") as info:
        load_dataset(path=path, on_leak="error")
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match=r"unknown on_leak 'ignore'; valid: \['drop', 'warn', 'error'\]"):
        load_dataset(path=path, on_leak="ignore")


def test_nothing_left_after_dropping_is_an_error(tmp_path: Path) -> None:
    frame = _clean()[["Class"]].assign(row=np.arange(1_000))
    frame.to_csv(tmp_path / "ids.csv", index=False)
    with pytest.raises(DataError, match="no feature columns left once the flagged columns are dropped"):
        load_dataset(path=str(tmp_path / "ids.csv"))


def test_user_dropped_and_role_columns_are_not_flagged(tmp_path: Path) -> None:
    frame = _clean()
    frame["txn"] = [f"T{i}" for i in range(len(frame))]
    frame["ts"] = np.arange(len(frame)) * 60
    frame["Amount"] = np.arange(len(frame)) + 0  # integer amounts, all distinct: declared, so kept
    frame.to_csv(tmp_path / "roles.csv", index=False)
    ds = load_dataset(path=str(tmp_path / "roles.csv"), drop=["txn"], time_column="ts", amount_column="Amount")
    assert ds.flags == () and "Amount" in ds.feature_names


def test_entity_candidates_by_name_and_by_values() -> None:
    rng = np.random.default_rng(0)
    n = 2_000
    frame = pd.DataFrame(
        {
            "CustomerID": rng.integers(0, 400, n),
            "card_no": rng.integers(0, 900, n),
            "userid": [f"u{i}" for i in rng.integers(0, 50, n)],
            "merchant": [f"m{i}" for i in rng.integers(0, 300, n)],
            "policy_number": rng.permutation(n),  # unique: a row id, not an entity
            "policy_csl": rng.choice(["100/300", "250/500"], n),  # entity word, but a category
            "months_as_customer": rng.integers(0, 400, n),  # an integer measurement
            "number_of_vehicles": rng.integers(1, 5, n),
            "amount": rng.lognormal(3, 1, n),
            "opened": pd.Series(pd.date_range("2020-01-01", periods=500)).sample(n, replace=True, random_state=0)
            .dt.strftime("%Y-%m-%d").to_numpy(),
            "Class": rng.integers(0, 2, n),
        }
    )
    found = entity_candidates(frame, exclude=["Class"])
    assert list(found) == ["CustomerID", "card_no", "userid", "merchant"]
    assert "name looks like an id" in found["CustomerID"] and "repeat" in found["merchant"]
    assert "rows each" in found["card_no"]
