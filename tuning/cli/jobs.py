"""The job commands: ``tuning run | resume | sync`` and the summary they print."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from tuning.job.verdict import summary_lines
from tuning.spec import DEFAULT_STORAGE, load_spec

logger = logging.getLogger("tuning")


def cmd_run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec).with_overrides(**{
        "budget.num_samples": args.num_samples,
        "budget.max_concurrent": args.max_concurrent,
        "tracking.tracking_uri": args.tracking_uri,
        "tracking.experiment": args.experiment,
        "storage.path": args.storage,
    })
    # Bad data fails here, before anything starts. Then a local Ray starts in the
    # background while the job's modules are imported (MLflow, XGBoost: seconds) and
    # the tracking store is checked; run_job takes the start over.
    from tuning.job.preflight import load_data
    from tuning.job.warmup import start_ray

    data = load_data(spec)
    ray_start = start_ray(args.address, None if args.offline else spec.tracking_uri())
    from tuning.job.lifecycle import run_job  # heavy: Ray Tune, MLflow, XGBoost

    result = run_job(spec, address=args.address, progress=not args.quiet, offline=args.offline,
                     data=data)
    _print_result(result, as_json=args.json)
    _report(result, args)
    _stop_own_ray(ray_start, args)
    return 0


def _stop_own_ray(ray_start: Any, args: argparse.Namespace) -> None:
    """Shut down the local Ray this command started, once nothing else runs; only when the
    command is the whole process (a caller of ``main(argv)`` keeps its Ray).

    Not in a background thread while the summary and the report are written (that saved
    ~2 s): an ``ObjectRef`` the main thread frees after the shutdown (the garbage
    collector runs while the report is built) makes Ray's core worker end the process
    with exit code 1, after a finished job and before its report (seen in a benchmark).
    """
    if not getattr(args, "owns_process", False) or ray_start is None or not ray_start.started:
        return
    import ray

    ray.shutdown()


def cmd_resume(args: argparse.Namespace) -> int:
    from tuning.job.lifecycle import resume_job  # heavy: Ray, MLflow

    result = resume_job(args.job, storage=args.storage, tracking_uri=args.tracking_uri,
                        address=args.address, progress=not args.quiet)
    _print_result(result, as_json=args.json)
    _report(result, args)
    return 0


def _report(result: Any, args: argparse.Namespace) -> None:
    """Write the job report and log it on the parent run; a failure only warns."""
    if args.no_report or not result.parent_run_id or result.unlogged_records < 0:
        return  # asked not to, or an offline job: nothing in MLflow to report on yet
    try:
        from tuning.report.build import report_on_finish  # heavy: MLflow, matplotlib, plotly

        report = report_on_finish(result.tracking_uri, result.parent_run_id,
                                  Path(result.experiment_dir) / "report")
    except Exception as err:  # noqa: BLE001 - a report must never fail a finished job
        logger.warning("job report failed: %s", err)
        return
    if report is not None and not args.json:
        print(f"Report: {report.html}  (also on the parent run under report/)")


def cmd_sync(args: argparse.Namespace) -> int:
    from tuning.job.state import JobState, find_experiment_dir
    from tuning.job.sync import sync_job  # heavy: MLflow, XGBoost
    from tuning.tracking.client import check_tracking

    folder = find_experiment_dir(args.job, args.storage or DEFAULT_STORAGE)
    uri = args.tracking_uri or JobState.read(folder).tracking_uri
    check_tracking(uri)
    report = sync_job(folder, uri)
    print(f"{folder.name}: {report.runs_created} runs created, {report.metric_points} metric "
          f"values logged, {report.statuses_fixed} statuses fixed"
          + (", parent run completed" if report.parent_completed else ""))
    return 0


def summary_dict(result: Any) -> dict[str, Any]:
    best = result.best
    return {
        "name": result.name,
        "parent_run_id": result.parent_run_id,
        "experiment_id": result.experiment_id,
        "tracking_uri": result.tracking_uri,
        "experiment_dir": result.experiment_dir,
        "wall_s": round(result.wall_s, 1),
        "trials": {"total": len(result.trials), "finished": result.count("FINISHED"),
                   "stopped_early": result.count("KILLED"), "failed": result.count("FAILED")},
        "metric": result.metric,
        "best": None if best is None else {
            "trial_id": best.trial_id, "value": best.best_value, "round": best.best_round,
            "threshold": best.threshold, "config": best.config,
        },
        "test": result.test_metrics,
        "test_intervals": (result.verdict or {}).get("intervals", {}),
        "unlogged_records": result.unlogged_records,
        "mlflow_driver_ms_per_result": round(result.mlflow_ms_per_result, 3),
    }


def _print_result(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary_dict(result), indent=2, default=str))
        return
    ranked = sorted((t for t in result.trials if t.best_value is not None),
                    key=lambda t: t.best_value, reverse=result.mode == "max")
    print(f"\nJob {result.name}: {len(result.trials)} trials in {result.wall_s:.1f}s "
          f"({result.count('FINISHED')} finished, {result.count('KILLED')} stopped early, "
          f"{result.count('FAILED')} failed)")
    print(f"\nTop trials by {result.metric}:")
    names = sorted({k for t in ranked[:5] for k in t.config})
    header = f"  {'trial':<12} {'status':<9} {result.metric:>12} {'round':>6}  " + "  ".join(
        f"{n[:12]:>12}" for n in names)
    print(header)
    for t in ranked[:5]:
        values = "  ".join(f"{_fmt(t.config.get(n)):>12}" for n in names)
        print(f"  {t.trial_id:<12} {t.status:<9} {t.best_value:>12.4f} {t.best_round or 0:>6}  "
              f"{values}")
    if result.best is not None:
        best = result.best
        print(f"\nBest trial {best.trial_id}: {result.metric} = {best.best_value:.4f} at round "
              f"{best.best_round}, threshold {_fmt(best.threshold)}")
        if result.verdict is not None:
            print("\n".join(summary_lines(result.verdict)))
    if result.unlogged_records < 0:
        print(f"\nOffline job: nothing was logged. Log it with: tuning sync {result.experiment_dir}")
        return
    if result.unlogged_records:
        print(f"\nWARNING: {result.unlogged_records} MLflow records could not be written; "
              f"when the store is back run: tuning sync {result.experiment_dir}")
    print(f"\nMLflow parent run: {result.parent_run_id} (experiment {result.experiment_id})")
    print(f"Browse it: mlflow ui --backend-store-uri {result.tracking_uri} --host 127.0.0.1 "
          f"--port 5000   (or: make ui)")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
