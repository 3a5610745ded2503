"""Reading a CSV or Parquet file, or a folder or glob of Parquet shards, into a frame,
with one-line errors; local, or a URI (``s3://``, ``gs://``) read through pyarrow."""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import os
from collections.abc import Sequence
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
        path: The file, a folder of Parquet files, or a glob such as ``logs/*.parquet``;
            or the same as a URI (a prefix for a folder).
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
    if is_sharded(path):
        return _read_shards(str(path), fmt)
    uri = is_uri(path)
    # Path() would collapse a URI's "//": messages name a URI as given.
    p: Any = str(path) if uri else Path(path)
    if fmt is None:
        suffixes = [s.lower() for s in Path(str(path)).suffixes]
        fmt = "csv" if ".csv" in suffixes else "parquet" if {".parquet", ".pq"} & set(suffixes) else None
        if fmt is None:
            raise DataError(f"cannot tell the format of {p} from its suffix; pass format as one of {list(FORMATS)}")
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise DataError(f"unknown data format {fmt!r} for {p}; valid: {list(FORMATS)}")
    if uri and str(path).split("://", 1)[0].lower() in ("http", "https"):
        opened: Any = contextlib.nullcontext(str(path))  # pandas fetches a URL itself
    elif uri:
        opened = _open_uri(str(path), fmt)
    elif not p.is_file():
        raise DataError(f"data file {p} {'is not a file' if p.exists() else 'does not exist'}")
    else:
        opened = contextlib.nullcontext(p)
    try:
        with opened as source:
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


def _open_uri(uri: str, fmt: str) -> Any:
    """An open pyarrow file of ``uri`` (a CSV's ``.gz`` decompressed); a one-line error if missing."""
    import pyarrow.fs as pafs

    fs, (on_fs,) = fs_paths([uri])
    try:
        kind = fs.get_file_info(on_fs).type
    except Exception as exc:  # noqa: BLE001 - no access, no network
        raise DataError(f"cannot open data file {uri}: {reason(exc)}") from None
    if kind != pafs.FileType.File:
        raise DataError(f"data file {uri} {'does not exist' if kind == pafs.FileType.NotFound else 'is not a file'}")
    # Parquet needs random access; a CSV is read as a stream, decompressed by its suffix.
    return fs.open_input_file(on_fs) if fmt == "parquet" else fs.open_input_stream(on_fs, compression="detect")


def is_sharded(path: Any) -> bool:
    """True for a folder, a glob or a URI prefix of Parquet shards (not one file)."""
    text = str(path)
    if GLOB_CHARS & set(text.split("://", 1)[-1]):
        return True
    if is_uri(text):
        return not text.lower().endswith((".csv", ".csv.gz", ".parquet", ".pq"))
    return Path(text).is_dir()


def is_uri(path: Any) -> bool:
    """True for ``s3://...``, ``gs://...`` and other URIs (read through pyarrow's filesystems)."""
    return "://" in str(path)


def filesystem_of(uri: str) -> Any:
    """The pyarrow filesystem of a URI (None for a local path); a one-line error if none fits.

    pyarrow's own S3 / GCS clients, not fsspec's: no extra package, and the same
    credential chain as Ray Data's readers (``AWS_*`` variables, ``~/.aws``, the
    instance's role; ``AWS_ENDPOINT_URL`` for an S3-compatible store such as MinIO).
    """
    if not is_uri(uri):
        return None
    import pyarrow.fs as pafs

    try:
        fs, _ = pafs.FileSystem.from_uri(uri)
    except Exception as exc:  # noqa: BLE001 - unknown scheme, missing credentials, no network
        raise DataError(f"data path {uri}: pyarrow cannot open its filesystem ({reason(exc)})") from None
    return fs


def fs_paths(files: Sequence[str]) -> tuple[Any, list[str]]:
    """``files`` as pyarrow wants them: (filesystem, paths on it); local files: (None, files).

    URIs all share the first one's filesystem (the shards of one ``data.path``), and a
    path on it is the URI without its ``scheme://`` (``s3://bucket/key`` -> ``bucket/key``).
    """
    if not files or not is_uri(files[0]):
        return None, list(files)
    return filesystem_of(files[0]), [f.split("://", 1)[1] for f in files]


def shard_files(path: str) -> list[str]:
    """The Parquet files of a folder (recursively) or a glob, sorted; of a URI prefix, every
    object under it, or those a URI glob (``s3://bucket/logs/*.parquet``) matches.

    Raises:
        DataError: The folder holds no file, or the glob matches none.
    """
    if is_uri(path):
        return _uri_files(path)
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


def _uri_files(uri: str) -> list[str]:
    """Objects under a URI prefix, or matching a URI glob, as sorted URIs (hidden names skipped)."""
    import pyarrow.fs as pafs

    fs = filesystem_of(uri)
    scheme, rest = uri.split("://", 1)
    pattern = rest if GLOB_CHARS & set(rest) else None
    # A glob is listed from its last folder without a wildcard, then matched.
    base = rest.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0].rsplit("/", 1)[0] if pattern else rest
    try:
        infos = fs.get_file_info(pafs.FileSelector(base.rstrip("/"), recursive=True))
    except FileNotFoundError:  # an object store has no folders: no object under the prefix
        infos = []
    except Exception as exc:  # noqa: BLE001 - missing bucket, no access, no network
        raise DataError(f"cannot list data path {uri}: {reason(exc)}") from None
    files = sorted(f"{scheme}://{i.path}" for i in infos if i.type == pafs.FileType.File
                   and not any(part.startswith(IGNORED_PREFIXES) for part in i.path[len(base):].split("/"))
                   and (pattern is None or _glob_match(i.path.split("/"), pattern.split("/"))))
    if not files:
        raise DataError(f"data path {uri} {'matches no object' if pattern else 'holds no Parquet files'}")
    return files


def _glob_match(parts: list[str], patterns: list[str]) -> bool:
    """Path segments against a glob's, as ``glob.glob(recursive=True)`` matches: ``*`` within
    one segment, ``**`` any number of them (``fnmatch`` alone lets ``*`` cross a ``/``)."""
    if not patterns:
        return not parts
    if patterns[0] == "**":
        return any(_glob_match(parts[i:], patterns[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], patterns[0]) and _glob_match(parts[1:], patterns[1:])


def check_shard_schemas(files: list[str], path: str) -> None:
    """Every shard readable as Parquet with the first one's columns and types (any order).

    Raises:
        DataError: naming the shard and the first column that differs.
    """
    import pyarrow.parquet as pq

    fs, paths = fs_paths(files)
    first = None
    for file, on_fs in zip(files, paths):
        try:
            schema = pq.read_schema(on_fs, filesystem=fs)
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
    base = path if not is_uri(path) and Path(path).is_dir() else None
    fs, paths = fs_paths(files)
    try:
        table = ds.dataset(paths, format="parquet", partitioning="hive", partition_base_dir=base,
                           filesystem=fs).to_table()
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
