"""The trainable registry: the single list of trainable names.

Entries are import paths, resolved only when a job runs, so that listing names or
validating a spec does not import XGBoost.
"""

from __future__ import annotations

import importlib
from typing import Callable

TRAINABLES: dict[str, str] = {
    "xgboost_fraud": "trainables.xgboost_fraud:train_xgboost_fraud",
}


def get_trainable(name: str) -> Callable:
    """Import and return the trainable function registered as ``name``."""
    try:
        target = TRAINABLES[name]
    except KeyError:
        raise ValueError(f"unknown trainable {name!r}; valid: {', '.join(TRAINABLES)}") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
