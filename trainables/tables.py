"""Reading a CSV or Parquet file, or a folder or glob of Parquet shards, into a frame,
with one-line errors."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

import pandas as pd

from trainables import events
from trainables.preprocess import DataError

FORMATS = ("csv", "parquet")
#: Characters that make ``data.path`` a glob pattern rather than a file name.
GLOB_CHARS = frozenset("*?[")
#: Files and folders a shard folder skips (Spark's ``_SUCCESS``, ``.crc`` files), as pyarrow does.
IGNORED_PREFIXES = (".", "_")


def read_table(path: str | os.PathLike[str], fmt: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file, or a folder or glob of Parquet files (shards).

    Shards are read as one table in sorted path order (files of a folder
    recursively; ``key=value`` folders become columns, as Hive lays them out), so
    row positions, and with them the splits, do not depend on the file system's
    listing order. Every shard must have the same columns with the same types.

    Args:
        path: The file, a folder of Parquet files, or a glob such as ``logs/*.parquet``.
        fmt: ``"csv"`` or ``"parquet"``; None picks by suffix (``.csv``, ``.csv.gz``,
            ``.parquet``, ``.pq``); a folder or glob is Parquet.

    Returns:
        The frame, with string column names (and a fresh 0..n-1 index for shards).

    Raises:
        DataError: If the file is missing, unreadable, empty or of unknown format, the
            glob matches no file, or the shards' schemas disagree.
    """
    # Tests of streamed jobs (trainables.shards) check the driver never gets here.
    events.emit("data.full_read", path=str(path))
    p = Path(path)
    # A URI (s3://, gs://, file://...) goes to pandas unchanged: fsspec reads it, and
    # Path() would collapse its "//".
    uri = "://" in str(path)
    if not uri and (p.is_dir() or GLOB_CHARS & set(str(path))):
        return _read_shards(str(path), fmt)
    if fmt is None:
        suffixes = [s.lower() for s in p.suffixes]
        fmt = "csv" if ".csv" in suffixes else "parquet" if {".parquet", ".pq"} & set(suffixes) else None
        if fmt is None:
            raise DataError(f"cannot tell the format of {p} from its suffix; pass format as one of {list(FORMATS)}")
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise DataError(f"unknown data format {fmt!r} for {p}; valid: {list(FORMATS)}")
    source: Any = str(path) if uri else p
    if not uri and not p.is_file():
        raise DataError(f"data file {p} {'is not a file' if p.exists() else 'does not exist'}")
    try:
        frame = pd.read_csv(source) if fmt == "csv" else pd.read_parquet(source)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {p} is empty") from None
    # Readers raise many types (pyarrow, parser, unicode, OS errors); all mean "unreadable".
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read data file {p} as {fmt}: {reason(exc)}") from exc
    if frame.empty:
        raise DataError(f"data file {p} has no rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def shard_files(path: str) -> list[str]:
    """The Parquet files of a folder (recursively) or a glob, sorted.

    Raises:
        DataError: The folder holds no file, or the glob matches none.
    """
    if Path(path).is_dir():
        files = []
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith(IGNORED_PREFIXES))
            files += [os.path.join(root, n) for n in names if not n.startswith(IGNORED_PREFIXES)]
        if not files:
            raise DataError(f"data folder {path} holds no Parquet files")
        return sorted(files)
    files = sorted(f for f in glob.glob(path, recursive=True) if os.path.isfile(f))
    if not files:
        raise DataError(f"data path {path} matches no file")
    return files


def check_shard_schemas(files: list[str], path: str, filesystem: Any = None) -> None:
    """Every shard readable as Parquet with the first one's columns and types (any order).

    Raises:
        DataError: naming the shard and the first column that differs.
    """
    import pyarrow.parquet as pq

    first = None
    for file in files:
        try:
            schema = pq.read_schema(file, filesystem=filesystem)
        except Exception as exc:  # noqa: BLE001 - pyarrow and OS errors both mean "unreadable"
            raise DataError(f"cannot read shard {file} of {path} as parquet: {reason(exc)}") from exc
        if first is None:
            first = (file, schema)
        elif _columns(schema) != _columns(first[1]):  # column order may differ; pyarrow reads by name
            why = _difference(_name(file, path), schema, _name(first[0], path), first[1])
            raise DataError(f"shards of {path} disagree: {why}")


def _read_shards(path: str, fmt: str | None) -> pd.DataFrame:
    if fmt is not None and fmt.lower() != "parquet":
        raise DataError(f"data path {path} is a folder or glob, read as Parquet shards; format {fmt!r} "
                        "is for a single file")
    import pyarrow.dataset as ds  # heavy-ish, and only shards need it

    files = shard_files(path)
    check_shard_schemas(files, path)
    base = path if Path(path).is_dir() else None
    try:
        table = ds.dataset(files, format="parquet", partitioning="hive", partition_base_dir=base).to_table()
        frame = table.to_pandas()
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read the Parquet shards of {path}: {reason(exc)}") from exc
    if frame.empty:
        raise DataError(f"the {len(files)} Parquet shards of {path} have no rows")
    frame = frame.reset_index(drop=True)  # positions 0..n-1 across shards, as for one file
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _name(file: str, path: str) -> str:
    """A shard's name in messages: relative to its folder."""
    return os.path.relpath(file, path) if Path(path).is_dir() else file


def _columns(schema: Any) -> dict[str, Any]:
    return {f.name: f.type for f in schema}


def _difference(file: str, schema: Any, first_file: str, first: Any) -> str:
    """The first column in which two shard schemas differ, as one phrase."""
    theirs, mine = _columns(first), _columns(schema)
    for name, kind in theirs.items():
        if name not in mine:
            return f"{file} lacks column {name!r}, which {first_file} has"
        if mine[name] != kind:
            return f"column {name!r} is {mine[name]} in {file} but {kind} in {first_file}"
    extra = sorted(set(mine) - set(theirs))[0]
    return f"{file} has column {extra!r}, which {first_file} lacks"


def reason(exc: BaseException) -> str:
    """An exception as a short phrase for a one-line error."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
