"""The MLflow parent run of a tuning job: created at start, completed at the end
(outcome and verdict here; the model and the data lineage in :mod:`tuning.tracking.model`)."""

from __future__ import annotations

import hashlib
from typing import Any

import yaml
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from tuning.spec import Spec
from tuning.tracking.tags import (
    BEST_TRIAL_TAG,
    DATA_HASH_TAG,
    EXPERIMENT_DIR_TAG,
    ROLE_PARENT,
    ROLE_TAG,
    RUN_NAME_TAG,
    SCHEDULER_TAG,
    SEARCHER_TAG,
    SPEC_HASH_TAG,
    STOP_REASON_TAG,
)


def spec_params(spec: Spec) -> dict[str, str]:
    """The job's main settings, flattened for MLflow params."""
    return {
        "trainable": spec.trainable,
        "objective": spec.objective.metric,
        "mode": spec.objective.resolved_mode,
        "search.algorithm": spec.search.algorithm,
        "search.seed": str(spec.search.seed),
        "scheduler.type": spec.scheduler.type,
        "scheduler.max_t": str(spec.max_t),
        "scheduler.grace_period": str(spec.grace_period),
        "budget.num_samples": str(spec.budget.num_samples),
        "budget.max_concurrent": str(spec.budget.max_concurrent),
        "training.num_boost_round": str(spec.training.num_boost_round),
        "training.report_every": str(spec.training.report_every),
        "resources.cpu": str(spec.resources.cpu),
        "resources.gpu": str(spec.resources.gpu),
        "data.source": spec.data.source if spec.data.source != "file" else str(spec.data.path),
        "search_space": ",".join(spec.search_space),
    }


def spec_yaml(spec: Spec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)


def start_parent_run(client: MlflowClient, spec: Spec, data_fingerprint: str,
                     experiment_dir: str) -> tuple[str, str]:
    """Create (or reuse) the experiment and start the parent run; return their ids."""
    experiment = client.get_experiment_by_name(spec.experiment_name)
    if experiment is None:
        experiment_id = client.create_experiment(spec.experiment_name)
    else:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)
    tags = {
        RUN_NAME_TAG: spec.name,
        ROLE_TAG: ROLE_PARENT,
        SEARCHER_TAG: spec.search.algorithm,
        SCHEDULER_TAG: spec.scheduler.type,
        DATA_HASH_TAG: data_fingerprint,
        EXPERIMENT_DIR_TAG: experiment_dir,
        SPEC_HASH_TAG: hashlib.sha1(spec_yaml(spec).encode()).hexdigest()[:12],
    }
    run = client.create_run(experiment_id, tags=tags, run_name=spec.name)
    run_id = run.info.run_id
    client.log_batch(run_id, params=[Param(k, v) for k, v in spec_params(spec).items()])
    client.log_text(run_id, spec_yaml(spec), "spec.yaml")
    return experiment_id, run_id


def log_outcome(client: MlflowClient, run_id: str, best: Any, test_metrics: dict[str, float],
                counts: dict[str, int], stop_reason: str,
                intervals: dict[str, list[float]] | None = None) -> None:
    """Record the best trial, the test-set verdict and the trial counts on the parent."""
    now = 0
    metrics = [Metric(f"test_{k}", float(v), now, 0) for k, v in test_metrics.items()]
    for key, (low, high) in (intervals or {}).items():
        if low == low:  # nan when the bootstrap could not estimate it
            metrics += [Metric(f"test_{key}_ci_low", float(low), now, 0),
                        Metric(f"test_{key}_ci_high", float(high), now, 0)]
    metrics += [Metric(f"trials_{k}", float(v), now, 0) for k, v in counts.items()]
    tags = [RunTag(STOP_REASON_TAG, stop_reason)]
    params: list[Param] = []
    if best is not None:
        metrics += [Metric(f"best_{k}", float(v), now, 0) for k, v in best.metrics.items()]
        params += [Param(f"best.{k}", repr(v) if isinstance(v, float) else str(v))
                   for k, v in best.config.items()]
        params.append(Param("best.rounds", str(best.best_round)))
        tags.append(RunTag(BEST_TRIAL_TAG, best.trial_id))
        if best.threshold is not None:
            params.append(Param("best.threshold", repr(best.threshold)))
    client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
