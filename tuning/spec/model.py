"""The whole spec: one typed, validated object for a tuning job."""

from __future__ import annotations

import math
import os
from typing import Any, Union

from pydantic import Field, field_validator, model_validator

from trainables.registry import TRAINABLES, check_params, default_space
from tuning.search.codec import contains
from tuning.search.params import ChoiceParam, Constant, ParamSpec, is_tuned
from tuning.search.registry import check_pairing, check_search, scheduler_for
from tuning.spec.evaluation import EvaluationSpec
from tuning.spec.format import validated
from tuning.spec.sections import (
    DEFAULT_TRACKING_URI,
    BudgetSpec,
    DataSpec,
    ObjectiveSpec,
    ResourcesSpec,
    SchedulerSpec,
    SearchSpec,
    Section,
    StorageSpec,
    TrackingSpec,
    TrainingSpec,
    known,
    validate_search_space,
)


class Spec(Section):
    """A whole tuning job."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    data: DataSpec = DataSpec()
    trainable: str = "xgboost_fraud"
    objective: ObjectiveSpec = ObjectiveSpec()
    # Omitted: the trainable's own default space (trainables.registry.default_space).
    search_space: dict[str, Union[ParamSpec, Constant]] = Field(min_length=1)
    search: SearchSpec = SearchSpec()
    scheduler: SchedulerSpec = SchedulerSpec()
    training: TrainingSpec = TrainingSpec()
    budget: BudgetSpec = BudgetSpec()
    resources: ResourcesSpec = ResourcesSpec()
    tracking: TrackingSpec = TrackingSpec()
    evaluation: EvaluationSpec = EvaluationSpec()
    storage: StorageSpec = StorageSpec()

    @field_validator("search_space", mode="before")
    @classmethod
    def _search_space(cls, value: Any) -> dict[str, Any]:
        return validate_search_space(value)

    @field_validator("trainable")
    @classmethod
    def _known_trainable(cls, value: str) -> str:
        return known(value, TRAINABLES, "trainable")

    @model_validator(mode="before")
    @classmethod
    def _default_space(cls, values: Any) -> Any:
        if isinstance(values, dict) and "search_space" not in values:
            trainable = values.get("trainable", "xgboost_fraud")
            if trainable in TRAINABLES:
                values = {**values, "search_space": default_space(trainable)}
        return values

    @model_validator(mode="before")
    @classmethod
    def _pair_scheduler(cls, values: Any) -> Any:
        # A searcher that needs its own scheduler gets it unless one is named.
        if isinstance(values, dict) and isinstance(values.get("search"), dict):
            scheduler = values.get("scheduler") or {}
            paired = scheduler_for(values["search"].get("algorithm"))
            if paired and isinstance(scheduler, dict) and "type" not in scheduler:
                values = {**values, "scheduler": {**scheduler, "type": paired}}
        return values

    @model_validator(mode="after")
    def _coherent(self) -> Spec:
        problem = check_pairing(self.search.algorithm, self.scheduler.type) or check_search(self)
        if problem:
            raise ValueError(problem)
        # A misspelt parameter would reach XGBoost, which ignores it: name the closest one.
        check_params(self.trainable, self.search_space, "search_space")
        check_params(self.trainable, self.training.params, "training.params")
        if self.scheduler.grace_period is not None and self.scheduler.grace_period > self.max_t:
            raise ValueError(
                f"scheduler.grace_period ({self.scheduler.grace_period}) must be <= max_t "
                f"({self.max_t})")
        has_grid = any(
            isinstance(p, ChoiceParam) and p.type == "grid" for p in self.search_space.values()
        )
        if has_grid and self.search.algorithm not in ("grid", "random"):
            raise ValueError(
                f"search_space uses type 'grid', which only search.algorithm 'grid' or 'random' "
                f"can run, got {self.search.algorithm!r}"
            )
        problem = points_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or self.name

    @property
    def max_t(self) -> int:
        return self.scheduler.max_t or self.training.max_reports

    @property
    def grace_period(self) -> int:
        """Reports before a scheduler may stop a trial (``scheduler.grace_period`` or its default)."""
        if self.scheduler.grace_period is not None:
            return self.scheduler.grace_period
        return min(self.max_t, max(2, math.ceil(self.max_t / 6)))

    def tracking_uri(self) -> str:
        """Resolve the tracking URI: the spec, then ``MLFLOW_TRACKING_URI``, then the default."""
        return resolve_tracking_uri(self.tracking.tracking_uri)

    def dataset_kwargs(self) -> dict[str, Any]:
        """Arguments of ``trainables.data.load_dataset`` for this job's data."""
        return {**self.data.loader_kwargs(), "amount_column": self.objective.amount_column}

    def streams_data(self) -> bool:
        """True when the job's data is planned over shards rather than read on the driver:
        a data-parallel job (``resources.workers``) on sharded Parquet (a folder, a glob, an
        ``s3://`` prefix); see ``tuning.job.preflight.load_data``."""
        from trainables.tables import is_sharded

        d = self.data
        return bool(self.resources.workers) and d.source == "file" and d.path is not None \
            and is_sharded(d.path) and (d.format or "parquet").lower() == "parquet"

    def with_overrides(self, **overrides: Any) -> Spec:
        """Return a copy with dotted-path overrides (``budget.num_samples=6``) re-validated."""
        raw = self.model_dump(mode="python", exclude_none=False)
        for dotted, value in overrides.items():
            if value is None:
                continue
            node = raw
            *parents, leaf = dotted.split(".")
            for key in parents:
                node = node[key]
            node[leaf] = value
        return validated(Spec, raw, source="command line")


def points_problem(spec: Spec) -> str | None:
    """Why a point of ``search.points_to_evaluate`` cannot be tried, or None.

    Said here because the searchers say it only once Ray runs, each in its own words
    (HyperOpt: "GarbageCollected switch argument", Optuna: "Dim of point"). Random
    search fills in the parameters a point leaves out; the model-based ones cannot.
    """
    space = spec.search_space
    tuned = [n for n, p in space.items() if is_tuned(p)]
    for i, point in enumerate(spec.search.points_to_evaluate):
        where = f"search.points_to_evaluate[{i}]"
        unknown = [n for n in point if n not in space]
        if unknown:
            return f"{where}: {', '.join(unknown)} not in search_space"
        missing = [n for n in tuned if n not in point]
        if missing and spec.search.algorithm not in ("random", "grid"):
            return (f"{where}: no value for {', '.join(missing)} (search.algorithm "
                    f"{spec.search.algorithm!r} needs every tuned parameter)")
        outside = [f"{n}={v!r}" for n, v in point.items() if not contains(space[n], v)]
        if outside:
            return f"{where}: {', '.join(outside)} outside search_space"
    return None


def resolve_tracking_uri(uri: str | None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
