"""The trainable registry: the single list of trainable names, and what each brings.

Entries are import paths, resolved only when asked for, so that listing names or
validating a spec does not import XGBoost (the parameter and space modules named
here are plain data).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainableEntry:
    """Import paths (``module:attr``) of a trainable and of its parameter facts.

    Attributes:
        target: The Ray Tune function trainable.
        default_space: The ``search_space`` used when a spec gives none (YAML shape).
        param_names: Every valid key of a search space or ``training.params``.
        check_params: ``check(names, where)`` raising a one-line ValueError on a bad name.
        baseline: ``baseline(space, *, class_weight, num_boost_round) -> (config, notes)``.
    """

    target: str
    default_space: str
    param_names: str
    check_params: str
    baseline: str


TRAINABLE_ENTRIES: dict[str, TrainableEntry] = {
    "xgboost_fraud": TrainableEntry(
        target="trainables.xgboost_fraud:train_xgboost_fraud",
        default_space="trainables.default_space:DEFAULT_SPACE",
        param_names="trainables.xgb_params:VALID_NAMES",
        check_params="trainables.xgb_params:check_param_names",
        baseline="trainables.xgb_params:baseline_config",
    ),
}
#: Name -> trainable import path (the list the spec, CLI and docs read).
TRAINABLES: dict[str, str] = {name: e.target for name, e in TRAINABLE_ENTRIES.items()}


def _entry(name: str) -> TrainableEntry:
    try:
        return TRAINABLE_ENTRIES[name]
    except KeyError:
        raise ValueError(f"unknown trainable {name!r}; valid: {', '.join(TRAINABLES)}") from None


def _load(path: str) -> Any:
    module, attr = path.split(":")
    return getattr(importlib.import_module(module), attr)


def get_trainable(name: str) -> Callable:
    """Import and return the trainable function registered as ``name``."""
    return _load(_entry(name).target)


def default_space(name: str) -> dict[str, Any]:
    """A copy of the search space ``name`` tunes when the spec has none."""
    return {k: dict(v) for k, v in _load(_entry(name).default_space).items()}


def param_names(name: str) -> frozenset[str]:
    """Every parameter name ``name`` accepts in a search space or ``training.params``."""
    return frozenset(_load(_entry(name).param_names))


def check_params(name: str, names: Iterable[str], where: str) -> None:
    """Raise ValueError (``where.key: not an XGBoost parameter; did you mean ...?``) on a bad name."""
    _load(_entry(name).check_params)(names, where)


def baseline(name: str, space: Mapping[str, Any], *, class_weight: float,
             num_boost_round: int) -> tuple[dict[str, Any], list[str]]:
    """The baseline trial of ``name`` over ``space``: its library's defaults, clipped, with notes."""
    return _load(_entry(name).baseline)(space, class_weight=class_weight,
                                        num_boost_round=num_boost_round)
