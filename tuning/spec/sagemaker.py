"""The SageMaker tuning-job vocabulary as an alternative spec (a ``tuner:`` section).

A spec may say what a SageMaker ``HyperparameterTuner`` says, and this module
translates it onto the native sections before validation, so both vocabularies run
the same code (``tuning validate`` prints the native result)::

    tuner:
      strategy: Bayesian                  # Bayesian | Random | Hyperband | Grid
      objective_metric_name: validation:aucpr
      objective_type: Maximize            # Maximize | Minimize
      max_jobs: 20
      max_parallel_jobs: 2
      early_stopping_type: "Off"          # Off | Auto
      hyperparameter_ranges:
        eta:       {type: ContinuousParameter, min_value: 0.01, max_value: 0.2,
                    scaling_type: Logarithmic}
        max_depth: {type: IntegerParameter, min_value: 3, max_value: 10}
        booster:   {type: CategoricalParameter, values: [gbtree, dart]}

Mapping decisions:

- ``Bayesian`` -> ``gp``. SageMaker's Bayesian strategy models the objective with a
  Gaussian process (Perrone et al., "Amazon SageMaker Automatic Model Tuning", 2020);
  ``tuning.search.gp`` is the same family. ``Random`` -> ``random``;
  ``Grid`` -> ``grid``; ``Hyperband`` -> random sampling with the ``hyperband``
  scheduler (SageMaker's Hyperband is its own early stopping, so
  ``early_stopping_type`` must then be Off).
- ``early_stopping_type: Auto`` -> ``median``: SageMaker stops a job whose objective
  is worse than the median of earlier jobs at the same epoch, which is Ray's
  median stopping rule. ``Off`` (SageMaker's default) -> ``fifo``.
- ``IntegerParameter`` bounds are inclusive in SageMaker; ``randint`` excludes its
  upper bound, so ``max_value`` becomes ``high = max_value + 1``.
- ``scaling_type: Auto`` picks ``Logarithmic`` when ``min_value > 0`` and the range
  spans two decades or more (``max_value / min_value >= 100``), else ``Linear``.
- ``ReverseLogarithmic`` (dense near 1, for values in [0, 1)) has no native range
  type; rather than sample it linearly behind the user's back, it is an error that
  says so. Use ``Linear``, or tune ``1 - x`` with ``Logarithmic``.
- ``objective_metric_name`` drops a ``validation:`` or ``val_`` prefix; SageMaker
  XGBoost's ``auc`` is ``roc_auc`` here.
- ``completion_criteria`` (``target_objective_metric_value``,
  ``max_number_of_training_jobs_not_improving``) and ``max_runtime_in_seconds``
  become ``budget.target``, ``budget.no_improvement_trials`` and
  ``budget.time_budget_s``; ``static_hyperparameters`` become ``training.params``
  (``num_round`` becomes ``training.num_boost_round``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tuning.errors import SpecError
from tuning.spec.format import problems

# SageMaker strategy -> (search.algorithm, scheduler.type or None: from early_stopping_type).
# The names on the right are entries of the searcher and scheduler registries
# (a contract test checks them).
STRATEGIES: dict[str, tuple[str, str | None]] = {
    "Bayesian": ("gp", None), "Random": ("random", None), "Hyperband": ("random", "hyperband"),
    "Grid": ("grid", None),
}
# SageMaker early_stopping_type -> scheduler.type
EARLY_STOPPING = {"Off": "fifo", "Auto": "median"}
METRIC_ALIASES = {"auc": "roc_auc"}
# Native sections the tuner section writes; giving them as well would be ambiguous.
TRANSLATED = ("objective", "search_space", "search")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RangeSpec(_Model):
    type: Literal["ContinuousParameter", "IntegerParameter", "CategoricalParameter"]
    min_value: float | None = None
    max_value: float | None = None
    scaling_type: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = "Auto"
    values: list[Any] | None = None

    @model_validator(mode="after")
    def _shape(self) -> RangeSpec:
        if self.type == "CategoricalParameter":
            if not self.values:
                raise ValueError("CategoricalParameter needs values")
            return self
        if self.min_value is None or self.max_value is None:
            raise ValueError(f"{self.type} needs min_value and max_value")
        if not self.min_value < self.max_value:
            raise ValueError(f"min_value must be < max_value, got {self.min_value} and "
                             f"{self.max_value}")
        if self.type == "IntegerParameter" and (self.min_value != int(self.min_value)
                                                or self.max_value != int(self.max_value)):
            raise ValueError("IntegerParameter bounds must be integers")
        if self.scaling_type == "ReverseLogarithmic":
            raise ValueError("scaling_type ReverseLogarithmic has no native range type; use "
                             "Linear, or tune 1 - x with Logarithmic")
        if self.scaling_type == "Logarithmic" and self.min_value <= 0:
            raise ValueError(f"scaling_type Logarithmic needs min_value > 0, got {self.min_value}")
        return self


class CompletionSpec(_Model):
    target_objective_metric_value: float | None = None
    max_number_of_training_jobs_not_improving: int | None = Field(None, ge=1)


class TunerSpec(_Model):
    strategy: str = "Bayesian"
    objective_metric_name: str
    objective_type: Literal["Maximize", "Minimize"] = "Maximize"
    max_jobs: int = Field(ge=1)
    max_parallel_jobs: int = Field(1, ge=1)
    early_stopping_type: str = "Off"
    hyperparameter_ranges: dict[str, RangeSpec] = Field(min_length=1)
    static_hyperparameters: dict[str, Any] = {}
    completion_criteria: CompletionSpec | None = None
    max_runtime_in_seconds: float | None = Field(None, gt=0)
    random_seed: int | None = 0

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, value: str) -> str:
        if value not in STRATEGIES:
            raise ValueError(f"unknown strategy {value!r}; valid: {', '.join(STRATEGIES)}")
        return value

    @field_validator("early_stopping_type")
    @classmethod
    def _early_stopping(cls, value: str) -> str:
        if value not in EARLY_STOPPING:
            raise ValueError(f"unknown early_stopping_type {value!r}; valid: "
                             f"{', '.join(EARLY_STOPPING)}")
        return value

    @model_validator(mode="after")
    def _hyperband_stops_itself(self) -> TunerSpec:
        if STRATEGIES[self.strategy][1] and self.early_stopping_type != "Off":
            raise ValueError("strategy Hyperband does its own early stopping: "
                             "early_stopping_type must be Off")
        return self


class _Wrapper(_Model):
    tuner: TunerSpec


def translate(raw: dict[str, Any], source: str = "<spec>") -> dict[str, Any]:
    """A spec with a ``tuner:`` section -> the same spec in native sections.

    Raises:
        SpecError: the tuner section is invalid or clashes with native sections.
    """
    clash = [k for k in TRANSLATED if k in raw]
    if clash:
        raise SpecError(f"{source}: tuner: cannot be combined with native section "
                        f"{clash[0]} (use one vocabulary)")
    try:
        tuner = _Wrapper.model_validate({"tuner": raw["tuner"]}).tuner
    except ValidationError as err:
        raise SpecError(f"{source}: " + "; ".join(problems(err))) from None
    out = {k: v for k, v in raw.items() if k != "tuner"}
    out["objective"] = {"metric": _metric(tuner.objective_metric_name),
                        "mode": "max" if tuner.objective_type == "Maximize" else "min"}
    out["search_space"] = {name: _range(r) for name, r in tuner.hyperparameter_ranges.items()}
    algorithm, own_scheduler = STRATEGIES[tuner.strategy]
    out["search"] = {"algorithm": algorithm, "seed": tuner.random_seed}
    scheduler = own_scheduler or EARLY_STOPPING[tuner.early_stopping_type]
    budget = {"num_samples": tuner.max_jobs, "max_concurrent": tuner.max_parallel_jobs}
    if tuner.max_runtime_in_seconds:
        budget["time_budget_s"] = tuner.max_runtime_in_seconds
    criteria = tuner.completion_criteria
    if criteria and criteria.target_objective_metric_value is not None:
        budget["target"] = criteria.target_objective_metric_value
    if criteria and criteria.max_number_of_training_jobs_not_improving:
        budget["no_improvement_trials"] = criteria.max_number_of_training_jobs_not_improving
    out["scheduler"] = _merge(raw.get("scheduler"), {"type": scheduler}, "scheduler", source)
    out["budget"] = _merge(raw.get("budget"), budget, "budget", source)
    if tuner.static_hyperparameters:
        static = dict(tuner.static_hyperparameters)
        training: dict[str, Any] = {}
        if "num_round" in static:
            training["num_boost_round"] = static.pop("num_round")
        if static:
            training["params"] = static
        out["training"] = _merge(raw.get("training"), training, "training", source)
    return out


def _metric(name: str) -> str:
    name = name.removeprefix("validation:").removeprefix("val_")
    return METRIC_ALIASES.get(name, name)


def _range(r: RangeSpec) -> dict[str, Any]:
    if r.type == "CategoricalParameter":
        return {"type": "choice", "values": list(r.values or [])}
    low, high = r.min_value, r.max_value
    assert low is not None and high is not None  # checked by RangeSpec
    scaling = r.scaling_type
    if scaling == "Auto":
        scaling = "Logarithmic" if low > 0 and high / low >= 100 else "Linear"
    log = scaling == "Logarithmic"
    if r.type == "IntegerParameter":
        return {"type": "lograndint" if log else "randint", "low": int(low), "high": int(high) + 1}
    return {"type": "loguniform" if log else "uniform", "low": low, "high": high}


def _merge(native: Any, translated: dict[str, Any], section: str, source: str) -> dict[str, Any]:
    native = dict(native or {})
    both = sorted(set(native) & set(translated))
    if both:
        raise SpecError(f"{source}: {section}.{both[0]} is set by the tuner section too "
                        f"(use one vocabulary)")
    return {**native, **translated}
