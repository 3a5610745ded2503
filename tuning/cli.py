"""The ``tuning`` command line: run, resume, validate, list."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from typing import Any, Sequence

logger = logging.getLogger("tuning")

# Further subcommands live in their own modules; each has ``register(subparsers)``,
# which adds its parser and sets ``func`` (a handler taking the args, returning the
# exit code). Handlers raise SpecError / DataError / JobError for one-line errors.
COMMAND_MODULES: tuple[str, ...] = ("tuning.cli_inspect", "tuning.cli_server")

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _add_tracking(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: the spec's, then "
                        "$MLFLOW_TRACKING_URI, then sqlite:///mlflow.db)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tuning", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a tuning job from a YAML spec")
    run.add_argument("spec", help="path to the experiment spec (YAML)")
    run.add_argument("--num-samples", type=int, help="override budget.num_samples")
    run.add_argument("--max-concurrent", type=int, help="override budget.max_concurrent")
    run.add_argument("--address", help="Ray cluster to use: auto, HOST:6379 or ray://HOST:10001 "
                     "(default: start a local Ray)")
    run.add_argument("--experiment", help="MLflow experiment name (default: the spec's name)")
    run.add_argument("--storage", help="override storage.path (Ray Tune's storage_path)")
    run.add_argument("-q", "--quiet", action="store_true", help="no live progress")
    run.add_argument("--offline", action="store_true",
                     help="log nothing to MLflow during the job; `tuning sync` logs it later")
    run.add_argument("--json", action="store_true", help="print the final summary as JSON")
    run.add_argument("--no-report", action="store_true",
                     help="skip the job report (plots + HTML, logged on the parent run)")
    _add_tracking(run)

    resume = sub.add_parser("resume", help="finish a job whose driver stopped")
    resume.add_argument("job", help="job name (newest job of that name) or job folder")
    resume.add_argument("--storage", help="where jobs live (default: tuning_runs)")
    resume.add_argument("--address", help="Ray cluster to use (default: a local Ray)")
    resume.add_argument("-q", "--quiet", action="store_true")
    resume.add_argument("--json", action="store_true")
    resume.add_argument("--no-report", action="store_true", help="skip the job report")
    _add_tracking(resume)

    sync = sub.add_parser("sync", help="replay a job's results into MLflow (after an outage "
                          "or --offline), without duplicating what is there")
    sync.add_argument("job", help="job name (newest job of that name) or job folder")
    sync.add_argument("--storage", help="where jobs live (default: tuning_runs)")
    _add_tracking(sync)

    validate = sub.add_parser("validate", help="check a spec without running it")
    validate.add_argument("spec")

    sub.add_parser("list", help="list searchers, schedulers, trainables and objectives")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


# --------------------------------------------------------------- commands
def cmd_validate(args: argparse.Namespace) -> int:
    import yaml

    from tuning.config import load_spec

    spec = load_spec(args.spec)
    print(f"{args.spec}: OK")
    print(yaml.safe_dump(spec.model_dump(mode="json", exclude_defaults=False), sort_keys=False))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from trainables.objectives import OBJECTIVES
    from trainables.registry import TRAINABLES
    from tuning.schedulers import SCHEDULERS
    from tuning.search import SEARCHERS

    sections = [
        ("searchers (search.algorithm)", {k: v.description for k, v in SEARCHERS.items()}),
        ("schedulers (scheduler.type)", {k: v.description for k, v in SCHEDULERS.items()}),
        ("trainables (trainable)", {k: v for k, v in TRAINABLES.items()}),
        ("objectives (objective.metric)",
         {k: f"[{v.mode}] {v.description}" for k, v in OBJECTIVES.items()}),
    ]
    for title, entries in sections:
        print(title)
        for name, text in entries.items():
            print(f"  {name:<22} {text}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from tuning.config import load_spec
    from tuning.run import run_job

    spec = load_spec(args.spec).with_overrides(**{
        "budget.num_samples": args.num_samples,
        "budget.max_concurrent": args.max_concurrent,
        "tracking.tracking_uri": args.tracking_uri,
        "tracking.experiment": args.experiment,
        "storage.path": args.storage,
    })
    result = run_job(spec, address=args.address, progress=not args.quiet, offline=args.offline)
    _print_result(result, as_json=args.json)
    _report(result, args)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from tuning.run import resume_job

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
        from pathlib import Path

        from tuning.report import report_on_finish

        report = report_on_finish(result.tracking_uri, result.parent_run_id,
                                  Path(result.experiment_dir) / "report")
    except Exception as err:  # noqa: BLE001 - a report must never fail a finished job
        logger.warning("job report failed: %s", err)
        return
    if report is not None and not args.json:
        print(f"Report: {report.html}  (also on the parent run under report/)")


def cmd_sync(args: argparse.Namespace) -> int:
    from tuning.config import DEFAULT_STORAGE
    from tuning.preflight import JobError, check_tracking
    from tuning.state import find_experiment_dir, read_job_state
    from tuning.sync import sync_job

    try:
        folder = find_experiment_dir(args.job, args.storage or DEFAULT_STORAGE)
    except FileNotFoundError as err:
        raise JobError(str(err)) from None
    uri = args.tracking_uri or read_job_state(folder)["tracking_uri"]
    check_tracking(uri)
    report = sync_job(folder, uri)
    print(f"{folder.name}: {report.runs_created} runs created, {report.metric_points} metric "
          f"values logged, {report.statuses_fixed} statuses fixed"
          + (", parent run completed" if report.parent_completed else ""))
    return 0


COMMANDS = {"run": cmd_run, "resume": cmd_resume, "sync": cmd_sync, "validate": cmd_validate, "list": cmd_list}


# ----------------------------------------------------------------- output
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
            from tuning.verdict import summary_lines

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


# ------------------------------------------------------------------- main
def _configure_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("tuning", "trainables"):
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    from trainables.data import DataError
    from tuning.config import SpecError
    from tuning.run import JobError

    args = build_parser().parse_args(argv)
    _configure_logging(args.debug)
    # Progress bars of artifact transfers would interleave with the job's own lines.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    handler = getattr(args, "func", None) or COMMANDS[args.command]
    try:
        return handler(args)
    except (SpecError, DataError) as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except JobError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted: resume with `tuning resume NAME`", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
