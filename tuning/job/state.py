"""What a job keeps in its folder so that ``tuning resume`` and ``tuning sync`` can
finish it: one typed :class:`JobState`, written as ``tuning_state.json``.

A two-stage job (``search.algorithm: two_stage``) runs one Ray Tune experiment per
stage, in ``<job>/stage1`` and ``<job>/stage2``: the state records the stage running
(``stage``), each started stage's Tune experiment (``stage_paths``), and ``tune_path``
is the running stage's (what ``Tuner.restore`` reads). :func:`tune_dirs` lists the
local folders holding a job's Tune files, whichever layout the job has.

The file carries a format version. A folder written before versions existed
(format 1: the same keys, no ``version``) is read as it is; a newer format or a
damaged file is a one-line :class:`~tuning.errors.StateError` saying why.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tuning.errors import StateError
from tuning.job.results import TrialSummary

STATE_FILE = "tuning_state.json"
STATE_VERSION = 2
RUNNING, FINISHED = "RUNNING", "FINISHED"


@dataclass
class Outcome:
    """How a finished job ended (what the parent run gets at the end)."""

    best: TrialSummary | None
    test_metrics: dict[str, float]
    verdict: dict[str, Any] | None
    counts: dict[str, int]
    stop_reason: str
    log_model: bool

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Outcome:
        best = raw.get("best")
        return cls(best=TrialSummary.from_dict(best) if best else None,
                   test_metrics=dict(raw.get("test_metrics") or {}), verdict=raw.get("verdict"),
                   counts=dict(raw.get("counts") or {}), stop_reason=raw.get("stop_reason", ""),
                   log_model=bool(raw.get("log_model", False)))


@dataclass
class JobState:
    """The resume information of one job folder."""

    spec: dict[str, Any]  # the validated spec, as JSON
    tracking_uri: str
    experiment_id: str | None
    parent_run_id: str | None
    status: str  # RUNNING | FINISHED
    data_hash: str
    tune_path: str  # where Ray Tune keeps the experiment (what Tuner.restore reads)
    outcome: Outcome | None = None
    # A two-stage job: the stage running (1 or 2) and the Tune experiment of each stage
    # started so far (tune_path is the running one's). None / [] for a one-stage job, and
    # for a two-stage job written before stages had folders of their own.
    stage: int | None = None
    stage_paths: list[str] = field(default_factory=list)
    synced: bool = False  # a finished job whose folder was replayed into MLflow
    version: int = STATE_VERSION

    def set_stage(self, stage: int, tune_path: str | None = None) -> None:
        """Make ``stage`` the running one, its Tune experiment at ``tune_path`` (default:
        the one recorded for it); later stages are forgotten. The one place ``stage``,
        ``stage_paths`` and ``tune_path`` change, so they cannot drift apart."""
        path = self.stage_paths[stage - 1] if tune_path is None else tune_path
        self.stage_paths = [*self.stage_paths[:stage - 1], path]
        self.stage, self.tune_path = stage, path

    @property
    def online(self) -> bool:
        """False for an ``--offline`` job that has not been synced yet."""
        return self.parent_run_id is not None

    def write(self, experiment_dir: Path) -> None:
        """Write (atomically) next to Ray's experiment state."""
        experiment_dir.mkdir(parents=True, exist_ok=True)
        tmp = experiment_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, default=str))
        tmp.replace(experiment_dir / STATE_FILE)

    @classmethod
    def read(cls, experiment_dir: Path) -> JobState:
        """Read a job folder's state (format 1 or 2).

        Raises:
            StateError: no state file, not JSON, a newer format or missing keys.
        """
        path = experiment_dir / STATE_FILE
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise StateError(f"{path}: no job state here (not a tuning job folder)") from None
        except (OSError, ValueError) as err:
            raise StateError(f"{path}: unreadable job state ({err})") from None
        if not isinstance(raw, dict):
            raise StateError(f"{path}: unreadable job state (not a JSON object)")
        version = raw.get("version", 1)
        if not isinstance(version, int) or version > STATE_VERSION:
            raise StateError(f"{path}: job state format {version!r} was written by a newer "
                             f"fraud-tuning; this one reads formats 1 to {STATE_VERSION}")
        known = {f.name for f in fields(cls)}
        missing = sorted(k for k in ("spec", "tracking_uri", "status") if k not in raw)
        if missing:
            raise StateError(f"{path}: job state lacks {', '.join(missing)}; the folder was not "
                             "written by `tuning run`")
        values = {k: v for k, v in raw.items() if k in known}
        values["version"] = STATE_VERSION  # format 1 has the same keys
        values.setdefault("experiment_id", None)
        values.setdefault("parent_run_id", None)
        values.setdefault("data_hash", "")
        values.setdefault("tune_path", str(experiment_dir))
        outcome = values.get("outcome")
        values["outcome"] = Outcome.from_dict(outcome) if outcome else None
        return cls(**values)


def tune_dirs(experiment_dir: Path, state: JobState | None = None) -> list[Path]:
    """The local folders holding a job's Ray Tune experiments (each with its
    ``<trial>/result.json`` files): a two-stage job's stage folders, or the job folder.

    ``state``: the job's state when the caller read it already (default: read it here;
    a folder without a readable state is taken as a one-experiment folder).
    """
    if state is None:
        try:
            state = JobState.read(experiment_dir)
        except StateError:
            return [experiment_dir]
    if not state.stage_paths:
        return [experiment_dir]
    # A stage's Tune path may be a URI (storage.path s3://...); its local copy, if any,
    # has the same folder name under the job folder.
    return [experiment_dir / path.rstrip("/").rsplit("/", 1)[-1] for path in state.stage_paths]


def find_experiment_dir(name_or_path: str, storage: str) -> Path:
    """A job folder given by path, or the newest job of that name under ``storage``.

    Raises:
        StateError: no such folder, and no job of that name.
    """
    path = Path(name_or_path)
    if (path / STATE_FILE).is_file():
        return path.resolve()
    root = Path(storage)
    candidates = sorted(
        (d for d in root.glob(f"{name_or_path}-*") if (d / STATE_FILE).is_file()),
        key=lambda d: d.stat().st_mtime,
    )
    if not candidates:
        raise StateError(
            f"{name_or_path}: no tuning job of that name under {root.resolve()} "
            f"(and not a job folder holding {STATE_FILE})"
        )
    return candidates[-1].resolve()


def read_job_state(experiment_dir: Path) -> dict[str, Any]:
    """The job state as plain data (what ``tuning_state.json`` holds, at the current format)."""
    return asdict(JobState.read(experiment_dir))
