"""Search efficiency: which searcher reaches a good model soonest, on two data sets?

Same data, space and trial budget for every method, several searcher seeds each:
random+ASHA (the baseline), random+FIFO, HyperOpt TPE+ASHA (the default), GP (FIFO),
Optuna's TPE, CMA-ES, QMC (Sobol) and NSGA-II with ASHA, and the two-stage job (random,
then TPE on narrowed ranges, ASHA). Two data sets: ``synthetic`` (generated rows, one
validation split, ``evaluation.cv: 1``) and ``claims`` (the shared
``insurance_claims.csv``, read in place, 5-fold cross-validated trials). Each job is a
real ``tuning.run_job`` with MLflow tracking; a trial's finish time is its child run's
end time relative to the parent's start.

Target, per data set and seed: the final best validation AUC-PR of random+ASHA on that
seed (the question "how soon does a searcher reach what random search reaches with the
whole budget?"). The ratio is the method's time to that target over random+ASHA's own
time to it, on the same seed; a method that never reaches it counts as slower than any
that does (the ratio is infinite), so medians and quartiles stay honest.

Outputs (under ``--out``), rewritten after every job so a run cut short keeps its data:
- ``search_efficiency.json``: every curve, wall time and the table;
- ``search_efficiency.md``: the table; ``search_efficiency.png``: the plot
  (with ``benchmarks.search_latency`` rows, when ``--latency`` names their JSON).

    python -m benchmarks.search_efficiency                # 5 seeds x 2 data sets (about an hour)
    python -m benchmarks.search_efficiency --quick        # tiny: proves the script works
"""

from __future__ import annotations

import argparse
import json
import math
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
    "random+asha": {"search": {"algorithm": "random"}, "scheduler": ASHA},
    "random+fifo": {"search": {"algorithm": "random"}, "scheduler": {"type": "fifo"}},
    "tpe+asha": {"search": {"algorithm": "tpe"}, "scheduler": ASHA},
    "gp": {"search": {"algorithm": "gp"}, "scheduler": {"type": "fifo"}},
    "optuna_tpe+asha": {"search": {"algorithm": "optuna_tpe"}, "scheduler": ASHA},
    "cmaes+asha": {"search": {"algorithm": "cmaes"}, "scheduler": ASHA},
    "qmc+asha": {"search": {"algorithm": "qmc"}, "scheduler": ASHA},
    "nsga2+asha": {"search": {"algorithm": "nsga2"}, "scheduler": ASHA},
    "two_stage": {"search": {"algorithm": "two_stage", "refine_with": "tpe"}, "scheduler": ASHA},
}
BASELINE = "random+asha"
DATASETS = ("synthetic", "claims")


def data_section(dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    """The ``data:`` and ``evaluation:`` sections of a data set (data seed 0 throughout)."""
    if dataset == "claims":
        from benchmarks.quality_data import CLAIMS

        return {"data": {"path": str(CLAIMS), "target": "fraud_reported", "seed": 0},
                "evaluation": {"cv": 5}}
    return {"data": {"rows": args.rows, "fraud_rate": args.fraud_rate, "seed": 0},
            "evaluation": {"cv": 1}}


def job_spec(method: str, seed: int, args: argparse.Namespace, root: Path,
             dataset: str = "synthetic") -> dict[str, Any]:
    if method in METHODS:
        methods = METHODS[method]
    else:  # a bare searcher name (benchmarks.search_latency builds those)
        methods = {"search": {"algorithm": method}, "scheduler": ASHA}
    spec = {
        "name": f"bench-{dataset}-{method.replace('+', '-').replace('_', '-')}-s{seed}",
        **data_section(dataset, args),
        "objective": {"metric": "aucpr"},
        "search_space": SPACE,
        "training": {"num_boost_round": args.rounds, "report_every": args.report_every},
        "budget": {"num_samples": args.samples, "max_concurrent": args.concurrent},
        "tracking": {"tracking_uri": f"sqlite:///{root}/mlflow.db", "log_model": False},
        "storage": {"path": str(root / "runs")},
        **{k: dict(v) for k, v in methods.items()},
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


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated quantile of sorted-able values that may hold ``inf``."""
    values = sorted(values)
    pos = q * (len(values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    if math.isinf(values[hi]) and (hi != lo or math.isinf(values[lo])):
        return math.inf
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def ratios(by_method: dict[str, dict[int, list]], method: str) -> dict[int, float]:
    """Per seed: time to random+ASHA's final best, method / random+ASHA (inf: never)."""
    out = {}
    for seed, base_curve in by_method.get(BASELINE, {}).items():
        points = by_method.get(method, {}).get(seed)
        if not base_curve or not points:
            continue
        target = base_curve[-1][1]
        base, t = time_to(base_curve, target), time_to(points, target)
        out[seed] = math.inf if t is None else t / base
    return out


def table(curves: dict[str, dict[str, dict[int, list]]],
          walls: dict[str, dict[str, dict[int, float]]]) -> list[dict[str, Any]]:
    rows = []
    for dataset, by_method in curves.items():
        for method, by_seed in by_method.items():
            done = {s: c for s, c in by_seed.items() if c}
            if not done:
                continue
            per_seed = ratios(by_method, method)
            r = list(per_seed.values())
            finals = [c[-1][1] for c in done.values()]
            times = [time_to(done[s], by_method[BASELINE][s][-1][1]) for s in per_seed]
            base_final = {s: c[-1][1] for s, c in by_method.get(BASELINE, {}).items() if c}
            vs = [(done[s][-1][1] > base_final[s] + 1e-9) - (done[s][-1][1] < base_final[s] - 1e-9)
                  for s in done if s in base_final]
            rows.append({
                "data": dataset, "method": method, "seeds": len(done),
                "ratio_per_seed": per_seed,
                "ratio_median": quantile(r, 0.5) if r else None,
                "ratio_q1": quantile(r, 0.25) if r else None,
                "ratio_q3": quantile(r, 0.75) if r else None,
                "ratio_min": min(r) if r else None, "ratio_max": max(r) if r else None,
                "reached": f"{sum(1 for x in r if not math.isinf(x))}/{len(r)}",
                "time_to_target_median_s": (statistics.median([t for t in times if t is not None])
                                            if any(t is not None for t in times) else None),
                "final_best_mean": statistics.fmean(finals),
                "final_best_sd": statistics.stdev(finals) if len(finals) > 1 else 0.0,
                "vs_baseline": f"{vs.count(1)}/{vs.count(0)}/{vs.count(-1)}",
                "wall_median_s": statistics.median(walls[dataset][method].values()),
            })
    return rows


def _fmt(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else ("∞" if math.isinf(x) else f"{x:.{digits}f}")


def markdown(rows: list[dict[str, Any]], title: str) -> str:
    head = ["data set", "method", "seeds", "time to target / random+ASHA: median (IQR)",
            "min–max", "reached", "final best val AUC-PR (mean ± sd)",
            "final best vs random+ASHA, seeds higher/equal/lower", "job wall s (median)"]
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["data"], r["method"], str(r["seeds"]),
            f"{_fmt(r['ratio_median'])} ({_fmt(r['ratio_q1'])}–{_fmt(r['ratio_q3'])})",
            f"{_fmt(r['ratio_min'])}–{_fmt(r['ratio_max'])}", r["reached"],
            f"{r['final_best_mean']:.4f} ± {r['final_best_sd']:.4f}", r["vs_baseline"],
            f"{r['wall_median_s']:.1f}"]) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], latency: list[dict[str, Any]] | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["data"] for r in rows))
    panels = len(datasets) + (1 if latency else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.8), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        mine = [r for r in rows if r["data"] == dataset]
        top = max([v for r in mine for v in r["ratio_per_seed"].values() if not math.isinf(v)]
                  + [1.0]) * 2
        for i, r in enumerate(mine):
            values = [top if math.isinf(v) else v for v in r["ratio_per_seed"].values()]
            ax.scatter([i] * len(values), values, alpha=0.6, s=22,
                       marker="o", color="tab:blue")
            if r["ratio_median"] is not None:
                ax.hlines(min(r["ratio_median"], top), i - 0.3, i + 0.3, color="black")
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.axhline(top, color="tab:red", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_xticks(range(len(mine)), [r["method"] for r in mine], rotation=45, ha="right")
        ax.set_ylabel("time to random+ASHA's final best, ratio (log)")
        ax.set_title(f"{dataset}: seeds (dots), median (bar), red line: not reached", fontsize=10)
    if latency:
        ax = axes[0][-1]
        for name in dict.fromkeys(r["searcher"] for r in latency):
            pts = sorted((r["finished"], r["ms"], r.get("extrapolated", False))
                         for r in latency if r["searcher"] == name and r["ms"])
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
            ext = [p for p in pts if p[2]]
            if ext:
                ax.scatter([p[0] for p in ext], [p[1] for p in ext], marker="x", s=80,
                           color="black", zorder=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("finished trials")
        ax.set_ylabel("ms per suggest() (x: extrapolated)")
        ax.set_title("suggestion latency, in-process")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _load(path: Path) -> tuple[dict, dict]:
    """Curves and walls of an earlier (partial) run, seeds back to ints."""
    saved = json.loads(path.read_text())
    curves = {d: {m: {int(s): c for s, c in by.items()} for m, by in bm.items()}
              for d, bm in saved["curves"].items()}
    walls = {d: {m: {int(s): w for s, w in by.items()} for m, by in bm.items()}
             for d, bm in saved["wall_s"].items()}
    return curves, walls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and budget, one seed")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--rows", type=int, default=20_000, help="synthetic rows")
    parser.add_argument("--fraud-rate", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--report-every", type=int, default=10)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=None, help="Ray CPUs (default: all)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--latency", type=Path, default=None,
                        help="JSON of benchmarks.search_latency, drawn in the plot")
    parser.add_argument("--resume", action="store_true",
                        help="keep the jobs already in --out/search_efficiency.json")
    parser.add_argument("--plot-only", action="store_true", help="redraw from the saved JSON")
    parser.add_argument("--out", default="benchmarks/out")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.rows, args.fraud_rate, args.datasets = 1, 5000, 0.02, ["synthetic"]
        args.rounds, args.samples, args.concurrent = 20, 4, 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "search_efficiency.json"
    methods = args.methods.split(",")
    if BASELINE not in methods:
        methods.insert(0, BASELINE)
    curves: dict = {d: {m: {} for m in methods} for d in args.datasets}
    walls: dict = {d: {m: {} for m in methods} for d in args.datasets}
    if (args.resume or args.plot_only) and saved.exists():
        old_c, old_w = _load(saved)
        for d in old_c:
            curves.setdefault(d, {}).update(old_c[d])
            walls.setdefault(d, {}).update(old_w[d])
    latency = json.loads(args.latency.read_text()) if args.latency else None
    title = (f"{args.seeds} seeds; synthetic {args.rows:,} rows at {args.fraud_rate:.1%} fraud "
             f"(cv 1), claims 1,000 rows (cv 5); {args.samples} trials of up to {args.rounds} "
             f"rounds, {args.concurrent} at a time")

    def save() -> str:
        rows = table(curves, walls)
        text = markdown(rows, title)
        saved.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                     "curves": curves, "wall_s": walls, "table": rows},
                                    indent=1, default=str))
        (out / "search_efficiency.md").write_text(text)
        if rows:
            plot(rows, latency, out / "search_efficiency.png")
        return text

    if not args.plot_only:
        _run(args, methods, curves, walls, save)
    print(save())
    return 0


def _run(args: argparse.Namespace, methods: list[str], curves: dict, walls: dict,
         save: Any) -> None:
    import logging

    import ray

    from tuning.job.lifecycle import run_job
    from tuning.spec import parse_spec

    logging.basicConfig(level=logging.WARNING)
    # address="local": a private Ray even where another Ray already runs on this machine.
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False,
             logging_level="WARNING", log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for seed in range(args.seeds):
                for dataset in args.datasets:
                    for method in methods:
                        if curves[dataset].get(method, {}).get(seed):
                            continue
                        started = time.monotonic()
                        result = run_job(parse_spec(job_spec(method, seed, args, Path(tmp),
                                                             dataset)), progress=False)
                        wall = time.monotonic() - started
                        walls[dataset].setdefault(method, {})[seed] = wall
                        curves[dataset].setdefault(method, {})[seed] = curve(result)
                        print(f"seed {seed} {dataset} {method:<16} best "
                              f"{result.best.best_value:.4f} in {wall:.1f}s "
                              f"({len(result.trials)} trials)", flush=True)
                        save()
    finally:
        ray.shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
