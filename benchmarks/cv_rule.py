"""What cross-validation buys at a few hundred to a few thousand positives (``evaluation.cv: auto``).

    python -m benchmarks.cv_rule                      # 500 / 1,000 / 2,500 positives, 3 splits
    python -m benchmarks.cv_rule --positives 300 --splits 1 --trials 3 --rounds 30   # smoke

Per size and split (``data.seed``), this project's default job (the minimal spec of
:mod:`benchmarks.quality`) runs twice on the same rows: ``evaluation.cv: 1`` (one
validation split) and ``evaluation.cv: 5``, in alternating order so that a load change
on a shared machine does not always hit the same arm. Each data set is the synthetic
card-payments file of :mod:`benchmarks.quality_data` (three string columns, a date, a
row id) sized so that the non-test rows hold the requested number of positives.
Reported per size: the paired test AUC-PR difference (5-fold minus holdout) per split
and its mean, and the wall ratio (5-fold / holdout, per split). Results: a Markdown
table on stdout, ``benchmarks/results/cv_rule.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from benchmarks.common import RESULTS_DIR, start_local_ray
from benchmarks.quality import default_spec, run_project
from benchmarks.quality_data import make_cards

TEST_FRACTION = 0.2  # the spec default: the non-test rows are the other 80%


def rows_for(positives: int, fraud_rate: float) -> int:
    """Rows of a file whose non-test part holds about ``positives`` positives."""
    return round(positives / (1 - TEST_FRACTION) / fraud_rate)


def run_size(positives: int, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    rows = rows_for(positives, args.fraud_rate)
    ds = make_cards(work / "data" / f"cards_{positives}.csv", rows=rows, fraud_rate=args.fraud_rate)
    ds = type(ds)(f"cards-{positives}", ds.path, ds.target, ds.about)
    out = []
    for seed in range(args.splits):
        order = (1, 5) if seed % 2 == 0 else (5, 1)
        for cv in order:
            spec = default_spec(ds, seed, args.trials, args.rounds, work, cv=cv)
            _log(f"{ds.name} split {seed}: cv {cv} ...")
            record = {"data": ds.name, "rows": rows, "target_positives": positives, "seed": seed,
                      "cv": cv, **run_project(spec)}
            _log(f"{ds.name} split {seed}: cv {cv} test AUC-PR {record['test_aucpr']:.4f} "
                 f"in {record['wall_s']:.1f}s (search {record['search_s']:.1f}s)")
            out.append(record)
    return out


def pairs(runs: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Per size: one dict per split with both arms' test AUC-PR and walls."""
    by: dict[int, dict[int, dict[str, Any]]] = {}
    for r in runs:
        cell = by.setdefault(r["target_positives"], {}).setdefault(r["seed"], {"seed": r["seed"]})
        cell[f"aucpr_cv{r['cv']}"] = r["test_aucpr"]
        cell[f"wall_cv{r['cv']}"] = r["wall_s"]
        cell[f"search_cv{r['cv']}"] = r["search_s"]
    return {p: [c for c in cells.values() if "aucpr_cv1" in c and "aucpr_cv5" in c]
            for p, cells in by.items()}


def markdown(runs: list[dict[str, Any]], title: str) -> str:
    head = ["data set", "rows", "non-test positives", "per split (5-fold − holdout)", "mean",
            "holdout test AUC-PR (mean)", "wall, 5-fold / holdout (per split)",
            "search, 5-fold / holdout (median)"]
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows_of = {r["target_positives"]: r["rows"] for r in runs}
    for positives, cells in sorted(pairs(runs).items()):
        if not cells:
            continue
        diffs = [c["aucpr_cv5"] - c["aucpr_cv1"] for c in cells]
        walls = [c["wall_cv5"] / c["wall_cv1"] for c in cells]
        searches = [c["search_cv5"] / c["search_cv1"] for c in cells]
        lines.append("| " + " | ".join([
            f"cards ({positives:,})", f"{rows_of[positives]:,}", f"~{positives:,}",
            ", ".join(f"{d:+.4f}" for d in diffs), f"{statistics.mean(diffs):+.4f}",
            f"{statistics.mean(c['aucpr_cv1'] for c in cells):.4f}",
            ", ".join(f"{w:.1f}×" for w in walls), f"{statistics.median(searches):.1f}×"]) + " |")
    return "\n".join(lines) + "\n"


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positives", type=int, nargs="+", default=[500, 1000, 2500],
                        help="non-test positives of each synthetic set")
    parser.add_argument("--fraud-rate", type=float, default=0.05)
    parser.add_argument("--splits", type=int, default=3, help="data seeds 0..N-1")
    parser.add_argument("--trials", type=int, default=20, help="trials per job")
    parser.add_argument("--rounds", type=int, default=300, help="round budget (project default 300)")
    parser.add_argument("--cores", type=int, default=2, help="Ray CPUs")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    import ray

    started_ray = not ray.is_initialized()
    if started_ray:
        start_local_ray(args.cores)
    t0 = time.perf_counter()
    runs: list[dict[str, Any]] = []
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-cv-rule-") as tmp:
            for positives in args.positives:
                runs += run_size(positives, args, Path(tmp))
                # Written after every size, so a run cut short keeps what it measured.
                _save(args, runs, time.perf_counter() - t0)
    finally:
        if started_ray:
            ray.shutdown()
    table = _save(args, runs, time.perf_counter() - t0)
    print(table)
    return 0


def _save(args: argparse.Namespace, runs: list[dict[str, Any]], total: float) -> str:
    title = (f"{args.splits} split(s) per size, {args.trials} trials per job, {args.rounds} "
             f"rounds, {args.fraud_rate:.0%} fraud, {args.cores} Ray CPUs; {total:.0f} s so far")
    table = markdown(runs, title)
    (args.out / "cv_rule.json").write_text(json.dumps(
        {"settings": vars(args) | {"out": str(args.out)}, "total_s": total, "runs": runs},
        indent=1, default=str))
    (args.out / "cv_rule.md").write_text(table)
    return table


if __name__ == "__main__":
    sys.exit(main())
