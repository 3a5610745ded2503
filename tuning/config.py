"""The experiment spec: one YAML file, validated into one typed object.

Each YAML section has its own pydantic model with ``extra="forbid"`` so that a
misspelt key is an error instead of a silently ignored setting. Errors are turned
into one line that names the YAML path, the bad value and what is allowed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_STORAGE = "tuning_runs"


class SpecError(ValueError):
    """A spec that cannot be run; the message is one line naming the field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------- data
class DataSpec(_Section):
    """Where the transactions come from and how they are split."""

    source: Literal["synthetic", "file"] = "synthetic"
    rows: int = Field(100_000, ge=100)
    fraud_rate: float = Field(0.002, gt=0, lt=0.5)
    n_features: int = Field(30, ge=4, le=1000)
    seed: int = 0
    path: str | None = None
    format: Literal["csv", "parquet"] | None = None
    target: str = "Class"
    drop: list[str] = []
    time_column: str | None = None
    positive_label: str | int | bool | None = None
    split: Literal["stratified", "time"] = "stratified"
    val_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    min_positives: int = Field(10, ge=1)
    # How trials get the data: through Ray's object store (read once on the driver)
    # or by reading ``path`` on each worker node (synthetic data is regenerated there
    # from its seed). ``auto`` uses the object store below ``ship_max_mb`` in memory.
    ship: Literal["auto", "object_store", "path"] = "auto"
    ship_max_mb: float = Field(256, gt=0)

    # Keys that choose how data reaches the trials, not what the data is.
    SHIPPING_KEYS: ClassVar[frozenset[str]] = frozenset({"ship", "ship_max_mb"})

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
        return self


# -------------------------------------------------------------- objective
class ObjectiveSpec(_Section):
    """What a trial is scored by, and the business settings of fraud metrics."""

    metric: str = "aucpr"
    mode: Literal["max", "min"] | None = None
    max_fpr: float = Field(0.001, gt=0, lt=1)
    min_recall: float = Field(0.8, gt=0, le=1)
    fn_cost: float = Field(100.0, ge=0)
    fp_cost: float = Field(1.0, ge=0)
    amount_column: str | None = None
    threshold: float | None = Field(None, ge=0, le=1)

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        from trainables.objectives import OBJECTIVES

        name = value.removeprefix("val_")
        if name not in OBJECTIVES:
            raise ValueError(f"unknown objective {value!r}; valid: {', '.join(OBJECTIVES)}")
        return name

    @property
    def resolved_mode(self) -> str:
        from trainables.objectives import OBJECTIVES

        return self.mode or OBJECTIVES[self.metric].mode

    @property
    def result_key(self) -> str:
        """The key of the objective in every reported result."""
        return f"val_{self.metric}"


# ------------------------------------------------------------ search space
class _Range(_Section):
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> _Range:
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low={self.low}, high={self.high}")
        return self


class UniformParam(_Range):
    type: Literal["uniform"]
    q: float | None = Field(None, gt=0)


class LogUniformParam(_Range):
    type: Literal["loguniform"]

    @model_validator(mode="after")
    def _positive(self) -> LogUniformParam:
        if self.low <= 0:
            raise ValueError(f"low must be > 0 for loguniform, got {self.low}")
        return self


class RandIntParam(_Range):
    """Integers in [low, high): the upper bound is excluded, as in ``ray.tune.randint``."""

    type: Literal["randint", "lograndint"]
    low: int
    high: int

    @model_validator(mode="after")
    def _positive_log(self) -> RandIntParam:
        if self.type == "lograndint" and self.low <= 0:
            raise ValueError(f"low must be > 0 for lograndint, got {self.low}")
        return self


class ChoiceParam(_Section):
    type: Literal["choice", "grid"]
    values: list[Any] = Field(min_length=1)


ParamSpec = Annotated[
    Union[UniformParam, LogUniformParam, RandIntParam, ChoiceParam], Field(discriminator="type")
]
Constant = Union[StrictBool, StrictInt, StrictFloat, StrictStr]
_PARAM = TypeAdapter(ParamSpec)
PARAM_TYPES = ("uniform", "loguniform", "randint", "lograndint", "choice", "grid")


def _nested(path: str, message: str) -> ValueError:
    """An error inside a nested entry; ``_format_error`` folds ``path`` into the YAML path."""
    return ValueError(f"@{path}@ {message}")


def validate_search_space(value: Any) -> dict[str, Any]:
    """Validate each entry on its own so errors name ``search_space.NAME.FIELD``."""
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping of parameter names to ranges, got {type(value).__name__}")
    out: dict[str, Any] = {}
    for name, entry in value.items():
        if isinstance(entry, dict):
            if entry.get("type") not in PARAM_TYPES:
                raise _nested(f"{name}.type", f"must be one of {', '.join(PARAM_TYPES)} "
                              f"(got {entry.get('type')!r})")
            try:
                out[name] = _PARAM.validate_python(entry)
            except ValidationError as err:
                first = err.errors()[0]
                loc = ".".join(str(p) for p in first["loc"][1:])
                where = f"{name}.{loc}" if loc else name
                msg = first["msg"].removeprefix("Value error, ")
                got = first.get("input")
                shown = "" if isinstance(got, dict) else f" (got {got!r})"
                raise _nested(where, f"{msg}{shown}") from None
        elif isinstance(entry, (bool, int, float, str)):
            out[name] = entry
        else:
            raise _nested(name, "must be a range mapping with a 'type', or a constant value")
    return out


# ------------------------------------------------------ search & schedule
class WarmStartSpec(_Section):
    """An earlier job whose finished trials seed the searcher (see ``tuning.warm_start``)."""

    experiment: str | None = None
    run_id: str | None = None
    tracking_uri: str | None = Field(None, description="default: this job's tracking URI")

    @model_validator(mode="after")
    def _one_source(self) -> WarmStartSpec:
        if (self.experiment is None) == (self.run_id is None):
            raise ValueError("give exactly one of experiment (an MLflow experiment name) "
                             "or run_id (an earlier job's parent run)")
        return self


class SearchSpec(_Section):
    """The search algorithm (a name from ``tuning.search.SEARCHERS``)."""

    algorithm: str = "tpe"
    seed: int | None = 0
    n_initial_points: int = Field(10, ge=1)
    grid_points: int = Field(3, ge=2, description="values per numeric range for 'grid'")
    points_to_evaluate: list[dict[str, Any]] = []
    warm_start: WarmStartSpec | None = None
    # two_stage: random over the full space, then refine_with on narrowed ranges.
    stage1_samples: int | None = Field(None, ge=2, description="default: half the budget")
    refine_with: Literal["tpe", "gp"] = "tpe"
    top_fraction: float = Field(0.2, gt=0, le=1)
    margin: float = Field(0.1, ge=0, le=1, description="widening on each side of a narrowed "
                          "range, as a fraction of the original range (log scale for log params)")

    @field_validator("algorithm")
    @classmethod
    def _known(cls, value: str) -> str:
        from tuning.search import SEARCHERS

        if value not in SEARCHERS:
            raise ValueError(f"unknown search algorithm {value!r}; valid: {', '.join(SEARCHERS)}")
        return value


class SchedulerSpec(_Section):
    """The early-stopping scheduler; times count reports (``training_iteration``)."""

    type: str = "asha"
    max_t: int | None = Field(None, ge=1)
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(3, gt=1)
    brackets: int = Field(1, ge=1)
    min_samples_required: int = Field(3, ge=1, description="median: trials to compare first")

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        from tuning.schedulers import SCHEDULERS

        if value not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {value!r}; valid: {', '.join(SCHEDULERS)}")
        return value


class TrainingSpec(_Section):
    """How each trial trains: rounds, reporting and checkpoint cadence, fixed params."""

    num_boost_round: int = Field(300, ge=1)
    report_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(5, ge=1, description="in reports; the last report always saves")
    max_bin: int = Field(256, ge=2)
    params: dict[str, Any] = {}
    fail_at_round: int | None = Field(
        None, ge=1, description="fault injection for reliability tests: each trial fails once here"
    )

    @property
    def max_reports(self) -> int:
        return math.ceil(self.num_boost_round / self.report_every)


class BudgetSpec(_Section):
    num_samples: int = Field(20, ge=1)
    max_concurrent: int | None = Field(None, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    max_failures: int = Field(1, ge=0)
    target: float | None = Field(None, description="stop the job once the objective reaches this")
    no_improvement_trials: int | None = Field(
        None, ge=1, description="stop after this many completed trials without a new best")


class ResourcesSpec(_Section):
    cpu: float = Field(1, gt=0)
    gpu: float = Field(0, ge=0)

    @field_validator("gpu")
    @classmethod
    def _fraction_or_whole(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise ValueError(f"gpu above 1 must be a whole number, got {value}")
        return value


class TrackingSpec(_Section):
    tracking_uri: str | None = None
    experiment: str | None = None
    log_model: bool = True
    flush_timeout_s: float = Field(
        120, ge=0, description="how long the end of a job waits for an unreachable store")


class EvaluationSpec(_Section):
    """The final verdict on the test set."""

    refit: Literal["train_val", "train"] = Field(
        "train_val", description="train_val: refit on train+validation with the best rounds; "
        "train: the trial's own model (same data, params and rounds)")
    bootstrap: int = Field(200, ge=0, description="bootstrap replicates for the 95% intervals")
    seed: int = 0


class StorageSpec(_Section):
    path: str = DEFAULT_STORAGE


# ------------------------------------------------------------------ spec
class Spec(_Section):
    """A whole tuning job."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    data: DataSpec = DataSpec()
    trainable: str = "xgboost_fraud"
    objective: ObjectiveSpec = ObjectiveSpec()
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
        from trainables.registry import TRAINABLES

        if value not in TRAINABLES:
            raise ValueError(f"unknown trainable {value!r}; valid: {', '.join(TRAINABLES)}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _pair_scheduler(cls, values: Any) -> Any:
        # A searcher that needs its own scheduler (bohb) gets it unless one is named.
        from tuning.schedulers import default_scheduler_for

        if isinstance(values, dict) and isinstance(values.get("search"), dict):
            scheduler = values.get("scheduler") or {}
            paired = default_scheduler_for(values["search"].get("algorithm"))
            if paired and isinstance(scheduler, dict) and "type" not in scheduler:
                values = {**values, "scheduler": {**scheduler, "type": paired}}
        return values

    @model_validator(mode="after")
    def _coherent(self) -> Spec:
        from tuning.schedulers import check_pairing
        from tuning.search import check_search

        problem = check_pairing(self.search.algorithm, self.scheduler.type) or check_search(self)
        if problem:
            raise ValueError(problem)
        max_t = self.scheduler.max_t or self.training.max_reports
        if self.scheduler.grace_period > max_t:
            raise ValueError(
                f"scheduler.grace_period ({self.scheduler.grace_period}) must be <= max_t ({max_t})"
            )
        has_grid = any(
            isinstance(p, ChoiceParam) and p.type == "grid" for p in self.search_space.values()
        )
        if has_grid and self.search.algorithm not in ("grid", "random"):
            raise ValueError(
                f"search_space uses type 'grid', which only search.algorithm 'grid' or 'random' "
                f"can run, got {self.search.algorithm!r}"
            )
        return self

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or self.name

    @property
    def max_t(self) -> int:
        return self.scheduler.max_t or self.training.max_reports

    def tracking_uri(self) -> str:
        """Resolve the tracking URI: the spec, then ``MLFLOW_TRACKING_URI``, then the default."""
        return (
            self.tracking.tracking_uri
            or os.environ.get("MLFLOW_TRACKING_URI")
            or DEFAULT_TRACKING_URI
        )

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
        return parse_spec(raw, source="command line")


# ----------------------------------------------------------------- loading
def _format_error(err: ValidationError, source: str) -> str:
    parts = []
    for item in err.errors():
        loc = [str(p) for p in item["loc"]]
        path = ".".join(loc) or "<spec>"
        msg = item["msg"].removeprefix("Value error, ")
        if msg.startswith("@"):  # a nested error: its path continues the location
            nested, msg = msg[1:].split("@ ", 1)
            parts.append(f"{path}.{nested}: {msg}")
            continue
        if item["type"] == "extra_forbidden":
            msg = "unknown key"
        elif item["type"] == "missing":
            msg = "is required"
        value = item.get("input")
        shown = ("" if item["type"] == "missing" or isinstance(value, dict) or repr(value) in msg
                 else f" (got {value!r})")
        parts.append(f"{path}: {msg}{shown}" if loc else f"{msg}{shown}")
    return f"{source}: " + "; ".join(parts)


def parse_spec(raw: Any, source: str = "<spec>") -> Spec:
    """Validate a mapping (already parsed YAML) into a :class:`Spec`."""
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: the spec must be a mapping of sections, got {type(raw).__name__}")
    if "tuner" in raw:  # the SageMaker tuning-job vocabulary, translated onto the same Spec
        from tuning.sagemaker import translate

        raw = translate(raw, source)
    try:
        return Spec.model_validate(raw)
    except ValidationError as err:
        raise SpecError(_format_error(err, source)) from None


def load_spec(path: str | os.PathLike) -> Spec:
    """Read and validate a YAML spec file (safe loader: nothing in a spec is executed)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found") from None
    except OSError as err:
        raise SpecError(f"{path}: cannot read spec ({err.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"{path}: not valid YAML{where}") from None
    if raw is None:
        raise SpecError(f"{path}: the spec is empty")
    return parse_spec(raw, source=str(path))
