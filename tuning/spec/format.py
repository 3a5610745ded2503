"""The one formatter of pydantic errors: each problem as ``path: message (got value)``.

The spec, its search space entries and the SageMaker ``tuner:`` section all report
through :func:`problems`, so every spec error reads the same way.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from tuning.errors import SpecError


def nested(path: str, message: str) -> ValueError:
    """An error inside a nested entry; :func:`problems` folds ``path`` into the YAML path."""
    return ValueError(f"@{path}@ {message}")


def describe(item: dict[str, Any], skip: int = 0) -> tuple[str, str]:
    """One pydantic error item as (YAML path, ``message (got value)``).

    Args:
        item: one entry of ``ValidationError.errors()``.
        skip: leading location parts to drop (a discriminated union's tag).
    """
    path = ".".join(str(p) for p in item["loc"][skip:])
    msg = item["msg"].removeprefix("Value error, ")
    if msg.startswith("@"):  # a nested error: its path continues the location
        inner, msg = msg[1:].split("@ ", 1)
        return (f"{path}.{inner}" if path else inner), msg
    if item["type"] == "extra_forbidden":
        msg = "unknown key"
    elif item["type"] == "missing":
        msg = "is required"
    value = item.get("input")
    shown = ("" if item["type"] == "missing" or isinstance(value, dict) or repr(value) in msg
             else f" (got {value!r})")
    return path, f"{msg}{shown}"


def problem(item: dict[str, Any], skip: int = 0) -> str:
    """One pydantic error item as ``path: message (got value)``."""
    path, text = describe(item, skip)
    return f"{path}: {text}" if path else text


def problems(err: ValidationError, skip: int = 0) -> list[str]:
    """Every problem of a validation error, formatted by :func:`problem`."""
    return [problem(item, skip) for item in err.errors()]


def validated(model: type[BaseModel], raw: Any, source: str) -> Any:
    """``model.model_validate(raw)``, or a :class:`SpecError` naming ``source`` and each problem."""
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise SpecError(f"{source}: " + "; ".join(problems(err))) from None
