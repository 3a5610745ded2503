"""Sharded input planned on the driver (trainables.shards): passes, split rule, conversions.

No Ray Train here: the plan, the split rule applied batch by batch, the category codes
and one Ray Data read on the session's local Ray.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainables.data import DataError, make_synthetic
from trainables.shard_plan import plan_shards
from trainables.shards import SplitBatches, decode, ray_split, row_hashes
from trainables.tables import is_sharded, read_table

from conftest import full_reads


def _shards(folder, frame, n=3, names=None):
    folder.mkdir()
    for i in range(n):
        frame.iloc[i::n].to_parquet(folder / (names[i] if names else f"part-{i}.parquet"))
    return folder


def _frame(rows=3000, seed=4):
    frame = make_synthetic(rows=rows, fraud_rate=0.05, seed=seed)
    frame["merchant"] = np.where(np.arange(rows) % 3 == 0, "shop-a", "shop-b")
    return frame


def _members(data, name):
    """The content hashes of one split's rows, read shard by shard: a set independent of order."""
    plan = data.plan
    out = set()
    for file in plan.files:
        batch = pd.read_parquet(file)
        codes, hashes = plan.assign(batch)
        out |= set(hashes[codes == ("train", "val", "test").index(name)].tolist())
    return out


def test_the_plan_reads_no_table_and_counts_every_row_once(tmp_path, job_events):
    data = plan_shards(path=str(_shards(tmp_path / "s", _frame())), min_positives=5)
    assert full_reads(job_events) == 0, "the driver's passes never call read_table"
    read_table(tmp_path / "s" / "part-0.parquet")  # the count does see a whole-table read
    assert full_reads(job_events) == 1
    assert data.streamed and sum(len(s.y) for s in (data.train, data.val, data.test)) == 3000
    assert len(data.test.rows) == len(data.test.y) and len(data.train.X) <= 100
    shares = [len(s.y) / 3000 for s in (data.train, data.val, data.test)]
    assert shares == pytest.approx([0.6, 0.2, 0.2], abs=0.05)


def test_the_split_is_the_same_for_the_same_rows_whatever_the_shards(tmp_path):
    frame = _frame()
    one = plan_shards(path=str(_shards(tmp_path / "a", frame)), min_positives=5)
    again = plan_shards(path=str(tmp_path / "a"), min_positives=5)
    # The same rows in other files, in another order: the same split membership.
    other = plan_shards(path=str(_shards(tmp_path / "b", frame.iloc[::-1], n=4)), min_positives=5)
    assert one.fingerprint == again.fingerprint
    assert np.array_equal(one.test.rows, again.test.rows)
    for name in ("train", "val", "test"):
        assert _members(one, name) == _members(other, name)
    assert not _members(one, "test") & (_members(one, "train") | _members(one, "val"))
    shifted = plan_shards(path=str(tmp_path / "a"), min_positives=5, seed=1)
    assert _members(shifted, "test") != _members(one, "test"), "the seed moves the split"


def test_a_trials_rows_never_hold_a_test_row(tmp_path):
    data = plan_shards(path=str(_shards(tmp_path / "s", _frame())), min_positives=5)
    test = _members(data, "test")
    for file in data.plan.files:
        batch = pd.read_parquet(file)
        kept = SplitBatches(data.plan, [0, 1])(batch)
        _, hashes = data.plan.assign(batch)
        codes, _ = data.plan.assign(batch)
        assert len(kept) == int((codes < 2).sum()) and set(kept["__tuning_split"]) <= {0, 1}
        assert not set(hashes[codes < 2].tolist()) & test


def test_category_codes_agree_across_shards_with_disjoint_levels(tmp_path, monkeypatch):
    import trainables.shard_plan

    monkeypatch.setattr(trainables.shard_plan, "SAMPLE_ROWS", 200)  # every 12th row in the sample
    frame = _frame(rows=2400)
    folder = tmp_path / "s"
    folder.mkdir()
    first, second = frame.iloc[:1200].copy(), frame.iloc[1200:].copy()
    first["merchant"] = np.where(np.arange(1200) % 2, "a", "b")
    second["merchant"] = np.where(np.arange(1200) % 2, "c", "d")
    second.iloc[5, second.columns.get_loc("merchant")] = "e"  # row 1205: outside the sample
    first.to_parquet(folder / "part-0.parquet")
    second.to_parquet(folder / "part-1.parquet")
    data = plan_shards(path=str(folder), min_positives=3)
    assert data.sample_every == 12
    levels = ("a", "b", "c", "d", "e")  # from the whole pass, not the sample
    assert dict(zip(data.preprocessor.feature_names, data.preprocessor.columns))["merchant"].levels == levels
    convert = SplitBatches(data.plan, [0, 1, 2])
    X, *_ = decode(convert(second.reset_index(drop=True)), data.preprocessor)
    assert list(X["merchant"].cat.categories) == list(levels)
    assert X["merchant"].cat.codes.isin([2, 3, 4]).all()  # c, d, e keep their codes in a shard without a, b
    assert (X["merchant"].astype(str).to_numpy() == second["merchant"].to_numpy()).all()


def test_the_row_hash_ignores_how_pandas_typed_the_text(tmp_path):
    frame = pd.DataFrame({"x": [1.5, 2.0], "s": ["a", None]})
    as_object = frame.astype({"s": object})
    assert np.array_equal(row_hashes(frame, ["s", "x"], 0), row_hashes(as_object, ["s", "x"], 0))


def test_split_by_time_and_by_group(tmp_path):
    frame = _frame()
    frame["when"] = np.arange(3000, dtype=float)
    frame["customer"] = np.arange(3000) % 200
    folder = _shards(tmp_path / "s", frame)
    timed = plan_shards(path=str(folder), split="time", time_column="when", min_positives=3)
    cut = timed.plan.cuts
    assert cut[0] < cut[1]
    assert len(timed.test.y) == pytest.approx(600, abs=2)
    grouped = plan_shards(path=str(folder), group_column="customer", min_positives=3)
    groups = {name: set() for name in ("train", "val", "test")}
    for file in grouped.plan.files:
        batch = pd.read_parquet(file)
        codes, _ = grouped.plan.assign(batch)
        for code, name in enumerate(groups):
            groups[name] |= set(batch["customer"][codes == code])
    assert not groups["test"] & groups["train"] and not groups["val"] & groups["test"]


def test_bad_shards_fail_in_one_line(tmp_path):
    frame = _frame(rows=600)
    frame["Class"] = 0
    with pytest.raises(DataError, match="constant"):
        plan_shards(path=str(_shards(tmp_path / "s", frame)))
    with pytest.raises(DataError, match="fewer than min_positives"):
        plan_shards(path=str(_shards(tmp_path / "t", _frame(rows=600))), min_positives=500)
    with pytest.raises(DataError, match="pyarrow cannot open") as err:
        plan_shards(path="nosuchscheme://bucket/prefix")
    assert "\n" not in str(err.value)
    assert is_sharded("s3://bucket/shards/") and not is_sharded("s3://bucket/one.parquet")


def test_ray_data_reads_the_rows_of_the_splits_asked_for(ray_session, tmp_path):
    data = plan_shards(path=str(_shards(tmp_path / "s", _frame())), min_positives=5)
    frame = ray_split(data.plan, ["train", "val"]).to_pandas()
    assert len(frame) == len(data.train.y) + len(data.val.y)
    assert int(frame["__tuning_y"].sum()) == int(data.train.y.sum() + data.val.y.sum())
    assert set(frame["__tuning_split"]) == {0, 1}


def test_shards_that_disagree_are_refused_before_any_pass(tmp_path):
    folder = _shards(tmp_path / "s", _frame(rows=900))
    other = _frame(rows=300)
    other["merchant"] = 1
    other.to_parquet(folder / "part-9.parquet")
    with pytest.raises(DataError, match="disagree: column 'merchant' is int64"):
        plan_shards(path=str(folder))
