"""Sharded Parquet input: a folder or a glob of files reads like the one file they make up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainables.data import DataError, load_dataset, read_table
from trainables.tables import shard_files


def _frame(rows: int = 900, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.1).astype(int)
    return pd.DataFrame({"amount": rng.gamma(2.0, 50.0, rows) + 40 * y,
                         "merchant": rng.choice(["grocer", "fuel", "online"], rows),
                         "hour": rng.integers(0, 24, rows), "Class": y})


def _shards(folder: Path, frame: pd.DataFrame, parts: int = 3) -> Path:
    folder.mkdir()
    # Written out of order: the reader sorts paths, so listing order cannot change the rows.
    for i in reversed(range(parts)):
        frame.iloc[i::parts].to_parquet(folder / f"part-{i}.parquet")
    (folder / "_SUCCESS").write_text("")  # Spark's marker file: skipped like pyarrow skips it
    return folder


def _in_shard_order(frame: pd.DataFrame, parts: int = 3) -> pd.DataFrame:
    return pd.concat([frame.iloc[i::parts] for i in range(parts)], ignore_index=True)


def test_folder_and_glob_read_as_the_file_they_make_up(tmp_path):
    frame = _frame()
    folder = _shards(tmp_path / "shards", frame)
    whole = _in_shard_order(frame)
    pd.testing.assert_frame_equal(read_table(folder), whole)
    pd.testing.assert_frame_equal(read_table(str(folder / "part-*.parquet")), whole)
    assert [Path(f).name for f in shard_files(str(folder))] == [f"part-{i}.parquet" for i in range(3)]


def test_sharded_dataset_is_the_single_file_dataset(tmp_path):
    """Same loader contract: same splits, features, category levels and digest."""
    frame = _frame()
    whole = _in_shard_order(frame)
    whole.to_parquet(tmp_path / "whole.parquet")
    folder = _shards(tmp_path / "shards", frame)
    one = load_dataset(path=str(tmp_path / "whole.parquet"), min_positives=3)
    many = load_dataset(path=str(folder), min_positives=3)
    assert many.fingerprint == one.fingerprint
    assert many.categorical == one.categorical == ["merchant"]
    np.testing.assert_array_equal(many.test.rows, one.test.rows)
    pd.testing.assert_frame_equal(many.train.X, one.train.X)


def test_hive_folders_become_columns(tmp_path):
    frame = _frame(300)
    for day in (1, 2):
        (tmp_path / "log" / f"day={day}").mkdir(parents=True)
        frame.to_parquet(tmp_path / "log" / f"day={day}" / "part-0.parquet")
    table = read_table(tmp_path / "log")
    assert len(table) == 600 and sorted(table["day"].unique()) == [1, 2]


@pytest.mark.parametrize("case,expected", [
    ("glob matches nothing", "matches no file"),
    ("empty folder", "holds no Parquet files"),
    ("column type differs", "column 'hour' is large_string in part-1.parquet but int64 in part-0"),
    ("column missing", "lacks column 'merchant'"),
    ("extra column", "has column 'card_id'"),
    ("csv format for a folder", "read as Parquet shards"),
    ("a shard is not Parquet", "cannot read shard"),
])
def test_bad_shards_are_one_clear_line(tmp_path, case, expected):
    frame = _frame(300)
    folder = tmp_path / "shards"
    folder.mkdir()
    frame.to_parquet(folder / "part-0.parquet")
    path, fmt = str(folder), None
    if case == "glob matches nothing":
        path = str(folder / "*.pq")
    elif case == "empty folder":
        (folder / "part-0.parquet").unlink()
    elif case == "column type differs":
        frame.assign(hour=frame["hour"].astype(str)).to_parquet(folder / "part-1.parquet")
    elif case == "column missing":
        frame.drop(columns="merchant").to_parquet(folder / "part-1.parquet")
    elif case == "extra column":
        frame.assign(card_id=1).to_parquet(folder / "part-1.parquet")
    elif case == "csv format for a folder":
        fmt = "csv"
    else:
        (folder / "part-1.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match=expected) as err:
        read_table(path, fmt)
    assert "\n" not in str(err.value)
