"""Search efficiency: which searcher/scheduler reaches a good model soonest?

Same data, space and trial budget for every method, several seeds each:
random+FIFO (the baseline), random+ASHA, TPE+ASHA, GP (FIFO), Optuna's TPE, CMA-ES
and NSGA-II with ASHA, and the two-stage job (random, then TPE on narrowed ranges,
ASHA). Each job is a real ``tuning.run_job`` with MLflow tracking; a trial's finish
time is its child run's end time relative to the parent's start.

Outputs (under ``--out``):
- ``search_efficiency.png``: best-so-far validation AUC-PR against wall time, one
  line per method and seed;
- ``search_efficiency.json``: every curve and the table below;
- the table on stdout: per method, the median time to reach 99% of the best value
  any method found on that seed, as a ratio to random+FIFO's (< 1 is faster), how
  many seeds reached it, and the final best (mean over seeds).

    python benchmarks/search_efficiency.py            # the full comparison (long)
    python benchmarks/search_efficiency.py --quick    # tiny: proves the script works
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

SPACE = {
    "eta": {"type": "loguniform", "low": 0.01, "high": 0.3},
    "max_depth": {"type": "randint", "low": 2, "high": 10},
    "min_child_weight": {"type": "loguniform", "low": 0.5, "high": 20},
    "subsample": {"type": "uniform", "low": 0.5, "high": 1.0},
    "colsample_bytree": {"type": "uniform", "low": 0.5, "high": 1.0},
}
ASHA = {"type": "asha", "grace_period": 1, "reduction_factor": 3}
METHODS: dict[str, dict[str, Any]] = {
    "random+fifo": {"search": {"algorithm": "random"}, "scheduler": {"type": "fifo"}},
    "random+asha": {"search": {"algorithm": "random"}, "scheduler": ASHA},
    "tpe+asha": {"search": {"algorithm": "tpe"}, "scheduler": ASHA},
    "gp": {"search": {"algorithm": "gp"}, "scheduler": {"type": "fifo"}},
    "optuna_tpe+asha": {"search": {"algorithm": "optuna_tpe"}, "scheduler": ASHA},
    "cmaes+asha": {"search": {"algorithm": "cmaes"}, "scheduler": ASHA},
    "nsga2+asha": {"search": {"algorithm": "nsga2"}, "scheduler": ASHA},
    "two_stage": {"search": {"algorithm": "two_stage", "refine_with": "tpe"}, "scheduler": ASHA},
}
BASELINE = "random+fifo"


def job_spec(method: str, seed: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    spec = {
        "name": f"bench-{method.replace('+', '-').replace('_', '-')}-s{seed}",
        "data": {"rows": args.rows, "fraud_rate": args.fraud_rate, "seed": 0},
        "objective": {"metric": "aucpr"},
        "search_space": SPACE,
        "training": {"num_boost_round": args.rounds, "report_every": args.report_every},
        "budget": {"num_samples": args.samples, "max_concurrent": args.concurrent},
        "tracking": {"tracking_uri": f"sqlite:///{root}/mlflow.db", "log_model": False},
        "storage": {"path": str(root / "runs")},
        **{k: dict(v) for k, v in METHODS[method].items()},
    }
    spec["search"].update(seed=seed, n_initial_points=max(2, args.samples // 4))
    return spec


def curve(result: Any) -> list[tuple[float, float]]:
    """(seconds since the job started, best val AUC-PR so far) at each trial's end."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(result.tracking_uri)
    parent = client.get_run(result.parent_run_id)
    children = client.search_runs([result.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    best_of = {t.trial_id: t.best_value for t in result.trials if t.best_value is not None}
    finished = sorted(
        (((c.info.end_time or c.info.start_time) - parent.info.start_time) / 1000,
         best_of[c.data.tags["ray.trial_id"]])
        for c in children if c.data.tags.get("ray.trial_id") in best_of)
    out, best = [], float("-inf")
    for t, v in finished:
        best = max(best, v)
        out.append((t, best))
    return out


def time_to(points: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, v in points if v >= target), None)


def table(curves: dict[str, dict[int, list]], seeds: list[int]) -> list[dict[str, Any]]:
    rows = []
    for method, by_seed in curves.items():
        ratios, times, finals, reached = [], [], [], 0
        for seed in seeds:
            target = 0.99 * max(c[seed][-1][1] for c in curves.values() if c.get(seed))
            t = time_to(by_seed.get(seed, []), target)
            base = time_to(curves[BASELINE].get(seed, []), target)
            finals.append(by_seed[seed][-1][1] if by_seed.get(seed) else float("nan"))
            if t is not None:
                reached += 1
                times.append(t)
                if base:
                    ratios.append(t / base)
        rows.append({
            "method": method,
            "median_time_to_target_s": statistics.median(times) if times else None,
            "ratio_to_random_fifo": statistics.median(ratios) if ratios else None,
            "seeds_reaching_target": f"{reached}/{len(seeds)}",
            "final_best_mean": statistics.fmean(finals),
        })
    return rows


def plot(curves: dict[str, dict[int, list]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (method, by_seed) in enumerate(curves.items()):
        for j, points in enumerate(by_seed.values()):
            if points:
                t, v = zip(*points)
                ax.step(t, v, where="post", color=colours[i % len(colours)], alpha=0.8,
                        label=method if j == 0 else None)
    ax.set_xlabel("wall time since job start (s)")
    ax.set_ylabel("best validation AUC-PR so far")
    ax.set_title("Search efficiency (same data, space and trial budget)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and budget, one seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--fraud-rate", type=float, default=0.005)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--report-every", type=int, default=10)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=None, help="Ray CPUs (default: all)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", default="benchmarks/out")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.rows, args.fraud_rate = 1, 5000, 0.02
        args.rounds, args.samples, args.concurrent = 20, 4, 2

    import logging

    import ray

    from tuning.spec import parse_spec
    from tuning.job.lifecycle import run_job

    logging.basicConfig(level=logging.WARNING)
    # address="local": a private Ray even where another Ray already runs on this machine.
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False,
             logging_level="WARNING", log_to_driver=False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    methods = args.methods.split(",")
    if BASELINE not in methods:
        methods.insert(0, BASELINE)
    curves: dict[str, dict[int, list]] = {m: {} for m in methods}
    walls: dict[str, list[float]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for method in methods:
                started = time.monotonic()
                result = run_job(parse_spec(job_spec(method, seed, args, Path(tmp))),
                                 progress=False)
                walls[method].append(time.monotonic() - started)
                curves[method][seed] = curve(result)
                print(f"seed {seed} {method:<12} best {result.best.best_value:.4f} "
                      f"in {walls[method][-1]:.1f}s ({len(result.trials)} trials)", flush=True)
    ray.shutdown()
    rows = table(curves, seeds)
    plot(curves, out / "search_efficiency.png")
    (out / "search_efficiency.json").write_text(json.dumps(
        {"args": vars(args), "curves": curves, "table": rows, "wall_s": walls}, indent=2))
    print(f"\n{'method':<13} {'t->99% (s)':>10} {'ratio':>7} {'reached':>8} {'final best':>11}")
    for row in rows:
        t, r = row["median_time_to_target_s"], row["ratio_to_random_fifo"]
        print(f"{row['method']:<13} {'-' if t is None else f'{t:.1f}':>10} "
              f"{'-' if r is None else f'{r:.2f}':>7} {row['seeds_reaching_target']:>8} "
              f"{row['final_best_mean']:>11.4f}")
    print(f"\nplot: {out / 'search_efficiency.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
