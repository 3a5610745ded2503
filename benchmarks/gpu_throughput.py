"""GPU trial throughput: trials per hour at 1, 0.5 and 0.25 GPU per trial against CPU only.

    python -m benchmarks.gpu_throughput                 # 1M rows, 16 trials per cell
    python -m benchmarks.gpu_throughput --rows 2000000 --trials 32 --packings 1 2 4 8
    python -m benchmarks.gpu_throughput --smoke         # code path on a CPU-only machine

Each cell is one tuning job through ``tuning.run_job`` on a local Ray (started
once for the script, so its start-up is charged to no cell): the same random-search
configurations (same seed), FIFO, ``--rounds`` rounds each, data through the object
store, one validation split (``evaluation.cv: 1``, so ``cv: auto`` cannot turn a cell
into 5-fold cross-validation). GPU cells ask ``resources: {cpu: C, gpu: 1/k}`` so Ray
packs k trials per GPU, each training with XGBoost's ``device="cuda"`` on a
``QuantileDMatrix`` (``trainables.xgboost_fraud``); the CPU cell asks
``{cpu: C, gpu: 0}`` and runs ``cores / C`` trials at once. Trials per hour = finished
trials / ``Tuner.fit`` wall seconds x 3600. The table is printed and written to
``benchmarks/results/gpu_throughput.json``.

Quality check: one fixed configuration is trained on the GPU and on the CPU
(XGBoost directly, no Ray); the GPU's validation AUC-PR must lie within the noise
of the CPU's, measured as the spread over ``--noise-seeds`` CPU runs with different
row-subsampling seeds (at least ``--min-tolerance``). Exit code 1 if it does not.

On a machine without an NVIDIA GPU it prints "no GPU" and exits 0; ``--smoke``
instead declares one logical GPU and trains on the CPU (``TUNING_FORCE_CPU=1``) on
small data, to exercise the code: its numbers are not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PACKINGS = (1, 2, 4)  # trials per GPU: 1, 0.5 and 0.25 GPU per trial
FIXED_PARAMS = {"eta": 0.1, "max_depth": 6, "subsample": 0.8, "colsample_bytree": 0.8}


def gpu_count() -> int:
    """NVIDIA GPUs visible here (``nvidia-smi -L``); 0 without a driver."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines()) if out.returncode == 0 else 0


def job_spec(args: argparse.Namespace, workdir: Path, name: str, cpu: float, gpu: float,
             concurrent: int) -> Any:
    from tuning.spec import parse_spec

    return parse_spec({
        "name": name,
        "data": {"rows": args.rows, "fraud_rate": args.fraud_rate, "seed": 0,
                 "ship": "object_store"},
        "search_space": {
            "eta": {"type": "loguniform", "low": 0.03, "high": 0.3},
            "max_depth": {"type": "randint", "low": 4, "high": 10},
            "subsample": {"type": "uniform", "low": 0.6, "high": 1.0},
        },
        "search": {"algorithm": "random", "seed": 0},
        "scheduler": {"type": "fifo"},
        "evaluation": {"cv": 1},
        "training": {"num_boost_round": args.rounds, "report_every": max(1, args.rounds // 5)},
        "budget": {"num_samples": args.trials, "max_concurrent": concurrent},
        "resources": {"cpu": cpu, "gpu": gpu},
        "tracking": {"tracking_uri": f"sqlite:///{workdir}/mlflow.db", "log_model": False},
        "storage": {"path": str(workdir / "tuning_runs")},
    })


def throughput_cell(args: argparse.Namespace, workdir: Path, label: str, cpu: float,
                    gpu: float, concurrent: int) -> dict[str, Any]:
    from tuning.job.lifecycle import run_job

    result = run_job(job_spec(args, workdir, f"gpu-bench-{label}", cpu, gpu, concurrent),
                     progress=False)
    finished = result.count("FINISHED")
    best = result.best.best_value if result.best else float("nan")
    return {"cell": label, "cpu_per_trial": cpu, "gpu_per_trial": gpu, "concurrent": concurrent,
            "trials": len(result.trials), "finished": finished, "wall_s": result.wall_s,
            "trials_per_hour": finished / result.wall_s * 3600, "best_val_aucpr": best}


def quality_check(args: argparse.Namespace) -> dict[str, Any]:
    """Validation AUC-PR of one fixed configuration on the GPU and on the CPU."""
    import xgboost as xgb

    from trainables.data import load_dataset
    from trainables.metrics import average_precision

    data = load_dataset(rows=args.rows, fraud_rate=args.fraud_rate, seed=0)
    positives = int(data.train.y.sum())

    def val_aucpr(device: str, seed: int) -> float:
        dtrain = xgb.QuantileDMatrix(data.train.X, label=data.train.y, max_bin=256,
                                     enable_categorical=True)
        params = {**FIXED_PARAMS, "objective": "binary:logistic", "tree_method": "hist",
                  "device": device, "seed": seed, "verbosity": 0,
                  "scale_pos_weight": (len(data.train.y) - positives) / max(positives, 1)}
        booster = xgb.train(params, dtrain, num_boost_round=args.rounds)
        scores = booster.predict(xgb.DMatrix(data.val.X, enable_categorical=True))
        return float(average_precision(data.val.y, scores))

    cpu = [val_aucpr("cpu", seed) for seed in range(args.noise_seeds)]
    gpu = val_aucpr("cpu" if args.smoke else "cuda", 0)
    spread = statistics.pstdev(cpu) if len(cpu) > 1 else 0.0
    tolerance = max(args.min_tolerance, 3 * spread)
    mean = statistics.fmean(cpu)
    return {"cpu_aucpr": cpu, "gpu_aucpr": gpu, "cpu_mean": mean, "tolerance": tolerance,
            "ok": abs(gpu - mean) <= tolerance}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--fraud-rate", type=float, default=0.002)
    parser.add_argument("--trials", type=int, default=16, help="trials per cell")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--packings", type=int, nargs="+", default=list(PACKINGS),
                        help="trials per GPU to measure")
    parser.add_argument("--cpu-per-trial", type=float, default=1.0)
    parser.add_argument("--noise-seeds", type=int, default=3)
    parser.add_argument("--min-tolerance", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results",
                        help="folder for gpu_throughput.json")
    parser.add_argument("--smoke", action="store_true",
                        help="CPU-only rehearsal with a logical GPU and small data")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows, args.trials, args.rounds = min(args.rows, 20_000), min(args.trials, 4), 20
        args.fraud_rate = max(args.fraud_rate, 0.01)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gpus = gpu_count()
    if gpus == 0 and not args.smoke:
        print("no GPU: nvidia-smi finds no NVIDIA GPU on this machine; nothing to measure "
              "(use --smoke to rehearse the benchmark on the CPU)")
        return 0
    import ray

    cores = os.cpu_count() or 1
    if args.smoke:
        gpus = 1
        os.environ["TUNING_FORCE_CPU"] = "1"  # inherited by the Ray workers started below
        print("SMOKE RUN: one logical GPU, training on the CPU; numbers are not a measurement")
    # address="local": a fresh Ray of this machine, never a cluster that happens to run here.
    ray.init(address="local", num_gpus=gpus, include_dashboard=False, logging_level="WARNING",
             log_to_driver=False)
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
            workdir = Path(tmp)
            cpu_slots = max(1, int(cores // args.cpu_per_trial))
            # Unreported warm-up, so the first cell does not pay first-use costs alone.
            warm = argparse.Namespace(**{**vars(args), "trials": 1, "rounds": 1})
            throughput_cell(warm, workdir, "warm-up", args.cpu_per_trial, 0, 1)
            rows.append(throughput_cell(args, workdir, "cpu-only", args.cpu_per_trial, 0,
                                        cpu_slots))
            for k in args.packings:
                concurrent = min(k * gpus, cpu_slots)
                if concurrent < k * gpus:
                    print(f"note: {k}/GPU limited to {concurrent} concurrent trials by "
                          f"{cores} CPUs at {args.cpu_per_trial} CPU per trial")
                rows.append(throughput_cell(args, workdir, f"{k}-per-gpu", args.cpu_per_trial,
                                            1 / k, concurrent))
        quality = quality_check(args)
    finally:
        ray.shutdown()
    report(args, gpus, cores, rows, quality)
    if not args.smoke:
        args.out.mkdir(parents=True, exist_ok=True)
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        (args.out / "gpu_throughput.json").write_text(json.dumps(
            {"settings": settings, "gpus": gpus, "cores": cores, "cells": rows,
             "quality": quality}, indent=1))
    return 0 if quality["ok"] else 1


def report(args: argparse.Namespace, gpus: int, cores: int, rows: list[dict[str, Any]],
           quality: dict[str, Any]) -> None:
    base = rows[0]["trials_per_hour"]
    print(f"\n{args.rows:,} rows, {args.trials} trials x {args.rounds} rounds per cell; "
          f"{gpus} GPU(s), {cores} CPU cores")
    print(f"{'cell':<12} {'concurrent':>10} {'wall s':>8} {'trials/h':>10} {'vs CPU':>7} "
          f"{'best AUC-PR':>11}")
    for row in rows:
        print(f"{row['cell']:<12} {row['concurrent']:>10} {row['wall_s']:>8.1f} "
              f"{row['trials_per_hour']:>10.0f} {row['trials_per_hour'] / base:>6.2f}x "
              f"{row['best_val_aucpr']:>11.4f}")
    cpu = ", ".join(f"{v:.4f}" for v in quality["cpu_aucpr"])
    verdict = "matches" if quality["ok"] else "DOES NOT match"
    print(f"\nFixed config val AUC-PR: GPU {quality['gpu_aucpr']:.4f}; CPU [{cpu}] "
          f"(mean {quality['cpu_mean']:.4f}); GPU {verdict} CPU within "
          f"±{quality['tolerance']:.4f}")


if __name__ == "__main__":
    sys.exit(main())
