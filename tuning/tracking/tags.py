"""The tag vocabulary of a job in MLflow, and the one rule that names a trial's status.

Every module that writes or reads a tag takes its name from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# MLflow's own tags
PARENT_TAG = "mlflow.parentRunId"  # on each child run: the job's parent run
RUN_NAME_TAG = "mlflow.runName"
# Ray's identity of a trial, on its child run
TRIAL_TAG = "ray.trial_id"
NODE_TAG = "ray.node_id"
GPUS_TAG = "ray.cuda_visible_devices"
# Ours: the parent run
ROLE_TAG = "tuning.role"  # "parent" on the parent run
ROLE_PARENT = "parent"
SEARCHER_TAG = "tuning.searcher"
SCHEDULER_TAG = "tuning.scheduler"
DATA_HASH_TAG = "tuning.data_hash"
EXPERIMENT_DIR_TAG = "tuning.experiment_dir"
SPEC_HASH_TAG = "tuning.spec_hash"
STOP_REASON_TAG = "tuning.stop_reason"
BEST_TRIAL_TAG = "tuning.best_trial_id"
LEAK_TAG_PREFIX = "tuning.leak."  # + column: "<kind>: <detail>" per leak / id flag of the data
# Ours: the child runs
JOB_TAG = "tuning.job"
STAGE_TAG = "tuning.stage"  # 1 or 2 in a two-stage job
BASELINE_TAG = "tuning.baseline"  # on the child run of the baseline trial (library defaults)
STOPPED_EARLY_TAG = "tuning.stopped_early"
STOPPED_AT_TAG = "tuning.stopped_at_round"
RESTORED_FROM_TAG = "tuning.restored_from_round"
RETRIES_TAG = "tuning.retries"
LAST_ERROR_TAG = "tuning.last_error"
ERROR_TAG = "tuning.error"
ORPHAN_TAG = "tuning.orphan"
INFEASIBLE_TAG = "tuning.infeasible"  # "true": the trial broke objective.constraints at its best round
PARETO_TAG = "tuning.pareto"  # "true" on the Pareto set of a multi-objective job, else "false"

# A trial's status, as MLflow run statuses.
FINISHED = "FINISHED"  # trained all its rounds
KILLED = "KILLED"  # stopped early by the scheduler
FAILED = "FAILED"  # raised more often than budget.max_failures allows
STATUSES = (FINISHED, KILLED, FAILED)


def trial_status(last_result: Mapping[str, Any] | None, errored: bool = False) -> str:
    """The status of a trial that ended: FAILED, FINISHED, or KILLED (stopped early).

    A trial finished when its last report says ``training_done``; one that never
    said so was stopped before its last round.
    """
    if errored:
        return FAILED
    return FINISHED if (last_result or {}).get("training_done", False) else KILLED


def stopped_early_tags(last_result: Mapping[str, Any] | None) -> dict[str, str]:
    """The tags of a child run whose trial the scheduler stopped early."""
    return {STOPPED_EARLY_TAG: "true",
            STOPPED_AT_TAG: str((last_result or {}).get("rounds", ""))}


def infeasible(last_result: Mapping[str, Any] | None) -> bool:
    """True when a constrained job's trial broke ``objective.constraints`` at its best round."""
    value = (last_result or {}).get("val_constraint_violation")
    return isinstance(value, (int, float)) and value > 0
