"""Tests for trainables.folds and the entity-aware splits of load_dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainables.data import DataError, load_dataset
from trainables.folds import make_folds, split_indices


def _entities(rows: int = 3_000, customers: int = 400, seed: int = 0) -> pd.DataFrame:
    """Transactions of repeat customers; fraud comes from a fifth of the customers."""
    rng = np.random.default_rng(seed)
    customer = rng.integers(0, customers, rows)
    bad = rng.random(customers) < 0.2
    y = (bad[customer] & (rng.random(rows) < 0.5)).astype(int)
    return pd.DataFrame(
        {
            "customer_id": [f"C{c:04d}" for c in customer],
            "f1": rng.normal(size=rows) + y,
            "ts": rng.permutation(rows) * 30.0,
            "Class": y,
        }
    )


def _write(tmp_path: Path, frame: pd.DataFrame) -> str:
    frame.to_csv(tmp_path / "tx.csv", index=False)
    return str(tmp_path / "tx.csv")


def test_group_split_puts_each_entity_in_one_split(tmp_path: Path) -> None:
    frame = _entities()
    path = _write(tmp_path, frame)
    ds = load_dataset(path=path, group_column="customer_id", seed=3)
    assert "customer_id" not in ds.feature_names and "customer_id" in ds.preprocessor.ignored
    ids = [set(frame["customer_id"].iloc[s.rows]) for s in (ds.train, ds.val, ds.test)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert sum(len(s.y) for s in (ds.train, ds.val, ds.test)) == len(frame)
    for split, share in ((ds.train, 0.6), (ds.val, 0.2), (ds.test, 0.2)):
        assert len(split.y) == pytest.approx(share * len(frame), rel=0.1)
        assert split.groups is not None and len(split.groups) == len(split.y)
    positives = [int(s.y.sum()) for s in (ds.train, ds.val, ds.test)]
    assert positives[1] == pytest.approx(positives[0] / 3, rel=0.35)  # stratified by "has a positive"
    again = load_dataset(path=path, group_column="customer_id", seed=3)
    np.testing.assert_array_equal(again.val.rows, ds.val.rows)
    other = load_dataset(path=path, group_column="customer_id", seed=4)
    assert not np.array_equal(other.val.rows, ds.val.rows)


def test_group_time_split_orders_groups_by_first_time() -> None:
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 100, 2_000)
    times = rng.uniform(0, 1_000, 2_000)
    y = (rng.random(2_000) < 0.1).astype(np.int8)
    train, val, test = split_indices(y, split="time", val_fraction=0.2, test_fraction=0.2, seed=0, times=times,
                                     groups=groups)
    first = pd.Series(times).groupby(groups).min()
    parts = [np.unique(groups[p]) for p in (train, val, test)]
    assert not set(parts[0]) & set(parts[1]) and not set(parts[1]) & set(parts[2])
    assert first[parts[0]].max() <= first[parts[1]].min() and first[parts[1]].max() <= first[parts[2]].min()


def test_missing_group_values_are_their_own_groups(tmp_path: Path) -> None:
    frame = _entities()
    frame.loc[:9, "customer_id"] = "?"
    ds = load_dataset(path=_write(tmp_path, frame), group_column="customer_id")
    codes = np.concatenate([s.groups for s in (ds.train, ds.val, ds.test)])
    assert len(np.unique(codes)) == frame["customer_id"].nunique() - 1 + 10


def test_times_are_carried_on_the_splits(tmp_path: Path) -> None:
    frame = _entities()
    ds = load_dataset(path=_write(tmp_path, frame), time_column="ts", split="time")
    np.testing.assert_array_equal(ds.test.times, frame["ts"].to_numpy()[ds.test.rows])
    assert ds.train.times.max() <= ds.val.times.min()


def _labels(n: int = 1_000, positives: int = 50, seed: int = 0) -> np.ndarray:
    y = np.zeros(n, dtype=np.int8)
    y[np.random.default_rng(seed).choice(n, positives, replace=False)] = 1
    return y


def test_stratified_folds_partition_the_rows_and_spread_positives() -> None:
    y = _labels()
    folds = make_folds(y, 5, seed=1)
    assert len(folds) == 5
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals) == list(range(len(y)))
    for train, val in folds:
        assert not set(train) & set(val) and len(train) + len(val) == len(y)
        assert int(y[val].sum()) == 10 and len(val) == 200
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, make_folds(y, 5, seed=1)))
    assert not np.array_equal(folds[0][1], make_folds(y, 5, seed=2)[0][1])


def test_group_folds_keep_groups_whole_and_balance_positives() -> None:
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 300, 3_000)
    y = ((groups % 7 == 0) & (rng.random(3_000) < 0.5)).astype(np.int8)
    folds = make_folds(y, 4, seed=0, groups=groups)
    fold_groups = [set(groups[v]) for _, v in folds]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not fold_groups[i] & fold_groups[j]
    assert set().union(*fold_groups) == set(groups)
    positives = [int(y[v].sum()) for _, v in folds]
    assert max(positives) - min(positives) <= max(np.bincount(groups, weights=y))
    sizes = [len(v) for _, v in folds]
    assert max(sizes) / min(sizes) < 1.2


def test_time_folds_chain_forward() -> None:
    rng = np.random.default_rng(0)
    n = 1_200
    times = np.round(rng.uniform(0, 100, n))  # many ties: block edges must not cut them
    y = (rng.random(n) < 0.1).astype(np.int8)
    folds = make_folds(y, 3, times=times)
    assert len(folds) == 3
    for i, (train, val) in enumerate(folds):
        assert times[train].max() < times[val].min()
        assert len(val) == pytest.approx(n / 4, rel=0.1)
        if i:
            assert set(folds[i - 1][0]) < set(train)  # each fold trains on more of the past


def test_time_folds_with_groups_keep_groups_whole() -> None:
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 200, 2_000)
    times = rng.uniform(0, 1_000, 2_000)
    y = (rng.random(2_000) < 0.1).astype(np.int8)
    folds = make_folds(y, 3, times=times, groups=groups)
    first = pd.Series(times).groupby(groups).min()
    for train, val in folds:
        assert not set(groups[train]) & set(groups[val])
        assert first[np.unique(groups[train])].max() <= first[np.unique(groups[val])].min()


def test_folds_without_positives_are_refused() -> None:
    with pytest.raises(DataError, match=r"10 folds over 1000 rows with 6 positives: fold \d+ has no positives"):
        make_folds(_labels(positives=6), 10)
    y = np.zeros(100, dtype=np.int8)
    y[-3:] = 1  # all positives at the end: the first time folds validate on none
    with pytest.raises(DataError, match=r"3 folds over 100 rows with 3 positives"):
        make_folds(y, 3, times=np.arange(100.0))
    with pytest.raises(DataError, match="folds must be an integer >= 2"):
        make_folds(y, 1)


def test_dev_concatenates_train_and_val_in_fold_order(tmp_path: Path) -> None:
    frame = _entities()
    ds = load_dataset(path=_write(tmp_path, frame), group_column="customer_id", time_column="ts")
    dev = ds.dev()
    n_train = len(ds.train.y)
    assert len(dev.y) == n_train + len(ds.val.y)
    pd.testing.assert_frame_equal(dev.X.iloc[n_train:].reset_index(drop=True), ds.val.X)
    np.testing.assert_array_equal(dev.rows, np.concatenate([ds.train.rows, ds.val.rows]))
    assert dev.amount is None and dev.groups is not None and dev.times is not None
    folds = make_folds(dev.y, 3, groups=dev.groups)
    ids = frame["customer_id"].to_numpy()[dev.rows]
    assert all(not set(ids[t]) & set(ids[v]) for t, v in folds)
