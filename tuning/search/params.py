"""The parameter types of a ``search_space``: one pydantic model per range type.

A parameter is one of these models or a plain constant (bool, int, float, str).
The ``type`` literals of the models are the single list of range types
(:data:`PARAM_TYPES`); the spec, the codec and the Ray domains all read them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    model_validator,
)


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Range(_Param):
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


class ChoiceParam(_Param):
    type: Literal["choice", "grid"]
    values: list[Any] = Field(min_length=1)


RANGE_MODELS = (UniformParam, LogUniformParam, RandIntParam, ChoiceParam)
ParamSpec = Annotated[
    Union[UniformParam, LogUniformParam, RandIntParam, ChoiceParam], Field(discriminator="type")
]
Constant = Union[StrictBool, StrictInt, StrictFloat, StrictStr]
PARAM_ADAPTER: TypeAdapter = TypeAdapter(ParamSpec)
# Read from the models' ``type`` literals: the one list of range types.
PARAM_TYPES: tuple[str, ...] = tuple(
    name for model in RANGE_MODELS for name in get_args(model.model_fields["type"].annotation))


def is_tuned(param: Any) -> bool:
    """True for a searched range, False for a constant."""
    return isinstance(param, RANGE_MODELS)


def is_log(param: Any) -> bool:
    """True for ranges sampled on a log scale."""
    return isinstance(param, LogUniformParam) or (
        isinstance(param, RandIntParam) and param.type == "lograndint")


def tuned_names(space: dict[str, Any]) -> list[str]:
    """Names of the parameters that are searched (not constants)."""
    return [n for n, p in space.items() if is_tuned(p)]
