"""Inspection subcommands: ``tuning report | best | export | runs``.

All of them read the tracking store only (plus the logged spec and model for the
report's test curves), so they work on any job, finished or not, from any machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

import yaml

from tuning.cli.choice import LIMITS, MODEL_SIZE_KEY, SCORING_MS_KEY, choose, pareto_pick, pick
from tuning.report.build import ARTIFACT_DIR, build_report
from tuning.spec import resolve_tracking_uri as default_uri
from tuning.tracking.client import client_for
from tuning.tracking.store import load_job, load_spec_text, parent_runs

__all__ = ["MODEL_SIZE_KEY", "SCORING_MS_KEY", "best_record", "choose", "export_record", "pareto_pick",
           "register"]


def _common(parser: argparse.ArgumentParser, job: bool = True) -> None:
    if job:
        parser.add_argument("job", metavar="NAME_OR_RUN_ID",
                            help="parent run id, job name or experiment name (newest job)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: "
                        "$MLFLOW_TRACKING_URI, then sqlite:///mlflow.db)")


def register(sub: Any) -> None:
    """Add the inspection subcommands to the ``tuning`` parser."""
    report = sub.add_parser("report", help="plots + one HTML page of a job, logged on its "
                            "parent run under report/")
    _common(report)
    report.add_argument("--out", help="local folder (default: reports/<job>-<run id>)")
    report.add_argument("--no-log", action="store_true", help="do not log it on the parent run")
    report.set_defaults(func=cmd_report)

    best = sub.add_parser("best", help="the best trial: params, metrics, threshold, model URI")
    _common(best)
    best.add_argument("--max-fpr", type=float, help="instead: the trial with the best "
                      "validation recall whose FPR at its threshold is <= this")
    best.add_argument("--max-model-size", type=float, metavar="NODES", help="instead: the "
                      "member of a multi-objective job's Pareto set best on its first metric "
                      "whose model has at most this many tree nodes")
    best.add_argument("--max-scoring-ms", type=float, metavar="MS", help="instead: the trial "
                      "best on the first metric whose model scores 1,000 validation rows in at "
                      "most this many ms (from the Pareto set when scoring_ms is an objective)")
    best.add_argument("--json", action="store_true")
    best.set_defaults(func=cmd_best)

    export = sub.add_parser("export", help="best params for a production training job")
    _common(export)
    export.add_argument("--format", choices=("yaml", "json"), default="yaml")
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    export.add_argument("--max-fpr", type=float, help="export the trial `best --max-fpr` picks")
    export.add_argument("--max-model-size", type=float, metavar="NODES",
                        help="export the trial `best --max-model-size` picks")
    export.add_argument("--max-scoring-ms", type=float, metavar="MS",
                        help="export the trial `best --max-scoring-ms` picks")
    export.set_defaults(func=cmd_export)

    runs = sub.add_parser("runs", help="list past jobs in the tracking store")
    _common(runs, job=False)
    runs.add_argument("--experiment", help="only this MLflow experiment")
    runs.add_argument("--limit", type=int, default=50, help="newest N jobs (default 50)")
    runs.set_defaults(func=cmd_runs)


def _limits(args: argparse.Namespace) -> dict[str, float | None]:
    return {name: getattr(args, name, None) for name in LIMITS}


def best_record(job: Any, max_fpr: float | None = None, max_model_size: float | None = None,
                max_scoring_ms: float | None = None) -> dict[str, Any]:
    chosen = pick(job, max_fpr, max_model_size, max_scoring_ms)
    trial, figures = chosen.trial, chosen.figures
    is_refit = job.best is not None and trial.trial_id == job.best.trial_id
    return {
        "job": job.name, "parent_run_id": job.run_id, "tracking_uri": job.tracking_uri,
        "trial_id": trial.trial_id, "child_run_id": trial.run_id, "status": trial.status,
        "selected_by": chosen.selected_by,
        "params": trial.params, "best_round": trial.best_round,
        "threshold": trial.point.get("val_threshold"),
        "validation": figures,
        "test": {k: v for k, v in job.metrics.items() if k.startswith("test_")} if is_refit else {},
        "model_uri": f"runs:/{job.run_id}/model" if is_refit else None,
        "booster_uri": f"runs:/{job.run_id}/booster" if is_refit else None,
    }


# --------------------------------------------------------------- handlers
def cmd_report(args: argparse.Namespace) -> int:
    uri = default_uri(args.tracking_uri)
    result = build_report(uri, args.job, out_dir=args.out, log=not args.no_log)
    print(f"Report: {result.html.resolve()}")
    print(f"Files:  {', '.join(p.name for p in result.files)}")
    for key, why in result.skipped.items():
        print(f"Skipped {key}: {why}")
    if result.logged:
        print(f"Logged on the parent run under {ARTIFACT_DIR}/")
    return 0


def cmd_best(args: argparse.Namespace) -> int:
    job = load_job(default_uri(args.tracking_uri), args.job)
    rec = best_record(job, args.max_fpr, **_limits(args))
    if args.json:
        print(json.dumps(rec, indent=2, default=str))
        return 0
    print(f"Job {rec['job']} (parent run {rec['parent_run_id']})")
    print(f"Trial {rec['trial_id']} [{rec['status']}], selected by {rec['selected_by']}")
    print(f"  child run   {rec['child_run_id']}")
    print(f"  best round  {rec['best_round']}")
    print(f"  threshold   {_fmt(rec['threshold'])}")
    print("Params:")
    for key, value in rec["params"].items():
        print(f"  {key:<24} {_fmt(value)}")
    print("Validation (at the best round):")
    for key, value in rec["validation"].items():
        print(f"  {key:<24} {_fmt(value)}")
    if rec["test"]:
        print("Test (model refit on train+validation):")
        for key, value in sorted(rec["test"].items()):
            print(f"  {key:<24} {_fmt(value)}")
    if rec["model_uri"]:
        print("Load the model:")
        print(f"  import mlflow; mlflow.set_tracking_uri({job.tracking_uri!r})")
        print(f"  model = mlflow.pyfunc.load_model({rec['model_uri']!r})   # raw rows in: score, decision")
        print(f"  booster = mlflow.xgboost.load_model({rec['booster_uri']!r})")
    else:
        option = " ".join([f"{limit.option} {getattr(args, name):g}" for name, limit in LIMITS.items()
                           if getattr(args, name, None) is not None] or [f"--max-fpr {args.max_fpr}"])
        print("No refit model for this trial (the job logged its best trial's); train one "
              f"with `tuning export {args.job} {option}`.")
    return 0


def export_record(job: Any, max_fpr: float | None = None, max_model_size: float | None = None,
                  max_scoring_ms: float | None = None) -> dict[str, Any]:
    """Params for a production training run: fixed training params, then the trial's."""
    trial, figures = choose(job, max_fpr, max_model_size, max_scoring_ms)
    spec = yaml.safe_load(load_spec_text(job)) or {}
    training = spec.get("training") or {}
    params = {"objective": "binary:logistic", "tree_method": "hist",
              "max_bin": training.get("max_bin", 256), **(training.get("params") or {}),
              **{k: v for k, v in trial.params.items() if k != "num_boost_round"}}
    return {
        "source": {"job": job.name, "parent_run_id": job.run_id, "trial_id": trial.trial_id,
                   "child_run_id": trial.run_id, "tracking_uri": job.tracking_uri},
        "objective": {"metric": job.metric, "mode": job.mode, "value": trial.best_value},
        "params": params,
        "num_boost_round": trial.best_round,
        "threshold": trial.point.get("val_threshold"),
        "validation": figures,
    }


def cmd_export(args: argparse.Namespace) -> int:
    job = load_job(default_uri(args.tracking_uri), args.job)
    rec = export_record(job, args.max_fpr, **_limits(args))
    text = (json.dumps(rec, indent=2) + "\n" if args.format == "json"
            else yaml.safe_dump(rec, sort_keys=False))
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    client = client_for(default_uri(args.tracking_uri))
    runs = parent_runs(client, experiment=args.experiment, limit=args.limit)
    if not runs:
        print("no tuning jobs in this tracking store")
        return 0
    print(f"{'name':<24} {'started':<19} {'trials':>6} {'best objective':>22}  "
          f"{'status':<9} run id")
    for run in runs:
        params, metrics = run.data.params, run.data.metrics
        key = f"best_val_{params.get('objective', 'aucpr')}"
        best = f"{key[5:]} {metrics[key]:.4f}" if key in metrics else "-"
        trials = metrics.get("trials_total")
        started = dt.datetime.fromtimestamp(run.info.start_time / 1000)
        print(f"{(run.info.run_name or '')[:24]:<24} {started:%Y-%m-%d %H:%M:%S} "
              f"{'-' if trials is None else int(trials):>6} {best:>22}  {run.info.status:<9} "
              f"{run.info.run_id}")
    return 0


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "-" if value is None else str(value)
