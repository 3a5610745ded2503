"""Side-by-side benchmark: naive Ray Tune vs Optuna vs this project, in one run.

    python -m benchmarks.compare               # 3 seeds, 200k rows, 40 trials, 300 rounds
    python -m benchmarks.compare --quick       # smoke test: 20k rows, 6 trials, 40 rounds, 1 seed
    python -m benchmarks.compare --methods optuna project    # the whole-command comparison only

Every method sees the same data, search space, model and budget, each in a fresh
process (``benchmarks.common.run_method``). Per seed, the target validation AUC-PR
is 99% of the best any method found in that seed's run; time to target is read from
each method's best-so-far timeline. The project also runs as a user runs it: the
``tuning run`` command in a subprocess of its own (same spec, a new store), timed from
the outside ("whole command": imports, Ray's start, the search, refit, verdict, model
logging, report and exit), against the baselines' in-process wall. Results: a table on
stdout, ``benchmarks/results/compare.json`` and ``benchmarks/results/compare.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import yaml

from benchmarks.common import METHODS, RESULTS_DIR, ROOT, BenchSettings, apply_quick, best_of, run_method, \
    time_to_target

TARGET_FRACTION = 0.99
QUICK = {"rows": 20_000, "fraud_rate": 0.01, "trials": 6, "rounds": 40, "seeds": 1}
#: Columns of the table: (key in a derived record, header, format).
COLUMNS = [
    ("wall_s", "wall s", "{:.1f}"),
    ("whole_command_s", "whole command s", "{:.1f}"),
    ("best_val", "best val AUC-PR", "{:.4f}"),
    ("test_aucpr", "test AUC-PR", "{:.4f}"),
    ("time_to_target_s", "time to target s", "{:.1f}"),
    ("efficiency", "efficiency", "{:.2f}"),
    ("overhead_s", "overhead s/trial", "{:.2f}"),
    ("mlflow_ms_per_result", "MLflow ms/result", "{:.1f}"),
]


def derive(record: dict[str, Any], target: float) -> dict[str, Any]:
    """The figures of one method in one seed's run."""
    cores = record["settings"]["cores"]
    trained = sum(record["train_s"].values())
    capacity = record["wall_s"] * cores
    trials = max(record["n_trials"], 1)
    return {
        "method": record["method"], "seed": record["seed"], "wall_s": record["wall_s"],
        "best_val": record["best_val"], "test_aucpr": record["test_aucpr"],
        "time_to_target_s": time_to_target(record["timeline"], target),
        "target": target, "train_s_total": trained,
        "efficiency": trained / capacity if capacity else None,
        "overhead_s": (capacity - trained) / trials,
        "mlflow_ms_per_result": record["mlflow_ms_per_result"],
        "whole_command_s": record.get("whole_command_s"),
        "n_trials": record["n_trials"], "n_results": record["n_results"],
        "best_round": record["best_round"], "extra": record.get("extra", {}),
    }


def summarise(rows: list[dict[str, Any]], methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Median, min and max of every column, per method."""
    out: dict[str, dict[str, Any]] = {}
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        stats: dict[str, Any] = {"runs": len(mine)}
        for key, _, _ in COLUMNS:
            values = [r[key] for r in mine if r[key] is not None]
            missing = len(mine) - len(values)
            stats[key] = ({"median": statistics.median(values), "min": min(values),
                           "max": max(values), "missing": missing}
                          if values else {"median": None, "missing": missing})
        out[method] = stats
    return out


def ratios(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Per-seed project/baseline ratios (time to target, wall) and test AUC-PR differences,
    as medians over seeds."""
    comparisons = {"time_to_target": ("time_to_target_s", lambda a, b: a / b),
                   "wall": ("wall_s", lambda a, b: a / b),
                   "test_aucpr_minus": ("test_aucpr", lambda a, b: a - b)}
    out: dict[str, float | None] = {}
    for base in ("naive_raytune", "optuna"):
        for name, (key, combine) in comparisons.items():
            label = (f"test AUC-PR, project − {base}" if name.endswith("minus")
                     else f"{name.replace('_', ' ')}, project / {base}")
            out[label] = _per_seed_median(rows, base, key, key, combine)
        # The whole `tuning run` command against the baseline's own (in-process) wall.
        out[f"whole command, project / {base} wall"] = _per_seed_median(
            rows, base, "whole_command_s", "wall_s", lambda a, b: a / b)
    return out


def _per_seed_median(rows: list[dict[str, Any]], base: str, ours_key: str, theirs_key: str,
                     combine: Any) -> float | None:
    per_seed = []
    for seed in sorted({r["seed"] for r in rows}):
        ours, theirs = _pick(rows, "project", seed), _pick(rows, base, seed)
        if ours and theirs and ours[ours_key] is not None and theirs[theirs_key]:
            per_seed.append(combine(ours[ours_key], theirs[theirs_key]))
    return statistics.median(per_seed) if per_seed else None


def whole_command(settings: BenchSettings, timeout_s: float, attempts: int = 2) -> dict[str, Any]:
    """Run ``tuning run`` on the project's benchmark spec in a subprocess, timed from here.

    The spec is the one ``benchmarks.project`` runs (``build_spec``), written to a YAML
    file; the store and the job folder are new, as for a user's first job in a folder.
    A command that exits non-zero is run again (up to ``attempts`` in all); the failed
    attempts are kept in ``command_failures`` (wall, exit code, last lines of stderr), so a
    flaky exit is counted, not hidden, and the timed figure is always a complete command.
    """
    failures: list[dict[str, Any]] = []
    for _ in range(attempts):
        outcome = _one_command(settings, timeout_s)
        if outcome["exit_code"] == 0:
            text = "\n" + outcome["stdout"]  # the JSON summary starts on a line of its own
            summary = json.loads(text[text.index("\n{") + 1:])
            return {"whole_command_s": outcome["wall_s"], "command_search_wall_s": summary["wall_s"],
                    "command_trials": summary["trials"]["total"], "command_failures": failures}
        failures.append({k: outcome[k] for k in ("wall_s", "exit_code", "stderr_tail")})
    raise RuntimeError(f"tuning run (seed {settings.seed}) failed {attempts} times; last exit code "
                       f"{failures[-1]['exit_code']}:\n" + "\n".join(failures[-1]["stderr_tail"]))


def _one_command(settings: BenchSettings, timeout_s: float) -> dict[str, Any]:
    from benchmarks.project import build_spec

    with tempfile.TemporaryDirectory(prefix="bench-command-") as work:
        spec = build_spec(dataclasses.replace(settings, workdir=work))
        spec_file = Path(work, "spec.yaml")
        spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
        script = Path(sys.executable).with_name("tuning")
        cmd = ([str(script)] if script.exists() else [sys.executable, "-m", "tuning.cli"])
        cmd += ["run", str(spec_file), "-q", "--json"]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_DEDUP_LOGS": "1"}
        env.pop("RAY_ADDRESS", None)
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True,
                              timeout=timeout_s)
        wall = time.perf_counter() - started
    ok = proc.returncode == 0 and "\n{" in "\n" + proc.stdout
    return {"wall_s": wall, "exit_code": proc.returncode if ok or proc.returncode else -1,
            "stdout": proc.stdout,
            "stderr_tail": [] if ok else (proc.stderr or proc.stdout).strip().splitlines()[-15:]}


def _pick(rows: list[dict[str, Any]], method: str, seed: int) -> dict[str, Any] | None:
    return next((r for r in rows if r["method"] == method and r["seed"] == seed), None)


def _cell(key: str, stats: dict[str, Any], fmt: str) -> str:
    # Only time to target can be missing for a reason worth saying: the target was not reached.
    gap = "not reached" if key == "time_to_target_s" else "n/a"
    if stats["median"] is None:
        return gap
    text = fmt.format(stats["median"])
    if stats["min"] != stats["max"]:
        text += f" ({fmt.format(stats['min'])}–{fmt.format(stats['max'])})"
    if stats["missing"]:
        text += f" [{stats['missing']} {gap}]"
    return text


def markdown(summary: dict[str, dict[str, Any]], extra: dict[str, Any], title: str) -> str:
    """The table as Markdown: medians, (min–max) over seeds."""
    head = ["method", "runs"] + [h for _, h, _ in COLUMNS]
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for method, stats in summary.items():
        cells = [method, str(stats["runs"])] + [_cell(k, stats[k], f) for k, _, f in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for key, value in extra.items():
        lines.append(f"- {key}: {'n/a' if value is None else f'{value:.3f}'}")
    return "\n".join(lines) + "\n"


def _save(args: argparse.Namespace, base: BenchSettings, records: list[dict[str, Any]]) -> str:
    """Derive, summarise and write the seeds measured so far; the Markdown table."""
    seeds = sorted({r["seed"] for r in records})
    rows = []
    for seed in seeds:
        mine = [r for r in records if r["seed"] == seed]
        target = TARGET_FRACTION * max(best_of(r["timeline"]) or 0.0 for r in mine)
        rows += [derive(r, target) for r in mine]
    summary = summarise(rows, args.methods)
    extra = ratios(rows)
    title = (f"{args.rows:,} rows, {args.trials} trials, {args.rounds} rounds, {args.cores} cores, "
             f"{len(seeds)} seed(s){' (quick)' if args.quick else ''}")
    table = markdown(summary, extra, title)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare.json").write_text(json.dumps(
        {"settings": {**base.__dict__, "seeds": len(seeds), "quick": args.quick,
                      "target_fraction": TARGET_FRACTION},
         "summary": summary, "ratios": extra, "runs": rows, "raw": records}, indent=1))
    (args.out / "compare.md").write_text(table)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="searcher seeds 0..N-1 (data fixed)")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--fraud-rate", type=float, default=0.002)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--cores", type=int, default=2, help="CPUs given to each method")
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=list(METHODS))
    parser.add_argument("--quick", action="store_true",
                        help="smoke-test sizes: 20k rows (1%% fraud), 6 trials, 40 rounds, 1 seed")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per method run")
    parser.add_argument("--no-whole-command", action="store_true",
                        help="skip timing the `tuning run` command (the whole-command column)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    apply_quick(args, parser, QUICK)
    base = BenchSettings(rows=args.rows, fraud_rate=args.fraud_rate, trials=args.trials,
                         rounds=args.rounds, cores=args.cores, max_concurrent=args.cores)
    records: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        for method in args.methods:
            print(f"seed {seed}: {method} ...", file=sys.stderr, flush=True)
            started = time.monotonic()
            settings = BenchSettings.from_dict({**base.__dict__, "seed": seed})
            load_before = os.getloadavg()[0]
            record = run_method(method, settings, args.timeout)
            if method == "project" and not args.no_whole_command:
                command = whole_command(settings, args.timeout)
                record["whole_command_s"] = command["whole_command_s"]
                record.setdefault("extra", {}).update(command)
            # 1-minute load averages around the method (and its command): a shared machine shows.
            record.setdefault("extra", {})["load_1min"] = [load_before, os.getloadavg()[0]]
            print(f"seed {seed}: {method} done in {time.monotonic() - started:.0f}s "
                  f"(best val {record['best_val']:.4f})", file=sys.stderr, flush=True)
            records.append(record)
        # Written after every seed, so a run cut short keeps the seeds it measured.
        table = _save(args, base, records)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
