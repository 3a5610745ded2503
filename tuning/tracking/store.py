"""Read finished (or running) tuning jobs back from MLflow.

A job is one parent run (tag ``tuning.role=parent``) and its child runs (tag
``mlflow.parentRunId``), one per trial. Everything the reports and the inspection
commands show is read from the tracking store, so they work on any job, from any
machine that reaches the store, long after the driver has gone.

Cost: one ``search_runs`` for the children, then ``get_metric_history`` only for
the keys asked for (the objective, and the recall/FPR/threshold at its best step),
fetched in a small thread pool because a remote server answers one call at a time.
"""

from __future__ import annotations

import ast
import math
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from tuning.errors import TrackingError
from tuning.tracking.client import client_for
from tuning.tracking.tags import (
    BEST_TRIAL_TAG,
    KILLED,
    PARENT_TAG,
    ROLE_PARENT,
    ROLE_TAG,
    RUN_NAME_TAG,
    STOPPED_EARLY_TAG,
    TRIAL_TAG,
)
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
# Keys whose value at the objective's best step make a trial's operating point.
POINT_KEYS = ("val_recall", "val_fpr", "val_threshold", "val_precision")


def parse_value(text: str) -> Any:
    """A logged param back to the number / bool / None it was; other text unchanged."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return value if isinstance(value, (int, float, bool, type(None), list, tuple)) else text


@dataclass
class Trial:
    """One trial (child run) as the store has it."""

    run_id: str
    trial_id: str
    status: str  # FINISHED | KILLED (stopped early) | FAILED | RUNNING
    params: dict[str, Any]
    metrics: dict[str, float]  # the last value of every metric
    tags: dict[str, str]
    start_time: int  # ms since the epoch
    end_time: int | None
    number: int = 0  # order of start, from 0
    # metric key -> [(step, value)], for the keys load_job was asked for
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    best_value: float | None = None
    best_round: int | None = None
    point: dict[str, float] = field(default_factory=dict)  # POINT_KEYS at best_round

    @property
    def stopped_early(self) -> bool:
        return self.status == KILLED or self.tags.get(STOPPED_EARLY_TAG) == "true"

    @property
    def last_round(self) -> int | None:
        steps = [s for h in self.history.values() for s, _ in h]
        return max(steps) if steps else None


@dataclass
class Job:
    """A tuning job: its parent run and its trials, ordered by start time."""

    tracking_uri: str
    experiment_id: str
    experiment_name: str
    run_id: str
    name: str
    status: str
    start_time: int
    end_time: int | None
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    trials: list[Trial]
    metric: str  # the objective's result key, e.g. val_aucpr
    mode: str  # max | min

    @property
    def best(self) -> Trial | None:
        """The trial with the best objective value (any step), as the job picked it."""
        tagged = self.tags.get(BEST_TRIAL_TAG)
        scored = [t for t in self.trials if t.best_value is not None]
        for t in scored:
            if t.trial_id == tagged:
                return t
        if not scored:
            return None
        return (max if self.mode == "max" else min)(scored, key=lambda t: t.best_value)

    def count(self, status: str) -> int:
        return sum(t.status == status for t in self.trials)

    def best_params(self) -> dict[str, Any]:
        """The best configuration the parent run recorded (``best.<name>`` params)."""
        return {k.removeprefix("best."): v for k, v in self.params.items()
                if k.startswith("best.") and k not in ("best.rounds", "best.threshold")}


def _search_all(client: Any, experiment_ids: list[str], filter_string: str,
                order_by: list[str] | None = None, limit: int | None = None) -> list[Any]:
    """Every run matching the filter, following page tokens (servers page at 1000s)."""
    out: list[Any] = []
    token = None
    while True:
        page = client.search_runs(experiment_ids, filter_string=filter_string,
                                  max_results=min(limit or 10_000, 10_000), order_by=order_by,
                                  page_token=token)
        out.extend(page)
        token = page.token
        if not token or (limit and len(out) >= limit):
            return out[:limit] if limit else out


def _all_experiment_ids(client: Any) -> list[str]:
    ids: list[str] = []
    token = None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        ids.extend(e.experiment_id for e in page)
        token = page.token
        if not token:
            return ids


def parent_runs(client: Any, experiment: str | None = None, name: str | None = None,
                limit: int | None = None) -> list[Any]:
    """Parent runs, newest first, optionally in one experiment or with one run name."""
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise TrackingError(f"experiment {experiment!r} not found in the tracking store")
        ids = [found.experiment_id]
    else:
        ids = _all_experiment_ids(client)
    if not ids:
        return []
    query = f"tags.`{ROLE_TAG}` = '{ROLE_PARENT}'"
    if name is not None:
        query += f" and attributes.run_name = '{name}'"
    # search_runs takes at most 100 experiment ids per call.
    runs = [r for i in range(0, len(ids), 100)
            for r in _search_all(client, ids[i:i + 100], query, ["attributes.start_time DESC"],
                                 limit)]
    runs.sort(key=lambda r: r.info.start_time, reverse=True)
    return runs[:limit] if limit else runs


def find_parent(client: Any, name_or_run_id: str) -> Any:
    """The parent run of a run id (a child's id leads to its parent), else the newest
    parent run with that run name, or in the experiment of that name."""
    from mlflow.exceptions import MlflowException  # heavy: mlflow (keeps `tuning --help` fast)

    if _RUN_ID.match(name_or_run_id):
        try:
            run = client.get_run(name_or_run_id)
        except MlflowException:
            run = None
        if run is not None:
            if run.data.tags.get(ROLE_TAG) == ROLE_PARENT:
                return run
            parent = run.data.tags.get(PARENT_TAG)
            if parent:
                return client.get_run(parent)
            raise TrackingError(f"run {name_or_run_id} is not a tuning job's parent run "
                           f"(no tag {ROLE_TAG}=parent)")
    if "'" in name_or_run_id:
        raise TrackingError(f"job name {name_or_run_id!r} must not contain a quote")
    candidates = parent_runs(client, name=name_or_run_id, limit=1)
    experiment = client.get_experiment_by_name(name_or_run_id)
    if experiment is not None:
        candidates += parent_runs(client, experiment=name_or_run_id, limit=1)
    if not candidates:
        raise TrackingError(f"no tuning job named {name_or_run_id!r} (run name or experiment) "
                       f"and no run with that id in the tracking store")
    return max(candidates, key=lambda r: r.info.start_time)


def load_job(tracking_uri: str, name_or_run_id: str,
             history_keys: Iterable[str] | None = None) -> Job:
    """Load a job's parent run, its trials and the metric histories asked for.

    Args:
        tracking_uri: The MLflow store.
        name_or_run_id: A parent (or child) run id, a job name or an experiment name;
            a name picks the newest job.
        history_keys: Metric histories to fetch per trial; default: the objective and
            :data:`POINT_KEYS` (enough for best values, curves and operating points).
    """
    client = client_for(tracking_uri)
    parent = find_parent(client, name_or_run_id)
    experiment = client.get_experiment(parent.info.experiment_id)
    params = {k: parse_value(v) for k, v in parent.data.params.items()}
    metric = f"val_{params.get('objective', 'aucpr')}"
    mode = str(params.get("mode", "max"))
    children = _search_all(client, [parent.info.experiment_id],
                           f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    trials = [_trial(run) for run in children]
    trials.sort(key=lambda t: (t.start_time, t.trial_id))
    for number, trial in enumerate(trials):
        trial.number = number
    keys = list(dict.fromkeys([metric, *POINT_KEYS] if history_keys is None else history_keys))
    _load_histories(client, trials, keys)
    for trial in trials:
        _score(trial, metric, mode)
    return Job(
        tracking_uri=tracking_uri, experiment_id=parent.info.experiment_id,
        experiment_name=experiment.name, run_id=parent.info.run_id,
        name=parent.info.run_name or parent.data.tags.get(RUN_NAME_TAG, ""),
        status=parent.info.status, start_time=parent.info.start_time,
        end_time=parent.info.end_time, params=params, metrics=dict(parent.data.metrics),
        tags=dict(parent.data.tags), trials=trials, metric=metric, mode=mode,
    )


def _trial(run: Any) -> Trial:
    tags = dict(run.data.tags)
    return Trial(
        run_id=run.info.run_id, trial_id=tags.get(TRIAL_TAG, run.info.run_id[:8]),
        status=run.info.status, params={k: parse_value(v) for k, v in run.data.params.items()},
        metrics=dict(run.data.metrics), tags=tags, start_time=run.info.start_time or 0,
        end_time=run.info.end_time,
    )


def _load_histories(client: Any, trials: list[Trial], keys: list[str]) -> None:
    jobs = [(t, k) for t in trials for k in keys if k in t.metrics]
    if not jobs:
        return

    def fetch(item: tuple[Trial, str]) -> list[tuple[int, float]]:
        trial, key = item
        history = client.get_metric_history(trial.run_id, key)
        return sorted((m.step, m.value) for m in history)

    with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
        for (trial, key), history in zip(jobs, pool.map(fetch, jobs)):
            trial.history[key] = history


def _score(trial: Trial, metric: str, mode: str) -> None:
    """Best objective value over the trial's reports, its step and operating point."""
    points = [(s, v) for s, v in trial.history.get(metric, []) if not math.isnan(v)]
    if not points:
        value = trial.metrics.get(metric)
        if value is None or math.isnan(value):
            return
        trial.best_value, trial.best_round = value, None
        trial.point = {k: trial.metrics[k] for k in POINT_KEYS if k in trial.metrics}
        return
    # Ties go to the earliest step, as pandas' idxmax does in tuning.job.refit.summarise.
    pick = max if mode == "max" else min
    trial.best_round, trial.best_value = pick(points, key=lambda p: (p[1], -p[0]) if mode == "max"
                                             else (p[1], p[0]))
    for key in POINT_KEYS:
        at = dict(trial.history.get(key, []))
        if trial.best_round in at:
            trial.point[key] = at[trial.best_round]


def load_spec_text(job: Job) -> str:
    """The job's spec as the parent run logged it (``spec.yaml``)."""
    from mlflow.tracking import MlflowClient  # heavy: mlflow

    client = MlflowClient(job.tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(job.run_id, "spec.yaml", tmp)
        except Exception as err:  # noqa: BLE001 - missing artifact or unreachable store
            raise TrackingError(f"run {job.run_id}: cannot read its spec.yaml artifact "
                           f"({str(err).splitlines()[0][:200] if str(err) else type(err).__name__})"
                           ) from None
        return Path(path).read_text()


def model_uri(job: Job) -> str:
    """The URI that loads the job's servable model, a pyfunc (checked with MLflow 3.17)."""
    return f"runs:/{job.run_id}/model"


def booster_uri(job: Job) -> str:
    """The URI of the same refit booster for ``mlflow.xgboost.load_model``."""
    return f"runs:/{job.run_id}/booster"
