"""Reading a CSV or Parquet file into a frame, with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from trainables.preprocess import DataError

FORMATS = ("csv", "parquet")


def read_table(path: str | os.PathLike[str], fmt: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file.

    Args:
        path: The file.
        fmt: ``"csv"`` or ``"parquet"``; None picks by suffix (``.csv``, ``.csv.gz``,
            ``.parquet``, ``.pq``).

    Returns:
        The frame, with string column names.

    Raises:
        DataError: If the file is missing, unreadable, empty or of unknown format.
    """
    p = Path(path)
    if fmt is None:
        suffixes = [s.lower() for s in p.suffixes]
        fmt = "csv" if ".csv" in suffixes else "parquet" if {".parquet", ".pq"} & set(suffixes) else None
        if fmt is None:
            raise DataError(f"cannot tell the format of {p} from its suffix; pass format as one of {list(FORMATS)}")
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise DataError(f"unknown data format {fmt!r} for {p}; valid: {list(FORMATS)}")
    # A URI (s3://, gs://, file://...) goes to pandas unchanged: fsspec reads it, and
    # Path() would collapse its "//".
    uri = "://" in str(path)
    source: Any = str(path) if uri else p
    if not uri and not p.is_file():
        raise DataError(f"data file {p} {'is not a file' if p.exists() else 'does not exist'}")
    try:
        frame = pd.read_csv(source) if fmt == "csv" else pd.read_parquet(source)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {p} is empty") from None
    # Readers raise many types (pyarrow, parser, unicode, OS errors); all mean "unreadable".
    except Exception as exc:  # noqa: BLE001
        reason = " ".join(str(exc).split())[:200]
        raise DataError(f"cannot read data file {p} as {fmt}: {type(exc).__name__}: {reason}") from exc
    if frame.empty:
        raise DataError(f"data file {p} has no rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame
