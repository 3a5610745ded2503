"""XGBoost's parameter names and defaults, the trainable's own keys, and the baseline trial.

XGBoost warns about an unknown parameter and trains on without it, so a misspelt
``max_depht`` would tune nothing for a whole job; the names here let the spec fail
at once instead. The list was read off ``Booster.save_config()`` of XGBoost 3.2
(``tree_method="hist"``, ``binary:logistic``) plus the documented parameters a config
does not echo (``eval_metric``, ``verbosity``, aliases). Plain data: no xgboost import.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["CLASS_WEIGHTS", "TRAINABLE_KEYS", "VALID_NAMES", "XGB_DEFAULTS", "XGB_PARAMS",
           "baseline_config", "check_param_names", "class_weight", "scale_pos_weight_for"]

_GENERAL = ("booster", "device", "nthread", "n_jobs", "seed", "random_state", "seed_per_iteration",
            "verbosity", "validate_parameters", "disable_default_eval_metric",
            "fail_on_invalid_gpu_id", "use_rmm")
_TREE = ("eta", "learning_rate", "gamma", "min_split_loss", "max_depth", "min_child_weight",
         "max_delta_step", "subsample", "sampling_method", "colsample_bytree", "colsample_bylevel",
         "colsample_bynode", "lambda", "reg_lambda", "alpha", "reg_alpha", "tree_method",
         "scale_pos_weight", "updater", "refresh_leaf", "process_type", "grow_policy", "max_leaves",
         "max_bin", "num_parallel_tree", "monotone_constraints", "interaction_constraints",
         "multi_strategy", "max_cached_hist_node", "max_cat_to_onehot", "max_cat_threshold",
         "sparse_threshold", "extmem_single_page", "debug_synchronize")
_TASK = ("objective", "base_score", "boost_from_average", "eval_metric")
#: Every XGBoost (3.2) training parameter of the tree boosters and the learning task.
XGB_PARAMS: frozenset[str] = frozenset(_GENERAL + _TREE + _TASK)

#: Keys the trainable reads itself: the round budget and the class-weight mode.
TRAINABLE_KEYS = ("num_boost_round", "class_weight")
#: Every name a search space or ``training.params`` may use.
VALID_NAMES: frozenset[str] = XGB_PARAMS | frozenset(TRAINABLE_KEYS)

#: XGBoost's own defaults of the searchable parameters (``save_config()`` of 3.2).
XGB_DEFAULTS: dict[str, Any] = {
    "eta": 0.3, "learning_rate": 0.3, "gamma": 0.0, "min_split_loss": 0.0, "max_depth": 6,
    "min_child_weight": 1.0, "max_delta_step": 0.0, "subsample": 1.0, "sampling_method": "uniform",
    "colsample_bytree": 1.0, "colsample_bylevel": 1.0, "colsample_bynode": 1.0,
    "lambda": 1.0, "reg_lambda": 1.0, "alpha": 0.0, "reg_alpha": 0.0, "tree_method": "hist",
    "scale_pos_weight": 1.0, "grow_policy": "depthwise", "max_leaves": 0, "max_bin": 256,
    "num_parallel_tree": 1, "max_cat_to_onehot": 4, "max_cat_threshold": 64,
    "booster": "gbtree", "multi_strategy": "one_output_per_tree", "refresh_leaf": 1,
}

#: ``class_weight`` modes: how ``scale_pos_weight`` follows the negatives/positives ratio r.
CLASS_WEIGHTS = {"balanced": lambda r: r, "sqrt": math.sqrt, "none": lambda r: 1.0}


def class_weight(y: np.ndarray) -> float:
    """Negatives / positives of the labels the booster trains on (the balanced weight)."""
    y = np.asarray(y)
    positives = int(np.count_nonzero(y == 1))
    return (len(y) - positives) / max(positives, 1)


def scale_pos_weight_for(mode: str, y: np.ndarray) -> float:
    """``scale_pos_weight`` for a ``class_weight`` mode (``balanced``, ``sqrt``, ``none``)."""
    if mode not in CLASS_WEIGHTS:
        raise ValueError(f"class_weight: unknown mode {mode!r}; valid: {', '.join(CLASS_WEIGHTS)}")
    return float(CLASS_WEIGHTS[mode](class_weight(y)))


def check_param_names(names: Iterable[str], where: str) -> None:
    """Fail on the first name that is neither an XGBoost parameter nor a trainable key.

    Args:
        names: Keys of a search space or of ``training.params``.
        where: YAML path of the mapping, e.g. ``"search_space"``.

    Raises:
        ValueError: ``search_space.max_depht: not an XGBoost parameter; did you mean max_depth?``
    """
    for name in names:
        if name in VALID_NAMES:
            continue
        close = difflib.get_close_matches(str(name), sorted(VALID_NAMES), n=1)
        hint = f"did you mean {close[0]}?" if close else f"valid: {', '.join(sorted(VALID_NAMES))}"
        raise ValueError(f"{where}.{name}: not an XGBoost parameter; {hint}")


# ------------------------------------------------------------------ baseline
def _get(entry: Any, key: str, default: Any = None) -> Any:
    """A field of a range as YAML (dict) or as the spec's validated model."""
    return entry.get(key, default) if isinstance(entry, Mapping) else getattr(entry, key, default)


def _is_range(entry: Any) -> bool:
    return _get(entry, "type") is not None and not isinstance(entry, (bool, int, float, str))


def _clip(name: str, entry: Any, wanted: Any, what: str) -> tuple[Any, str | None]:
    """``wanted`` moved into the range ``entry``, and a note when it had to move."""
    kind = _get(entry, "type")
    if kind in ("choice", "grid"):
        values = list(_get(entry, "values"))
        if wanted in values:
            return wanted, None
        numeric = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if isinstance(wanted, (int, float)) and numeric:
            got = min(numeric, key=lambda v: abs(v - wanted))
        else:
            got = values[0]
        return got, f"{name}: {what} {wanted!r} is not among {values}; the baseline uses {got!r}"
    low, high = _get(entry, "low"), _get(entry, "high")
    if kind in ("randint", "lograndint"):
        got: Any = int(min(max(int(round(wanted)), low), high - 1))  # high is excluded
        shown = f"[{low}, {high - 1}]"
    else:
        got = float(min(max(float(wanted), low), high))
        q = _get(entry, "q")
        if q:
            got = float(min(max(round(got / q) * q, math.ceil(low / q) * q), math.floor(high / q) * q))
        shown = f"[{low:g}, {high:g}]"
    if got == wanted:
        return got, None
    return got, f"{name}: {what} {wanted!r} is outside {shown}; the baseline uses {got!r}"


def baseline_config(space: Mapping[str, Any], *, class_weight: float,
                    num_boost_round: int) -> tuple[dict[str, Any], list[str]]:
    """The baseline trial: XGBoost's own default for every searched parameter.

    Args:
        space: A ``search_space`` (YAML dicts or the spec's range models); constants are
            left to the space itself.
        class_weight: The job's balanced weight, negatives/positives of the training
            rows (:func:`class_weight`): ``scale_pos_weight`` gets it, since the trainable
            weighs classes that way when the weight is not searched.
        num_boost_round: The job's round budget (``training.num_boost_round``).

    Returns:
        ``(config, notes)``: one value per searched parameter, and one line per value that
        had to be clipped into the user's range (or has no XGBoost default).
    """
    check_param_names(space, "search_space")
    own = {"scale_pos_weight": (float(class_weight), "the job's class weight"),
           "class_weight": ("balanced", "the trainable's default class weight"),
           "num_boost_round": (int(num_boost_round), "the round budget")}
    config: dict[str, Any] = {}
    notes: list[str] = []
    for name, entry in space.items():
        if not _is_range(entry):
            continue
        if name in own:
            wanted, what = own[name]
        elif name in XGB_DEFAULTS:
            wanted, what = XGB_DEFAULTS[name], "XGBoost's default"
        else:
            config[name], note = _middle(name, entry)
            notes.append(note)
            continue
        config[name], note = _clip(name, entry, wanted, what)
        if note:
            notes.append(note)
    return config, notes


def _middle(name: str, entry: Any) -> tuple[Any, str]:
    """A central value for a parameter XGBoost gives no default to."""
    kind = _get(entry, "type")
    if kind in ("choice", "grid"):
        got = list(_get(entry, "values"))[0]
    else:
        low, high = _get(entry, "low"), _get(entry, "high")
        log = kind in ("loguniform", "lograndint")
        got = math.sqrt(low * high) if log else (low + high) / 2
        got = int(got) if kind in ("randint", "lograndint") else float(got)
    return got, f"{name}: no XGBoost default; the baseline uses {got!r}"
