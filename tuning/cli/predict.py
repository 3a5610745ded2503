"""``tuning predict``: score a CSV or Parquet file with a job's model.

The file is read as it is (``trainables.tables.read_table``) and scored by the
pyfunc on the job's parent run in chunks, with a progress line on large files.
The model's own conversions apply (missing tokens, dates, categories pinned to
the training levels); MLflow's signature check is not, so an integer column that
holds a missing value in this file scores as missing instead of being refused.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from tuning.errors import DataError
from tuning.spec import resolve_tracking_uri as default_uri

CHUNK_ROWS = 50_000


def register(sub: Any) -> None:
    """Add ``tuning predict`` to the ``tuning`` parser."""
    parser = sub.add_parser("predict", help="score a CSV or Parquet file with a job's model "
                            "(raw rows in: score, decision, reasons out)")
    parser.add_argument("job", metavar="NAME_OR_RUN_ID",
                        help="parent run id, job name or experiment name (newest job)")
    parser.add_argument("--input", required=True, help="CSV or Parquet file, rows as in the training file")
    parser.add_argument("--output", help="CSV or Parquet file to write (default: CSV on stdout)")
    parser.add_argument("--explain", type=int, default=0, metavar="K",
                        help="add each row's top-K features and their contributions (log-odds)")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help=argparse.SUPPRESS)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: "
                        "$MLFLOW_TRACKING_URI, then sqlite:///mlflow.db)")
    parser.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from trainables.tables import read_table
    from tuning.tracking.model import load_model  # heavy: MLflow, XGBoost

    if args.explain < 0:
        raise DataError(f"--explain must be >= 0, got {args.explain}")
    model, run_id = load_model(default_uri(args.tracking_uri), args.job)
    frame = read_table(args.input)
    stream = None if args.quiet else sys.stderr
    scored = predict_frame(model, frame, explain=args.explain, chunk_rows=max(1, args.chunk_rows),
                           progress=stream)
    scored.insert(0, "row", range(len(scored)))
    if args.output is None:
        scored.to_csv(sys.stdout, index=False)
        return 0
    out = Path(args.output)
    if {".parquet", ".pq"} & {s.lower() for s in out.suffixes}:
        scored.to_parquet(out, index=False)
    else:
        scored.to_csv(out, index=False)
    print(f"{args.input}: {len(scored)} rows scored with the model of run {run_id} "
          f"({int(scored['decision'].sum())} flagged); wrote {out}", file=sys.stderr)
    return 0


def predict_frame(model: Any, frame: pd.DataFrame, explain: int = 0, chunk_rows: int = CHUNK_ROWS,
                  progress: TextIO | None = None) -> pd.DataFrame:
    """Score ``frame`` with a :class:`trainables.serving.FraudModel` chunk by chunk.

    Raises:
        DataError: A required column is missing (one line naming it).
    """
    parts = []
    started, shown = time.monotonic(), progress is not None and len(frame) > chunk_rows
    for start in range(0, len(frame), chunk_rows):
        chunk = frame.iloc[start:start + chunk_rows]
        parts.append(model.predict(None, chunk, params={"explain": explain}))
        if shown:
            done = min(start + chunk_rows, len(frame))
            print(f"\rscored {done:,} / {len(frame):,} rows ({done / len(frame):.0%}, "
                  f"{time.monotonic() - started:.1f}s)", end="", file=progress, flush=True)
    if shown:
        print(file=progress)
    if not parts:
        raise DataError("the input file has no rows")
    return pd.concat(parts, ignore_index=True)

