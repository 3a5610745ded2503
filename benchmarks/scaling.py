"""How the project's overheads scale: trial length, concurrency, trial count, searcher.

    python -m benchmarks.scaling                    # all sections (about 10 minutes on 2 cores)
    python -m benchmarks.scaling --sections tpe     # one section
    python -m benchmarks.scaling --quick            # smoke-test sizes

Sections:
  efficiency  Σ trial training s / (search wall × concurrent trials), for 1 and 2
              concurrent trials and trials of about 1, 5 and 20 s of training (FIFO,
              fixed model shape so every trial has the same length).
  trials      per-trial overhead and MLflow driver ms per result for 10, 100, 1000
              trials of a cheap trial (5k rows, 10 rounds, 2 reports; random search,
              FIFO, so the searcher and scheduler add nothing that grows).
  tpe         seconds per ``HyperOptSearch.suggest()`` after 10, 100, 500 completed
              trials (standalone, no Ray trials), with Optuna's TPESampler for reference.

Search wall is ``Tuner.fit`` (``JobResult.wall_s``): Ray is started once for the whole
script, so its start-up is not charged to any cell. Results: tables on stdout,
``benchmarks/results/scaling.json`` and ``benchmarks/results/scaling.md``.
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

from benchmarks.common import RESULTS_DIR, SPEC_PATH, start_local_ray
from benchmarks.project import FitClock

#: Trial length class -> (rows, rounds, trials): rounds chosen for ~1 / 5 / 20 s of
#: single-thread training on 200k rows (depth 6); the table shows the measured length.
LENGTHS = {"~1s": (200_000, 60, 10), "~5s": (200_000, 300, 6), "~20s": (200_000, 1200, 4)}
QUICK_LENGTHS = {"tiny": (20_000, 40, 4), "small": (20_000, 200, 4)}
TRIAL_COUNTS, QUICK_TRIAL_COUNTS = (10, 100, 1000), (10, 30)
TPE_POINTS, QUICK_TPE_POINTS = (10, 100, 500), (10, 50)
#: Fixed model shape for the efficiency cells; only eta is searched.
FIXED_SPACE = {"eta": {"type": "uniform", "low": 0.05, "high": 0.1}, "max_depth": 6,
               "subsample": 0.8, "colsample_bytree": 0.8}


def job_spec(work: str, rows: int, fraud_rate: float, rounds: int, report_every: int,
             trials: int, concurrency: int) -> Any:
    from tuning.spec import load_spec

    return load_spec(SPEC_PATH).with_overrides(**{
        "name": "scaling", "data.rows": rows, "data.fraud_rate": fraud_rate,
        "search_space": FIXED_SPACE, "search.algorithm": "random", "scheduler.type": "fifo",
        "training.num_boost_round": rounds, "training.report_every": report_every,
        "budget.num_samples": trials, "budget.max_concurrent": concurrency,
        "tracking.tracking_uri": f"sqlite:///{work}/mlflow.db", "tracking.log_model": False,
        "storage.path": f"{work}/tuning_runs",
    })


def run_cell(rows: int, fraud_rate: float, rounds: int, report_every: int, trials: int,
             concurrency: int) -> dict[str, Any]:
    """One job through ``run_job``; the figures of its search."""
    from mlflow.tracking import MlflowClient

    from tuning.job.lifecycle import run_job

    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as work:
        spec = job_spec(work, rows, fraud_rate, rounds, report_every, trials, concurrency)
        started, cpu = time.perf_counter(), time.process_time()
        with FitClock() as clock:
            result = run_job(spec, progress=False)
        ended, cpu = time.perf_counter(), time.process_time() - cpu
        runs = MlflowClient(result.tracking_uri).search_runs(
            [result.experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'",
            max_results=50_000)
        train = [float(r.data.metrics.get("train_time_s", 0.0)) for r in runs]
    capacity = result.wall_s * concurrency
    return {
        "rows": rows, "rounds": rounds, "trials": len(result.trials),
        "concurrency": concurrency, "search_wall_s": result.wall_s,
        "job_total_s": ended - started,
        # Before the search: store checks, parent run, tuner; after: flush, refit, outcome.
        "before_search_s": (clock.ended or ended) - started - result.wall_s,
        "after_search_s": ended - (clock.ended or ended),
        "train_s_per_trial": statistics.mean(train) if train else None,
        "efficiency": sum(train) / capacity, "overhead_s": (capacity - sum(train)) / trials,
        "mlflow_ms_per_result": result.mlflow_ms_per_result,
        # Driver CPU (all its threads, whole job): robust to other load on the machine.
        "driver_cpu_s_per_trial": cpu / trials,
        "results": len(result.trials) * -(-rounds // report_every),
        "unlogged_records": result.unlogged_records, "failed": result.count("FAILED"),
    }


def section_efficiency(quick: bool, report_every: int = 10) -> list[dict[str, Any]]:
    rows = []
    for label, (n_rows, rounds, trials) in (QUICK_LENGTHS if quick else LENGTHS).items():
        for concurrency in (1, 2):
            print(f"efficiency: {label} trials, concurrency {concurrency} ...", file=sys.stderr,
                  flush=True)
            rows.append({"length": label, "report_every": report_every,
                         **run_cell(n_rows, 0.01 if quick else 0.002, rounds, report_every,
                                    trials, concurrency)})
    return rows


def section_trials(quick: bool) -> list[dict[str, Any]]:
    rows = []
    for trials in QUICK_TRIAL_COUNTS if quick else TRIAL_COUNTS:
        print(f"trials: {trials} cheap trials ...", file=sys.stderr, flush=True)
        rows.append(run_cell(5_000, 0.02, 10, 5, trials, 2))
    # Fixed costs (first worker start, imports) amortise away; the marginal cost of
    # one more trial, between consecutive rows, is the steady-state overhead.
    for prev, row in zip(rows, rows[1:]):
        extra = row["overhead_s"] * row["trials"] - prev["overhead_s"] * prev["trials"]
        row["marginal_overhead_s"] = extra / (row["trials"] - prev["trials"])
    return rows


def _score(config: dict[str, Any]) -> float:
    """A smooth made-up objective so TPE has structure to model."""
    import math

    return -((math.log(config["eta"]) + 3) ** 2 + (config["max_depth"] - 6) ** 2 / 10
             + (config["subsample"] - 0.8) ** 2)


def section_tpe(quick: bool, window: int = 5) -> list[dict[str, Any]]:
    """Median seconds per suggestion right after n completed trials, n in the points."""
    import optuna
    from ray.tune.search.hyperopt import HyperOptSearch

    from benchmarks.naive_raytune import ray_space
    from benchmarks.optuna_baseline import suggest

    points = QUICK_TPE_POINTS if quick else TPE_POINTS
    last = max(points) + window
    print(f"tpe: {last} suggestions each ...", file=sys.stderr, flush=True)
    searcher = HyperOptSearch(metric="score", mode="max", n_initial_points=10,
                              random_state_seed=0)
    searcher.set_search_properties("score", "max", ray_space())
    hyperopt_s, complete_s = [], []
    for i in range(last):
        started = time.perf_counter()
        config = searcher.suggest(str(i))
        hyperopt_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        searcher.on_trial_complete(str(i), {"score": _score(config)})
        complete_s.append(time.perf_counter() - started)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=10))
    optuna_s = []
    for _ in range(last):
        started = time.perf_counter()
        trial = study.ask()
        config = suggest(trial)
        optuna_s.append(time.perf_counter() - started)
        study.tell(trial, _score(config))
    return [{"completed_trials": n,
             "hyperopt_suggest_ms": 1000 * statistics.median(hyperopt_s[n:n + window]),
             "hyperopt_on_complete_ms": 1000 * statistics.median(complete_s[n:n + window]),
             "optuna_tpe_suggest_ms": 1000 * statistics.median(optuna_s[n:n + window])}
            for n in points]


SECTIONS = {"efficiency": section_efficiency, "trials": section_trials, "tpe": section_tpe}


def markdown_table(rows: list[dict[str, Any]], keys: Sequence[str]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
        return "n/a" if v is None else str(v)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def render(results: dict[str, Any], names: Sequence[str]) -> str:
    """Markdown tables of the named sections present in ``results``."""
    out = []
    for name in names:
        section = name.removesuffix("_quick")
        if section in TABLE_KEYS and isinstance(results.get(name), list):
            label = " (quick)" if name.endswith("_quick") else ""
            table = markdown_table(results[name], TABLE_KEYS[section])
            out.append(f"**{section}**{label}\n\n{table}")
    return "\n".join(out)


TABLE_KEYS = {
    "efficiency": ["length", "concurrency", "trials", "rounds", "train_s_per_trial",
                   "search_wall_s", "efficiency", "overhead_s", "mlflow_ms_per_result"],
    "trials": ["trials", "search_wall_s", "train_s_per_trial", "efficiency", "overhead_s",
               "marginal_overhead_s", "driver_cpu_s_per_trial", "mlflow_ms_per_result",
               "before_search_s", "after_search_s", "unlogged_records"],
    "tpe": ["completed_trials", "hyperopt_suggest_ms", "hyperopt_on_complete_ms",
            "optuna_tpe_suggest_ms"],
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes")
    parser.add_argument("--report-every", type=int, default=10,
                        help="training.report_every of the efficiency cells")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    needs_ray = any(s != "tpe" for s in args.sections)
    if needs_ray:
        start_local_ray(2)
    try:
        for name in args.sections:
            if name == "efficiency":
                results[name] = section_efficiency(args.quick, args.report_every)
            else:
                results[name] = SECTIONS[name](args.quick)
    finally:
        if needs_ray:
            import ray

            ray.shutdown()
    suffix = {"efficiency": f"_every{args.report_every}" if args.report_every != 10 else ""}
    named = {f"{name}{suffix.get(name, '')}{'_quick' if args.quick else ''}": results[name]
             for name in args.sections}
    print(render(named, list(named)))
    args.out.mkdir(parents=True, exist_ok=True)
    # Sections run separately accumulate in one file; quick results are kept apart.
    path = args.out / "scaling.json"
    merged = {**(json.loads(path.read_text()) if path.exists() else {}), **named}
    path.write_text(json.dumps(merged, indent=1))
    (args.out / "scaling.md").write_text(render(merged, list(merged)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
