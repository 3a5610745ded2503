"""Scale benchmark: the same small job on 1M, 5M and 10M rows, single-worker and data-parallel.

    python -m benchmarks.scale                              # 1M, 5M, 10M rows x single, dp2
    python -m benchmarks.scale --rows 1e6 --modes single    # one cell
    python -m benchmarks.scale --modes dp2                  # re-run only the data-parallel cells
    python -m benchmarks.scale --quick                      # smoke: 20k rows, 2 trials x 10 rounds

Data: ``trainables.synthetic.make_synthetic`` (30 columns, 0.2% fraud), written as Parquet
shards of at most ``--shard-rows`` rows (shard ``i`` is ``make_synthetic(shard_rows,
seed=i)``) into ``<scratch>/data/rows=<n>/``; a finished folder holds a ``_SUCCESS`` marker
(the shard reader skips it) and is reused by the next run.

Job: ``data.path: <that folder>``, ``tpe`` (seed 0), FIFO, 4 trials (the XGBoost-defaults
baseline trial counted in them) x 50 rounds, a report every 10 rounds, no early stopping,
``evaluation.cv: 1``, a new SQLite store and job folder per cell. Modes:

- ``single``: one process per trial, ``resources: {cpu: 1}``, 2 trials at once on 2 cores;
- ``dp2``: ``resources: {workers: 2, cpu: 0.9}``, each trial a Ray Train run over 2 workers
  (one trial at a time on 2 cores, docs/scale.md).

Each cell runs as a user runs it: the venv's ``tuning run spec.yaml -q --json`` in a
subprocess (its own session), timed from the outside (**whole command**: imports, data,
Ray's start, the search, refit, verdict, model logging, report, exit). **Wall per trial**
is read from the MLflow child runs (end - start of each trial's run, median over trials);
the search wall (``Tuner.fit``) is the command's ``--json`` ``wall_s``.

**Peak memory** is sampled every ``--sample-s`` (0.5 s) from ``/proc`` (Linux only) over the
command's process tree (the ``tuning`` process, and every descendant: the Ray processes it
starts and their workers): the driver's peak RSS; for Ray worker processes (cmdline
``ray::...``, Ray's dashboard and runtime-env agents left out: trial actors, Train
controllers and workers, idle workers) the largest single-process peak
RSS and the peak of their summed PSS; and the peak summed PSS of the whole tree. Limits:
a peak shorter than the sampling period can be missed; RSS counts shared pages (Ray's
object store in ``/dev/shm``, libraries) in every process that maps them, which is why
sums use PSS (shared pages split between the processes sharing them); a process that
leaves the tree (re-parented to init) is no longer seen; other users' processes on the
machine are not counted, but they do compete for its memory. A guard stops a cell (its
process group and tree) when the machine's available memory falls below
``--min-available-gb``, so a cell that would run out of memory on a shared machine is
recorded as such instead of triggering the kernel's OOM killer on someone else's process.

Results: a Markdown table on stdout; ``benchmarks/results/scale.json`` and ``scale.md``.
Cells of earlier runs that this run did not repeat are kept (keyed by rows and mode), so
``--modes dp2`` refreshes only the data-parallel rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from benchmarks.common import RESULTS_DIR, ROOT, apply_quick

MODES: dict[str, dict[str, Any]] = {
    "single": {"resources": {"cpu": 1, "gpu": 0}, "budget": {"max_concurrent": 2}},
    "dp2": {"resources": {"workers": 2, "cpu": 0.9, "gpu": 0}, "budget": {}},
}
DEFAULT_ROWS = (1_000_000, 5_000_000, 10_000_000)
QUICK = {"rows": [20_000], "trials": 2, "rounds": 10, "shard_rows": 5_000, "fraud_rate": 0.01}
GIB = 1024 ** 3
#: Ray's per-node agents set a ``ray::`` process title too; they are not workers.
RAY_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


# --------------------------------------------------------------------- data
def write_shards(folder: Path, rows: int, shard_rows: int, fraud_rate: float = 0.002) -> Path:
    """``rows`` synthetic transactions as Parquet shards in ``folder`` (reused if complete)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trainables.synthetic import make_synthetic

    done = folder / "_SUCCESS"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.parquet"):
        stale.unlink()
    n_shards = max(1, -(-rows // shard_rows))
    for i in range(n_shards):
        size = rows // n_shards + (1 if i < rows % n_shards else 0)
        frame = make_synthetic(rows=size, fraud_rate=fraud_rate, seed=i)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False),
                       folder / f"part-{i:05d}.parquet")
        del frame
    done.write_text(json.dumps({"rows": rows, "shards": n_shards, "fraud_rate": fraud_rate}))
    return folder


def build_spec(data_path: Path, mode: str, trials: int, rounds: int, work: Path) -> dict[str, Any]:
    """The job of one cell, as the YAML mapping a user would write."""
    spec: dict[str, Any] = {
        "name": f"scale-{mode}",
        "data": {"path": str(data_path), "val_fraction": 0.2, "test_fraction": 0.2},
        "trainable": "xgboost_fraud",
        "objective": {"metric": "aucpr"},
        "search_space": {
            "eta": {"type": "loguniform", "low": 0.02, "high": 0.3},
            "max_depth": {"type": "randint", "low": 3, "high": 9},
            "subsample": {"type": "uniform", "low": 0.6, "high": 1.0},
            "colsample_bytree": {"type": "uniform", "low": 0.6, "high": 1.0},
        },
        "search": {"algorithm": "tpe", "seed": 0},
        "scheduler": {"type": "fifo"},
        "training": {"num_boost_round": rounds, "report_every": 10,
                     "early_stopping_reports": None},
        "evaluation": {"cv": 1},
        "budget": {"num_samples": trials, **MODES[mode]["budget"]},
        "resources": dict(MODES[mode]["resources"]),
        "tracking": {"tracking_uri": f"sqlite:///{work}/mlflow.db"},
        "storage": {"path": str(work / "tuning_runs")},
    }
    return spec


# ------------------------------------------------------------------- memory
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(root: int) -> list[int]:
    tree, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += tree.get(pid, [])
    return out


def _memory(pid: int) -> tuple[int, int] | None:
    """(RSS, PSS) in bytes of one process, None once it is gone."""
    try:
        rss = pss = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
        return rss, pss
    except (OSError, ValueError, IndexError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _is_worker(cmdline: str) -> bool:
    return cmdline.startswith("ray::") and not cmdline.startswith(RAY_AGENTS)


def available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class MemorySampler:
    """Peak memory of a process tree, sampled on a thread (see the module docstring)."""

    root: int
    period_s: float = 0.5
    min_available: int = 0
    driver_rss: int = 0
    worker_rss_max: int = 0
    workers_pss_sum: int = 0
    tree_pss_sum: int = 0
    workers_seen: int = 0
    samples: int = 0
    tripped: str | None = None
    pids: set[int] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        workers: set[int] = set()
        while not self._stop.is_set():
            tree_pss = workers_pss = 0
            for pid in _descendants(self.root):
                mem = _memory(pid)
                if mem is None:
                    continue
                self.pids.add(pid)
                rss, pss = mem
                tree_pss += pss
                if pid == self.root:
                    self.driver_rss = max(self.driver_rss, rss)
                elif _is_worker(_cmdline(pid)):
                    workers.add(pid)
                    workers_pss += pss
                    self.worker_rss_max = max(self.worker_rss_max, rss)
            self.workers_pss_sum = max(self.workers_pss_sum, workers_pss)
            self.tree_pss_sum = max(self.tree_pss_sum, tree_pss)
            self.workers_seen, self.samples = len(workers), self.samples + 1
            available = available_bytes()
            if self.min_available and available < self.min_available and self.tripped is None:
                self.tripped = (f"stopped: machine memory available fell to {available / GIB:.1f} "
                                f"GiB (< {self.min_available / GIB:.1f})")
                self.kill()
            self._stop.wait(self.period_s)

    def kill(self) -> None:
        """SIGKILL the command's process group and every process seen in its tree."""
        try:
            os.killpg(self.root, signal.SIGKILL)
        except OSError:
            pass
        for pid in list(self.pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        return {"driver_peak_rss_gib": self.driver_rss / GIB,
                "worker_peak_rss_gib": self.worker_rss_max / GIB,
                "workers_peak_pss_sum_gib": self.workers_pss_sum / GIB,
                "tree_peak_pss_sum_gib": self.tree_pss_sum / GIB,
                "worker_processes_seen": self.workers_seen, "memory_samples": self.samples}


# ---------------------------------------------------------------------- run
def trial_walls(summary: dict[str, Any]) -> list[float]:
    """Seconds from start to end of each trial's MLflow child run."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(summary["tracking_uri"])
    runs = client.search_runs(
        [summary["experiment_id"]],
        filter_string=f"tags.`mlflow.parentRunId` = '{summary['parent_run_id']}'")
    return sorted((r.info.end_time - r.info.start_time) / 1000 for r in runs
                  if r.info.end_time and r.info.start_time)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_cell(data_path: Path, rows: int, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """One ``tuning run`` of one cell, with its timings and peak memory."""
    work = Path(tempfile.mkdtemp(prefix=f"rows{rows}-{mode}-", dir=args.scratch))
    spec_file = work / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(build_spec(data_path, mode, args.trials, args.rounds, work),
                                        sort_keys=False))
    script = Path(sys.executable).with_name("tuning")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "tuning.cli"]
    cmd += ["run", str(spec_file), "-q", "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_DEDUP_LOGS": "1"}
    env.pop("RAY_ADDRESS", None)
    cell: dict[str, Any] = {"rows": rows, "mode": mode, "trials": args.trials,
                            "rounds": args.rounds, "work": str(work), "load_before": _load(),
                            "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    out, err = open(work / "stdout.txt", "w+"), open(work / "stderr.txt", "w+")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=err, start_new_session=True)
    sampler = MemorySampler(proc.pid, args.sample_s, int(args.min_available_gb * GIB))
    try:
        code = proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        sampler.tripped = sampler.tripped or f"stopped: over the {args.timeout:.0f} s timeout"
        sampler.kill()
        code = proc.wait()
    cell["whole_command_s"] = time.perf_counter() - started
    cell.update(sampler.stop())
    cell["load_after"] = _load()
    out.seek(0), err.seek(0)
    stdout, stderr = out.read(), err.read()
    out.close(), err.close()
    cell["exit_code"] = code
    text = "\n" + stdout  # the --json summary starts on a line of its own
    if "\n{" not in text:
        tail = [line for line in stderr.strip().splitlines() if line.strip()][-6:]
        cell["status"] = sampler.tripped or f"failed (exit {code})"
        cell["error_tail"] = tail
        return cell
    summary = json.loads(text[text.index("\n{") + 1:])
    walls = trial_walls(summary)
    # A command that printed its summary and then exited non-zero did the job's work: its
    # figures are kept and the status says how it ended.
    cell.update(status="ok" if code == 0 else f"ok, then exit {code}",
                search_wall_s=summary["wall_s"], trials_run=summary["trials"]["total"],
                trials_failed=summary["trials"]["failed"], trial_walls_s=walls,
                trial_wall_median_s=statistics.median(walls) if walls else None,
                best_val=(summary.get("best") or {}).get("value"),
                test_aucpr=(summary.get("test") or {}).get("aucpr"))
    if code != 0:
        cell["error_tail"] = [line for line in stderr.strip().splitlines() if line.strip()][-3:]
    return cell


# ------------------------------------------------------------------- output
def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else spec.format(value)


def markdown(cells: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    head = ["rows", "mode", "status", "whole command s", "search s", "wall per trial s (median)",
            "driver peak RSS GiB", "worker peak RSS GiB (largest)", "workers peak PSS GiB (sum)",
            "tree peak PSS GiB", "test AUC-PR", "load before → after"]
    lines = [f"**{machine['cores']} cores, {machine['memory_gib']:.0f} GiB; trials × rounds as "
             f"per row; UTC dates per cell in scale.json**", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in sorted(cells, key=lambda c: (c["rows"], list(MODES).index(c["mode"]))):
        ok = str(c.get("status", "")).startswith("ok")
        lines.append("| " + " | ".join([
            f"{c['rows']:,}", f"{c['mode']} ({c['trials']}×{c['rounds']})",
            c.get("status", "?"), _fmt(c.get("whole_command_s"), "{:.0f}"),
            _fmt(c.get("search_wall_s") if ok else None, "{:.0f}"),
            _fmt(c.get("trial_wall_median_s") if ok else None, "{:.1f}"),
            _fmt(c.get("driver_peak_rss_gib"), "{:.2f}"),
            _fmt(c.get("worker_peak_rss_gib"), "{:.2f}"),
            _fmt(c.get("workers_peak_pss_sum_gib"), "{:.2f}"),
            _fmt(c.get("tree_peak_pss_sum_gib"), "{:.2f}"),
            _fmt(c.get("test_aucpr") if ok else None, "{:.3f}"),
            f"{c['load_before'][0]:.1f} → {c['load_after'][0]:.1f}",
        ]) + " |")
    return "\n".join(lines) + "\n"


def machine_info() -> dict[str, Any]:
    total = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            total = int(line.split()[1]) * 1024
    return {"cores": os.cpu_count(), "memory_gib": total / GIB, "platform": platform.platform()}


def merge(previous: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier cells that this run did not repeat, then this run's cells."""
    redone = {(c["rows"], c["mode"]) for c in new}
    return [c for c in previous if (c["rows"], c["mode"]) not in redone] + new


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, nargs="+", default=list(DEFAULT_ROWS),
                        help="table sizes (1e6 style accepted)")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--shard-rows", type=int, default=500_000)
    parser.add_argument("--fraud-rate", type=float, default=0.002)
    parser.add_argument("--quick", action="store_true",
                        help="smoke-test sizes: 20k rows (1%% fraud), 2 trials x 10 rounds")
    parser.add_argument("--scratch", type=Path,
                        default=Path(tempfile.gettempdir(), "tuning-scale-bench"),
                        help="data cache and job folders")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per cell")
    parser.add_argument("--sample-s", type=float, default=0.5, help="memory sampling period")
    parser.add_argument("--min-available-gb", type=float, default=1.5,
                        help="stop a cell when the machine's available memory falls below this")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    apply_quick(args, parser, QUICK)
    if args.quick and args.out == parser.get_default("out"):  # a smoke run never overwrites the results
        args.out = args.scratch / "quick-results"
    args.scratch.mkdir(parents=True, exist_ok=True)
    cells = []
    for rows in (int(r) for r in args.rows):
        print(f"{rows:,} rows: data ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        data = write_shards(args.scratch / "data" / f"rows={rows}_fraud={args.fraud_rate}",
                            rows, args.shard_rows, args.fraud_rate)
        print(f"{rows:,} rows: data ready in {time.perf_counter() - started:.0f}s",
              file=sys.stderr, flush=True)
        for mode in args.modes:
            print(f"{rows:,} rows, {mode} ...", file=sys.stderr, flush=True)
            cell = run_cell(data, rows, mode, args)
            print(f"{rows:,} rows, {mode}: {cell['status']} in {cell['whole_command_s']:.0f}s",
                  file=sys.stderr, flush=True)
            cells.append(cell)
            args.out.mkdir(parents=True, exist_ok=True)
            _write(args, cells)  # after every cell: a long run that is stopped keeps its cells
    print(_write(args, cells))
    return 0


def _write(args: argparse.Namespace, cells: list[dict[str, Any]]) -> str:
    path = args.out / "scale.json"
    previous = json.loads(path.read_text())["cells"] if path.exists() else []
    machine = machine_info()
    merged = merge(previous, cells)
    table = markdown(merged, machine)
    path.write_text(json.dumps({"machine": machine, "cells": merged}, indent=1))
    (args.out / "scale.md").write_text(table)
    return table


if __name__ == "__main__":
    sys.exit(main())
