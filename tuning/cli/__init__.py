"""The ``tuning`` command line: run, resume, validate, list."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from typing import Callable, Sequence

import yaml

from trainables.objectives import OBJECTIVES
from trainables.registry import TRAINABLES
from tuning.cli import inspection, jobs, predict, server
from tuning.errors import DataError, JobError, SpecError
from tuning.schedule.registry import SCHEDULERS
from tuning.search.registry import SEARCHERS
from tuning.spec import load_spec

logger = logging.getLogger("tuning")

# Further subcommands live in their own modules; each has ``register(subparsers)``,
# which adds its parser and sets ``func`` (a handler taking the args, returning the
# exit code). Handlers raise SpecError / DataError / JobError for one-line errors.
# Modules here import Ray and MLflow only inside the handlers that need them, so
# that `tuning validate` and `tuning list` stay fast.
COMMAND_MODULES = (inspection, predict, server)

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
        module.register(sub)
    return parser


# --------------------------------------------------------------- commands
def cmd_validate(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    print(f"{args.spec}: OK")
    print(yaml.safe_dump(spec.model_dump(mode="json", exclude_defaults=False), sort_keys=False))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
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


COMMANDS = {"run": jobs.cmd_run, "resume": jobs.cmd_resume, "sync": jobs.cmd_sync,
            "validate": cmd_validate, "list": cmd_list}


# ------------------------------------------------------------------- main
def _configure_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("tuning", "trainables"):
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # argv None: the process's own command line (``tuning ...``), which ends with this call.
    args.owns_process = argv is None
    _configure_logging(args.debug)
    # Progress bars of artifact transfers would interleave with the job's own lines.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    handler = getattr(args, "func", None) or COMMANDS[args.command]
    try:
        return _run(handler, args)
    finally:
        if args.owns_process:
            # Nothing is left to free: spare the interpreter's exit a full garbage
            # collection over every imported module (~3 s after a job on 2 cores).
            gc.freeze()


def _run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """The handler's exit code; the errors users can fix as one line."""
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
