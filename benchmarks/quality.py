"""Model quality: this project's default job vs XGBoost's defaults vs an Optuna TPE search.

    python -m benchmarks.quality            # 3 data sets x 3 splits, 20 trials, 300 rounds
    python -m benchmarks.quality --quick    # claims only, 2 splits, 8 trials

Per data set and split (``data.seed`` drives the stratified split), on the SAME rows:

- **this project**: a default spec (name, data path, target, budget; everything else
  the defaults: default search space, ``evaluation.cv: auto``, baseline trial, in-trial
  early stopping, ASHA) through ``tuning.run_job``; test AUC-PR from
  ``JobResult.test_metrics`` and the tuned-vs-baseline difference from the verdict.
- **XGBoost defaults**: XGBoost's default parameters, ``scale_pos_weight`` =
  negatives/positives; trained on train, early-stopped on validation (AUC-PR every
  ``report_every`` rounds, the project's patience) within the same round budget, then
  refit on train+validation for the rounds found.
- **Optuna TPE**: ``TPESampler(seed=split)`` over ``DEFAULT_SPACE``, the same trial
  budget, each trial K-fold CV on ``Dataset.dev()`` (the project's K and folds) with the
  same early stopping; the best config refit on all non-test rows.

The rows come from ``trainables.data.load_dataset(**spec.dataset_kwargs())`` of the
project's own spec, so splits and preprocessing match exactly. One Ray for the whole
run. Results: a Markdown table on stdout, ``benchmarks/results/quality.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmarks.common import RESULTS_DIR, apply_quick, start_local_ray
from benchmarks.quality_data import QualityData, quality_sets

METHODS = ("XGBoost defaults", "Optuna TPE", "this project")
QUICK = {"trials": 8, "splits": 2}


# --------------------------------------------------------------- the spec
def default_spec(ds: QualityData, seed: int, trials: int, rounds: int, work: Path,
                 cv: int | None = None) -> Any:
    """The user's minimal spec; only tracking/storage go to the temp folder (and, to
    measure what cross-validation buys, ``evaluation.cv`` when ``cv`` is given)."""
    from tuning import parse_spec

    raw: dict[str, Any] = {
        "name": f"quality-{ds.name}-s{seed}",
        "data": {"path": str(ds.path), "target": ds.target, "seed": seed},
        "budget": {"num_samples": trials},
        "tracking": {"tracking_uri": f"sqlite:///{work}/mlflow.db", "log_model": False},
        "storage": {"path": str(work / "tuning_runs")},
    }
    if rounds != 300:  # the default round budget; only smoke tests shrink it
        raw["training"] = {"num_boost_round": rounds}
    if cv is not None:
        raw["evaluation"] = {"cv": cv}
    return parse_spec(raw, source=f"quality:{ds.name}")


# --------------------------------------------------------- shared training
def _parts(X: Any, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple]:
    import xgboost as xgb

    out = []
    for train, val in folds:
        dtrain = xgb.QuantileDMatrix(X.iloc[train], label=y[train], max_bin=256, enable_categorical=True)
        dval = xgb.QuantileDMatrix(X.iloc[val], label=y[val], ref=dtrain, enable_categorical=True)
        out.append((dtrain, dval, y[train], y[val]))
    return out


def early_stopped(params: list[dict[str, Any]], parts: list[tuple], rounds: int, every: int,
                  patience: int | None) -> tuple[float, int]:
    """Boosters in lockstep, one per part; mean validation AUC-PR every ``every`` rounds;
    stop after ``patience`` scorings without a better mean. Returns (best mean, its round)."""
    import xgboost as xgb

    from trainables.metrics import average_precision

    boosters = [xgb.Booster(p, [part[0]]) for p, part in zip(params, parts)]
    best, best_round, since = -1.0, 1, 0
    for i in range(rounds):
        for booster, part in zip(boosters, parts):
            booster.update(part[0], i)
        done = i + 1
        if done % every and done < rounds:
            continue
        value = float(np.mean([average_precision(part[3], b.predict(part[1]))
                               for b, part in zip(boosters, parts)]))
        if value > best:
            best, best_round, since = value, done, 0
        else:
            since += 1
            if patience is not None and since >= patience:
                break
    return best, best_round


def refit_test(data: Any, config: dict[str, Any], settings: Any, rounds: int, nthread: int) -> float:
    """``config`` trained on all non-test rows for ``rounds`` rounds; test AUC-PR."""
    import xgboost as xgb

    from trainables.metrics import average_precision
    from trainables.xgboost_fraud import xgb_params

    dev = data.dev()
    dtrain = xgb.QuantileDMatrix(dev.X, label=dev.y, max_bin=256, enable_categorical=True)
    params = xgb_params(config, settings, data, nthread, "cpu", y_train=dev.y)
    booster = xgb.train(params, dtrain, num_boost_round=max(1, rounds))
    return float(average_precision(data.test.y, booster.predict(
        xgb.DMatrix(data.test.X, enable_categorical=True))))


# ----------------------------------------------------------------- methods
def run_project(spec: Any) -> dict[str, Any]:
    from tuning import run_job

    started = time.perf_counter()
    result = run_job(spec, progress=False)
    wall = time.perf_counter() - started
    base = (result.verdict or {}).get("baseline") or {}
    return {"test_aucpr": float(result.test_metrics["aucpr"]), "wall_s": wall,
            "search_s": result.wall_s, "trials": len(result.trials),
            "cv_folds": (result.verdict or {}).get("cv_folds"),
            "minus_baseline": base.get("aucpr_minus_baseline"),
            "baseline_aucpr": base.get("baseline_aucpr"),
            "baseline_interval": base.get("interval"), "baseline_chosen": base.get("chosen"),
            "best_config": result.best.config if result.best else None,
            "best_round": result.best.best_round if result.best else None}


def run_defaults(data: Any, settings: Any, cores: int) -> dict[str, Any]:
    """XGBoost's defaults, early-stopped on the validation split, refit on train+validation."""
    from trainables.xgboost_fraud import xgb_params

    started = time.perf_counter()
    hold = dataclasses.replace(settings, cv_folds=1)
    dev, n_train = data.dev(), len(data.train.y)  # dev rows: train, then validation
    parts = _parts(dev.X, dev.y, [(np.arange(n_train), n_train + np.arange(len(data.val.y)))])
    params = [xgb_params({}, hold, data, cores, "cpu", y_train=parts[0][2])]
    _, rounds = early_stopped(params, parts, settings.num_boost_round, settings.report_every,
                              settings.early_stopping_reports)
    test = refit_test(data, {}, hold, rounds, cores)
    return {"test_aucpr": test, "wall_s": time.perf_counter() - started, "best_round": rounds}


def suggest(trial: Any) -> dict[str, Any]:
    """``DEFAULT_SPACE`` as Optuna suggestions (randint's upper bound excluded)."""
    from trainables.default_space import DEFAULT_SPACE

    out: dict[str, Any] = {}
    for name, p in DEFAULT_SPACE.items():
        kind = p["type"]
        if kind in ("uniform", "loguniform"):
            out[name] = trial.suggest_float(name, p["low"], p["high"], log=kind == "loguniform")
        elif kind == "randint":
            out[name] = trial.suggest_int(name, int(p["low"]), int(p["high"]) - 1)
        elif kind == "choice":
            out[name] = trial.suggest_categorical(name, list(p["values"]))
        else:
            raise ValueError(f"DEFAULT_SPACE.{name}: type {kind!r} not mapped to Optuna")
    return out


def run_optuna(data: Any, settings: Any, trials: int, seed: int, cores: int) -> dict[str, Any]:
    """TPE over the default space, K-fold CV per trial (the project's folds), refit on dev."""
    import optuna

    from trainables.folds import make_folds
    from trainables.xgboost_fraud import xgb_params

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    dev = data.dev()
    k = settings.cv_folds
    if k > 1:
        folds = make_folds(dev.y, k, seed=settings.seed, groups=dev.groups,
                           times=dev.times if settings.time_folds else None)
    else:
        folds = [(np.arange(len(data.train.y)), len(data.train.y) + np.arange(len(data.val.y)))]
    parts = _parts(dev.X, dev.y, folds)
    rounds_of: dict[int, int] = {}

    def objective(trial: Any) -> float:
        config = suggest(trial)
        params = [xgb_params(config, settings, data, 1, "cpu", y_train=p[2]) for p in parts]
        value, rounds_of[trial.number] = early_stopped(
            params, parts, settings.num_boost_round, settings.report_every,
            settings.early_stopping_reports)
        return value

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials, n_jobs=cores)
    best = study.best_trial
    test = refit_test(data, dict(best.params), settings, rounds_of[best.number], cores)
    return {"test_aucpr": test, "wall_s": time.perf_counter() - started,
            "best_val": best.value, "best_round": rounds_of[best.number]}


# ----------------------------------------------------------------- one cell
def run_split(ds: QualityData, seed: int, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    from trainables.data import load_dataset
    from tuning.job.tuner import train_settings

    spec = default_spec(ds, seed, args.trials, args.rounds, work, getattr(args, "cv", None))
    data = load_dataset(**spec.dataset_kwargs())
    settings = train_settings(spec, data)
    summary = data.summary()
    common = {"data": ds.name, "seed": seed, "cv_folds": settings.cv_folds,
              "rows": sum(summary[f"{s}_rows"] for s in ("train", "val", "test")),
              "positives": sum(summary[f"{s}_positives"] for s in ("train", "val", "test")),
              "test_positives": summary["test_positives"], "features": summary["n_features"],
              "categorical": summary["n_categorical"]}
    out = []
    calls = ((METHODS[0], lambda: run_defaults(data, settings, args.cores)),
             (METHODS[1], lambda: run_optuna(data, settings, args.trials, seed, args.cores)),
             (METHODS[2], lambda: run_project(spec)))
    for method, call in calls[2:] if getattr(args, "project_only", False) else calls:
        _log(f"{ds.name} split {seed}: {method} ...")
        record = {**common, "method": method, **call()}
        _log(f"{ds.name} split {seed}: {method} test AUC-PR {record['test_aucpr']:.4f} "
             f"in {record['wall_s']:.1f}s")
        out.append(record)
    return out


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ summary
def _mean_sd(values: list[float], fmt: str = "{:.4f}") -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{fmt.format(statistics.mean(values))} ± {sd:.4f}"


def markdown(rows: list[dict[str, Any]], title: str) -> str:
    """Per data set: one line per method (mean ± sd over splits), and the paired figures."""
    head = ["data set", "rows (positives)", "CV folds", "method", "splits", "test AUC-PR mean ± sd",
            "median", "Δ vs XGBoost defaults (paired mean)", "wall s (mean)"]
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    sets = list(dict.fromkeys(r["data"] for r in rows))
    notes = []
    for name in sets:
        mine = [r for r in rows if r["data"] == name]
        first = mine[0]
        defaults = {r["seed"]: r["test_aucpr"] for r in mine if r["method"] == METHODS[0]}
        for method in METHODS:
            got = [r for r in mine if r["method"] == method]
            if not got:
                continue
            scores = [r["test_aucpr"] for r in got]
            delta = ("–" if method == METHODS[0] or not defaults else
                     _mean_sd([r["test_aucpr"] - defaults[r["seed"]] for r in got if r["seed"] in defaults],
                              "{:+.4f}"))
            lines.append("| " + " | ".join([
                name, f"{first['rows']:,} ({first['positives']})", str(first["cv_folds"]), method,
                str(len(got)), _mean_sd(scores), f"{statistics.median(scores):.4f}", delta,
                f"{statistics.mean(r['wall_s'] for r in got):.1f}"]) + " |")
        project = [r for r in mine if r["method"] == METHODS[2]]
        if project:
            diffs = [r["minus_baseline"] for r in project]
            chosen = sum(bool(r["baseline_chosen"]) for r in project)
            covers = sum(1 for r in project if r["baseline_interval"]
                         and r["baseline_interval"][0] <= 0 <= r["baseline_interval"][1])
            per = ", ".join("n/a" if d is None else f"{d:+.4f}" for d in diffs)
            notes.append(f"- {name}: project tuned − its baseline trial (verdict, test AUC-PR): "
                         f"{_mean_sd(diffs, '{:+.4f}')} (per split {per}); baseline chosen in "
                         f"{chosen}/{len(project)}; paired 95% interval covers 0 in "
                         f"{covers}/{len(project)}; test positives per split "
                         f"{first['test_positives']}")
    return "\n".join(lines + [""] + notes) + "\n"


# --------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="claims only, 2 splits, 8 trials")
    parser.add_argument("--splits", type=int, default=3, help="data seeds 0..N-1")
    parser.add_argument("--trials", type=int, default=20, help="trials per tuned method")
    parser.add_argument("--rounds", type=int, default=300, help="round budget (project default 300)")
    parser.add_argument("--rows", type=int, default=15_000, help="rows of each synthetic file")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--cv", type=int, default=None,
                        help="force evaluation.cv for this project's job (default: auto)")
    parser.add_argument("--project-only", action="store_true",
                        help="run only this project's job (with --cv: what CV buys)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    apply_quick(args, parser, QUICK)
    import ray

    started_ray = not ray.is_initialized()
    if started_ray:
        start_local_ray(args.cores)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
            work = Path(tmp)
            for ds in quality_sets(work / "data", quick=args.quick, rows=args.rows):
                for seed in range(args.splits):
                    rows += run_split(ds, seed, args, work)
    finally:
        if started_ray:
            ray.shutdown()
    total = time.perf_counter() - t0
    title = (f"{args.splits} split(s) per data set, {args.trials} trials per tuned method, "
             f"{args.rounds} rounds, {args.cores} cores{' (quick)' if args.quick else ''}; "
             f"whole run {total:.0f} s")
    table = markdown(rows, title)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quality.json").write_text(json.dumps(
        {"settings": vars(args) | {"out": str(args.out)}, "total_s": total, "runs": rows},
        indent=1, default=str))
    (args.out / "quality.md").write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
