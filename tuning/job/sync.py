"""Replay a job from Ray Tune's own files into MLflow, without duplicating anything.

Ray Tune writes every trial's results to ``<job>/<trial>/result.json`` (in a
two-stage job ``<job>/stage1/<trial>/result.json`` and ``<job>/stage2/...``) whatever
happens to the tracking store. When the store was unreachable (an outage, or a job
run with ``--offline``), or the driver died before its writer flushed, this module
makes MLflow match those files: it creates the child runs that are missing, logs
only the steps each run lacks, fixes run statuses, and completes the parent run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xgboost as xgb
from mlflow.tracking import MlflowClient

from tuning.errors import StateError
from tuning.job.preflight import load_data
from tuning.job.state import FINISHED, JobState, tune_dirs
from tuning.job.two_stage import sync_ranges
from tuning.job.verdict import VERDICT_DIR
from tuning.spec import parse_spec
from tuning.tracking.model import hand_over
from tuning.tracking.pareto import PARETO_ARTIFACT, PARETO_TAG, pareto_tags
from tuning.tracking.parent import log_outcome, start_parent_run
from tuning.tracking.tags import (
    FAILED,
    JOB_TAG,
    KILLED,
    ORPHAN_TAG,
    RUN_NAME_TAG,
    STAGE_TAG,
    STOP_REASON_TAG,
    stopped_early_tags,
    trial_status,
)
from tuning.tracking.writer import Record, RunWriter, metrics_of

logger = logging.getLogger(__name__)

BEST_MODEL_FILE = "best_model.ubj"
CALIBRATOR_FILE = "calibrator.json"  # written by the refit with evaluation.calibrate


@dataclass
class TrialFiles:
    trial_id: str
    config: dict[str, Any]
    results: list[dict[str, Any]]
    errored: bool
    stage: int | None = None  # a two-stage job's stage (its child run's tuning.stage tag)

    def status(self) -> str:
        return trial_status(self.results[-1] if self.results else None, self.errored)


@dataclass
class SyncReport:
    runs_created: int = 0
    metric_points: int = 0
    statuses_fixed: int = 0
    orphans_removed: int = 0
    parent_completed: bool = False


def read_trials(experiment_dir: Path, state: JobState | None = None) -> list[TrialFiles]:
    """Every trial of a job folder, from Ray Tune's ``result.json`` files (of every
    stage of a two-stage job, stage 1's first)."""
    if state is None:
        try:
            state = JobState.read(experiment_dir)
        except StateError:
            state = None  # a bare Tune experiment folder
    staged = state is not None and bool(state.stage_paths)
    files = [(n if staged else None, f)
             for n, tune_dir in enumerate(tune_dirs(experiment_dir, state), start=1)
             for f in sorted(tune_dir.glob("*/result.json"))]
    trials = []
    for stage, result_file in files:
        lines = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        if not lines:
            continue
        folder = result_file.parent
        params_file = folder / "params.json"
        config = json.loads(params_file.read_text()) if params_file.exists() else lines[0].get(
            "config", {})
        trials.append(TrialFiles(trial_id=lines[0]["trial_id"], config=config, results=lines,
                                 errored=(folder / "error.txt").exists(), stage=stage))
    return trials


def sync_trials(writer: RunWriter, trials: list[TrialFiles], job_name: str,
                job_finished: bool, known_trial_ids: set[str] | None = None) -> SyncReport:
    """Write what MLflow lacks of ``trials`` through ``writer`` (synchronously).

    ``known_trial_ids`` (all trials Tune knows, also those that never reported) lets
    it remove orphans: child runs a killed driver created for a trial that Tune had
    not yet saved in its experiment state, and which the resumed job re-suggested
    under a new id.
    """
    report = SyncReport()
    writer.load_existing()
    records: list[Record] = []
    for trial in trials:
        if trial.trial_id not in writer.run_ids:
            report.runs_created += 1
            tags = {RUN_NAME_TAG: f"{job_name}-{trial.trial_id}", JOB_TAG: job_name}
            if trial.stage is not None:
                tags[STAGE_TAG] = str(trial.stage)
            records.append(Record("start", trial.trial_id, params=trial.config,
                                  timestamp=_ms(trial.results[0]), tags=tags))
        last = writer.last_step.get(trial.trial_id, -1)
        for result in trial.results:
            step = int(result.get("rounds", result.get("training_iteration", 0)))
            if step > last:
                records.append(Record("metrics", trial.trial_id, step=step,
                                      metrics=metrics_of(result), timestamp=_ms(result)))
                report.metric_points += len(metrics_of(result))
                last = step
        status = trial.status()
        if (job_finished or status == FAILED) and writer.run_status.get(trial.trial_id) != status:
            tags = stopped_early_tags(trial.results[-1]) if status == KILLED else {}
            records.append(Record("end", trial.trial_id, status=status, tags=tags,
                                  timestamp=_ms(trial.results[-1])))
            report.statuses_fixed += trial.trial_id in writer.run_ids
    writer.write(records)
    if job_finished and known_trial_ids is not None:
        report.orphans_removed = remove_orphans(writer, known_trial_ids)
    return report


def remove_orphans(writer: RunWriter, known_trial_ids: set[str]) -> int:
    """Delete (soft, restorable) the child runs of trials the job does not have."""
    removed = 0
    for trial_id, run_id in list(writer.run_ids.items()):
        if trial_id in known_trial_ids:
            continue
        writer.client.set_tag(run_id, ORPHAN_TAG,
                              "trial lost with a killed driver before Tune saved it")
        writer.client.set_terminated(run_id, KILLED)
        writer.client.delete_run(run_id)
        del writer.run_ids[trial_id]
        removed += 1
    return removed


def sync_job(experiment_dir: Path, tracking_uri: str | None = None,
             known_trial_ids: set[str] | None = None, data: Any = None) -> SyncReport:
    """Make the MLflow store match a job folder; create the parent run if it has none."""
    state = JobState.read(experiment_dir)
    spec = parse_spec(state.spec, source=str(experiment_dir))
    uri = tracking_uri or state.tracking_uri
    client = MlflowClient(uri)
    if not state.parent_run_id:
        state.experiment_id, state.parent_run_id = start_parent_run(
            client, spec, state.data_hash, str(experiment_dir))
        state.write(experiment_dir)
    finished = state.status == FINISHED
    assert state.experiment_id is not None  # set with the parent run
    writer = RunWriter(uri, state.experiment_id, state.parent_run_id, job_dir=experiment_dir)
    trials = read_trials(experiment_dir, state)
    report = sync_trials(writer, trials, spec.name, finished, known_trial_ids)
    sync_ranges(client, state.parent_run_id, experiment_dir)  # a two-stage job's stage 2
    if finished and spec.objective.multi:
        sync_pareto(writer, client, state.parent_run_id, trials,
                    dict(zip(spec.objective.objective_keys, spec.objective.objective_modes)))
    if finished:
        report.parent_completed = complete_parent(client, uri, experiment_dir, state, data)
    state.tracking_uri, state.synced = uri, finished
    state.write(experiment_dir)
    return report


def sync_pareto(writer: RunWriter, client: Any, parent_run_id: str, trials: list[TrialFiles],
                objectives: dict[str, str]) -> None:
    """Tag the Pareto set and log ``pareto.json`` from the job folder, as the job's end does.

    Computed again every time (as a resumed job does), so a job whose store was down
    at its end gets them, and no tag goes stale.
    """
    rows = {t.trial_id: dict(t.results[-1]) for t in trials if t.results and t.status() != FAILED}
    record, tags = pareto_tags(rows, objectives, writer.run_ids)
    writer.write([Record("tags", rid, tags={PARETO_TAG: value}) for rid, value in tags.items()])
    client.log_text(parent_run_id, json.dumps(record, indent=2), PARETO_ARTIFACT)


def complete_parent(client: Any, uri: str, experiment_dir: Path, state: JobState,
                    data: Any = None) -> bool:
    """Log the job's outcome and best model on the parent run unless it already has them."""
    run_id = state.parent_run_id
    outcome = state.outcome
    parent = client.get_run(run_id)
    if outcome is None or STOP_REASON_TAG in parent.data.tags:
        if parent.info.status != FINISHED and outcome is not None:
            client.set_terminated(run_id, FINISHED)
        return False
    best = outcome.best
    log_outcome(client, run_id, best, outcome.test_metrics, outcome.counts, outcome.stop_reason,
                intervals=(outcome.verdict or {}).get("intervals", {}))
    verdict_dir = experiment_dir / VERDICT_DIR
    if verdict_dir.is_dir():
        client.log_artifacts(run_id, str(verdict_dir), VERDICT_DIR)
    model_file = experiment_dir / BEST_MODEL_FILE
    spec = parse_spec(state.spec, source=str(experiment_dir))
    if data is None:  # `tuning sync` in a later process: lineage and example rows need the data
        data = load_data(spec)
    booster = (xgb.Booster(model_file=str(model_file))
               if outcome.log_model and model_file.exists() else None)
    calibrator_file = experiment_dir / CALIBRATOR_FILE
    calibrator = json.loads(calibrator_file.read_text()) if calibrator_file.exists() else None
    hand_over(uri, run_id, spec, data, booster, best.threshold if best else None,
              outcome.test_metrics, calibrator)
    client.set_terminated(run_id, FINISHED)
    return True


def _ms(result: dict[str, Any]) -> int:
    return int(float(result.get("timestamp", 0)) * 1000)
