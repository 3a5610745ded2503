"""One pydantic model per YAML section of the spec (``extra="forbid"``: a misspelt
key is an error, never a silently ignored setting).

Names are read from their registries: data sources, splits and formats from
``trainables.data``, objectives from ``trainables.objectives``, searchers from
:mod:`tuning.search.registry`, schedulers from :mod:`tuning.schedule.registry`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trainables.data import FORMATS, LEAK_ACTIONS, SOURCES, SPLITS
from trainables.objectives import METRIC_MODES, MODEL_METRICS, OBJECTIVES
from trainables.preprocess import NA_VALUES
from trainables.settings import DEFAULT_EARLY_STOPPING_REPORTS
from tuning.schedule.registry import REMOVED as REMOVED_SCHEDULERS
from tuning.schedule.registry import SCHEDULERS
from tuning.search.params import PARAM_ADAPTER, PARAM_TYPES
from tuning.search.registry import FIRST_STAGES, REFINERS, REMOVED, SEARCHERS
from tuning.spec.format import describe, nested

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_STORAGE = "tuning_runs"
SHIP_MODES = ("auto", "object_store", "path")


def known(value: Any, names: Iterable[str], what: str) -> Any:
    """``value`` when it is one of ``names``, else the one error for an unknown name."""
    names = list(names)
    if value not in names:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(map(str, names))}")
    return value


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------- data
class DataSpec(Section):
    """Where the transactions come from and how they are split."""

    source: str = "synthetic"
    rows: int = Field(100_000, ge=100)
    fraud_rate: float = Field(0.002, gt=0, lt=0.5)
    n_features: int = Field(30, ge=4, le=1000)
    seed: int = 0
    path: str | None = None
    format: str | None = None
    target: str = "Class"
    drop: list[str] = []
    time_column: str | None = None
    positive_label: str | int | bool | None = None
    split: str = "stratified"
    val_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    min_positives: int = Field(10, ge=1)
    na_values: list[str] = Field(list(NA_VALUES), description="text values that mean missing, "
                                 "in every text column (pandas' list plus '?')")
    on_leak: str = Field("drop", description="columns flagged as ids or leaks before any trial: "
                         "drop them from the features, warn and keep them, or error")
    group_column: str | None = Field(None, description="entity column (customer, card): all its "
                                     "rows land in one split; never a feature")
    # How trials get the data: through Ray's object store (read once on the driver)
    # or by reading ``path`` on each worker node (synthetic data is regenerated there
    # from its seed). ``auto`` uses the object store below ``ship_max_mb`` in memory.
    ship: str = "auto"
    ship_max_mb: float = Field(256, gt=0)

    # Keys that choose how data reaches the trials, not what the data is.
    SHIPPING_KEYS: ClassVar[frozenset[str]] = frozenset({"ship", "ship_max_mb"})

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return known(value, SOURCES, "data source")

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        return None if value is None else known(value, FORMATS, "data format")

    @field_validator("split")
    @classmethod
    def _split(cls, value: str) -> str:
        return known(value, SPLITS, "split")

    @field_validator("ship")
    @classmethod
    def _ship(cls, value: str) -> str:
        return known(value, SHIP_MODES, "data.ship mode")

    @field_validator("on_leak")
    @classmethod
    def _on_leak(cls, value: str) -> str:
        return known(value, LEAK_ACTIONS, "on_leak action")

    def loader_kwargs(self) -> dict[str, Any]:
        """Arguments of ``trainables.data.load_dataset`` (the shipping keys left out)."""
        return self.model_dump(exclude=set(self.SHIPPING_KEYS))

    @model_validator(mode="before")
    @classmethod
    def _path_implies_file(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("path") and "source" not in values:
            values = {**values, "source": "file"}
        return values

    @model_validator(mode="after")
    def _check(self) -> DataSpec:
        if self.source == "file" and not self.path:
            raise ValueError("source 'file' needs data.path")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"val_fraction + test_fraction must be < 1, got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        if self.split == "time" and not self.time_column:
            raise ValueError("split 'time' needs data.time_column")
        if self.group_column is not None and self.group_column in (self.target, *self.drop):
            raise ValueError(f"group_column {self.group_column!r} is also the target or in drop")
        return self


# -------------------------------------------------------------- objective
def _registry_name(value: str, registry: Any, what: str) -> str:
    """``value`` without its ``val_`` prefix, checked against a metric registry."""
    name = value.removeprefix("val_")
    if name not in registry:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(registry)}")
    return name


class ConstraintSpec(Section):
    """A bound on a metric at the trial's best round (``objective.constraints``)."""

    metric: str
    max: float | None = None
    min: float | None = None

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        return _registry_name(value, METRIC_MODES, "metric")

    @model_validator(mode="after")
    def _bounded(self) -> ConstraintSpec:
        if self.max is None and self.min is None:
            raise ValueError(f"constraint on {self.metric!r} needs max or min")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"constraint on {self.metric!r}: min ({self.min}) > max ({self.max})")
        return self


class ObjectiveSpec(Section):
    """What a trial is scored by, and the business settings of fraud metrics."""

    metric: str = "aucpr"
    mode: Literal["max", "min"] | None = None
    # Several objectives (multi-objective search): the first is ``metric`` (early stopping,
    # schedulers, threshold, the refit); modes come from the metric registry.
    metrics: list[str] | None = None
    # Bounds on metrics at the best round: infeasible trials are never the best (optuna_tpe,
    # nsga2 take them as Optuna constraints).
    constraints: list[ConstraintSpec] = []
    max_fpr: float = Field(0.001, gt=0, lt=1)
    min_recall: float = Field(0.8, gt=0, le=1)
    fn_cost: float = Field(100.0, ge=0)
    fp_cost: float = Field(1.0, ge=0)
    amount_column: str | None = None
    threshold: float | None = Field(None, ge=0, le=1)

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        return _registry_name(value, OBJECTIVES, "objective")

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = [v.removeprefix("val_") for v in value]
        if len(names) < 2:
            raise ValueError("needs two or more metrics (one objective is objective.metric)")
        unknown = [n for n in names if n not in METRIC_MODES]
        if unknown:
            raise ValueError(f"unknown metric {unknown[0]!r}; valid: {', '.join(METRIC_MODES)}")
        if len(set(names)) < len(names):
            raise ValueError(f"names a metric twice: {value}")
        if names[0] in MODEL_METRICS:
            raise ValueError(f"the first metric drives early stopping and the threshold, so it "
                             f"must be one of {', '.join(OBJECTIVES)}; got {names[0]!r}")
        return names

    @model_validator(mode="before")
    @classmethod
    def _first_is_metric(cls, values: Any) -> Any:
        if isinstance(values, dict) and isinstance(values.get("metrics"), list) and values["metrics"]:
            first = str(values["metrics"][0]).removeprefix("val_")
            if "metric" in values and str(values["metric"]).removeprefix("val_") != first:
                raise ValueError(f"metric ({values['metric']!r}) and metrics (first: {first!r}) "
                                 f"disagree; give only metrics")
            if values.get("mode") is not None:
                raise ValueError("mode cannot be combined with metrics (each metric's mode "
                                 "comes from the registry)")
            if first in OBJECTIVES:  # else the metrics validator says why it cannot be first
                values = {**values, "metric": first}
        return values

    @property
    def resolved_mode(self) -> str:
        return self.mode or OBJECTIVES[self.metric].mode

    @property
    def multi(self) -> bool:
        """True for a multi-objective job (``objective.metrics``)."""
        return self.metrics is not None

    @property
    def at_best(self) -> list[str]:
        """Metrics besides the first reported at the best round (``val_<m>_at_best``): the
        further objectives, then the constrained metrics."""
        out = list((self.metrics or [])[1:])
        out += [c.metric for c in self.constraints if c.metric != self.metric and c.metric not in out]
        return out

    @property
    def objective_keys(self) -> list[str]:
        """The result keys a multi-objective searcher reads, each at the trial's best round:
        :attr:`tune_key`, then ``val_<m>_at_best`` for each further metric."""
        return [self.tune_key] + [f"val_{m}_at_best" for m in (self.metrics or [])[1:]]

    @property
    def objective_modes(self) -> list[str]:
        """``"max"`` / ``"min"`` of each of :attr:`objective_keys`."""
        return [self.resolved_mode] + [METRIC_MODES[m] for m in (self.metrics or [])[1:]]

    @property
    def result_key(self) -> str:
        """The key of the objective in every reported result (its value at that round)."""
        return f"val_{self.metric}"

    @property
    def tune_key(self) -> str:
        """The trial's best value so far: what schedulers, searchers and stoppers compare.

        A trial is judged at its best round, not its last, and the refit uses that round.
        """
        return f"val_{self.metric}_best"


# ------------------------------------------------------------ search space
def validate_search_space(value: Any) -> dict[str, Any]:
    """Validate each entry on its own so errors name ``search_space.NAME.FIELD``."""
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping of parameter names to ranges, got {type(value).__name__}")
    out: dict[str, Any] = {}
    for name, entry in value.items():
        if isinstance(entry, dict):
            if entry.get("type") not in PARAM_TYPES:
                raise nested(f"{name}.type", f"must be one of {', '.join(PARAM_TYPES)} "
                             f"(got {entry.get('type')!r})")
            try:
                out[name] = PARAM_ADAPTER.validate_python(entry)
            except ValidationError as err:
                # skip=1: the first location part is the union's tag (the type name).
                where, msg = describe(err.errors()[0], skip=1)
                raise nested(f"{name}.{where}" if where else name, msg) from None
        elif isinstance(entry, (bool, int, float, str)):
            out[name] = entry
        else:
            raise nested(name, "must be a range mapping with a 'type', or a constant value")
    return out


# ------------------------------------------------------ search & schedule
class WarmStartSpec(Section):
    """An earlier job whose finished trials seed the searcher (see ``tuning.search.warm_start``)."""

    experiment: str | None = None
    run_id: str | None = None
    tracking_uri: str | None = Field(None, description="default: this job's tracking URI")

    @model_validator(mode="after")
    def _one_source(self) -> WarmStartSpec:
        if (self.experiment is None) == (self.run_id is None):
            raise ValueError("give exactly one of experiment (an MLflow experiment name) "
                             "or run_id (an earlier job's parent run)")
        return self


class SearchSpec(Section):
    """The search algorithm (a name from ``tuning.search.registry.SEARCHERS``)."""

    algorithm: str = "tpe"
    seed: int | None = 0
    n_initial_points: int = Field(10, ge=1)
    grid_points: int = Field(3, ge=2, description="values per numeric range for 'grid'")
    points_to_evaluate: list[dict[str, Any]] = []
    baseline: bool = Field(True, description="the first trial is the trainable's library "
                           "defaults (XGBoost's), clipped to the search space")
    warm_start: WarmStartSpec | None = None
    # two_stage: stage1_with over the full space, then refine_with on narrowed ranges.
    stage1_samples: int | None = Field(None, ge=2, description="default: half the budget")
    stage1_with: str = Field("random", description="random or qmc (Sobol)")
    refine_with: str = "tpe"
    top_fraction: float = Field(0.2, gt=0, le=1)
    margin: float = Field(0.1, ge=0, le=1, description="widening on each side of a narrowed "
                          "range, as a fraction of the original range (log scale for log params)")

    @field_validator("algorithm")
    @classmethod
    def _known(cls, value: str) -> str:
        if value in REMOVED:
            raise ValueError(REMOVED[value])
        return known(value, SEARCHERS, "search algorithm")

    @field_validator("stage1_with")
    @classmethod
    def _first_stage(cls, value: str) -> str:
        return known(value, FIRST_STAGES, "first-stage searcher")

    @field_validator("refine_with")
    @classmethod
    def _refiner(cls, value: str) -> str:
        return known(value, REFINERS, "refining searcher")


class SchedulerSpec(Section):
    """The early-stopping scheduler; times count reports (``training_iteration``)."""

    type: str = "asha"
    max_t: int | None = Field(None, ge=1)
    grace_period: int | None = Field(
        None, ge=1, description="reports before a trial can be stopped; default: a sixth of "
        "max_t (at least 2), so a slow learner is not judged on its first rounds")
    reduction_factor: float = Field(3, gt=1)
    brackets: int = Field(1, ge=1)
    min_samples_required: int = Field(3, ge=1, description="median: trials to compare first")

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value in REMOVED_SCHEDULERS:
            raise ValueError(REMOVED_SCHEDULERS[value])
        return known(value, SCHEDULERS, "scheduler")


# -------------------------------------------------------------- the rest
class TrainingSpec(Section):
    """How each trial trains: rounds, reporting and checkpoint cadence, fixed params."""

    num_boost_round: int = Field(300, ge=1)
    report_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(5, ge=1, description="in reports; the last report always saves")
    max_bin: int = Field(256, ge=2)
    params: dict[str, Any] = {}
    early_stopping_reports: int | None = Field(
        DEFAULT_EARLY_STOPPING_REPORTS, ge=1,
        description="stop a trial after this many reports without a better objective "
        "(null: train the whole budget)")
    fail_at_round: int | None = Field(
        None, ge=1, description="fault injection for reliability tests: each trial fails once here"
    )

    @property
    def max_reports(self) -> int:
        return math.ceil(self.num_boost_round / self.report_every)


class BudgetSpec(Section):
    num_samples: int = Field(20, ge=1)
    max_concurrent: int | None = Field(None, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    max_failures: int = Field(1, ge=0)
    target: float | None = Field(None, description="stop the job once the objective reaches this")
    no_improvement_trials: int | None = Field(
        None, ge=1, description="stop after this many completed trials without a new best")


class ResourcesSpec(Section):
    """What each trial holds. With ``workers`` a trial is a Ray Train run over that many
    data-parallel workers and ``cpu`` / ``gpu`` are per worker (the trial's coordinator
    holds a tenth of a CPU more; docs/scale.md)."""

    cpu: float = Field(1, gt=0)
    gpu: float = Field(0, ge=0)
    workers: int | None = Field(None, ge=1, description="data-parallel Ray Train workers per "
                                "trial (cpu and gpu are then per worker); absent: one process")

    @field_validator("gpu")
    @classmethod
    def _fraction_or_whole(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise ValueError(f"gpu above 1 must be a whole number, got {value}")
        return value


class TrackingSpec(Section):
    tracking_uri: str | None = None
    experiment: str | None = None
    log_model: bool = True
    register_as: str | None = Field(None, min_length=1, description="register the model in the "
                                    "MLflow Model Registry under this name (a new version per job)")
    register_alias: str = Field("challenger", pattern=r"^[A-Za-z0-9_-]+$", description="the alias "
                                "the new version gets (register_as only)")
    flush_timeout_s: float = Field(
        120, ge=0, description="how long the end of a job waits for an unreachable store")

    @field_validator("register_alias")
    @classmethod
    def _alias(cls, value: str) -> str:
        # MLflow reserves "latest" and version-like aliases ("v3").
        if value.lower() == "latest" or (value[:1] in "vV" and value[1:].isdigit()):
            raise ValueError(f"{value!r} is reserved by MLflow; choose another alias")
        return value

    @model_validator(mode="after")
    def _registry(self) -> TrackingSpec:
        if self.register_as and not self.log_model:
            raise ValueError("register_as needs log_model: true (there is no model to register)")
        return self


class StorageSpec(Section):
    path: str = DEFAULT_STORAGE
