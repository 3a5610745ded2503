"""The baseline trial: the trainable's library defaults, first in every search.

A tuner exists to hand over a better model than the defaults; the baseline trial
makes "better" measurable. It competes like any trial (when it wins on validation
it is the model handed over), and the verdict scores it on the same test rows.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from trainables.registry import baseline
from trainables.xgb_params import class_weight

if TYPE_CHECKING:
    from tuning.spec import Spec

logger = logging.getLogger(__name__)


def baseline_point(spec: Spec, data: Any) -> dict[str, Any] | None:
    """The baseline config over ``spec``'s search space, or None when the spec turns it off.

    Grid search enumerates its own points, so it gets no baseline. Clipped defaults
    are logged once, one line each.
    """
    if not spec.search.baseline or spec.search.algorithm == "grid":
        return None
    space = {name: p.model_dump(exclude_none=True) if hasattr(p, "model_dump") else p
             for name, p in spec.search_space.items()}
    y = np.concatenate([data.train.y, data.val.y])  # every row a trial or the refit trains on
    config, notes = baseline(spec.trainable, space, class_weight=class_weight(y),
                             num_boost_round=spec.training.num_boost_round)
    for note in notes:
        logger.info("baseline trial: %s", note)
    # Constants are part of every point the searcher is given.
    config.update({n: p for n, p in spec.search_space.items() if not hasattr(p, "model_dump")})
    return config


def is_baseline(config: dict[str, Any], point: dict[str, Any] | None) -> bool:
    """True when a trial's ``config`` is the baseline ``point`` (floats to 1e-9)."""
    if not point:
        return False
    for name, wanted in point.items():
        got = config.get(name)
        if isinstance(wanted, float) or isinstance(got, float):
            try:
                if not math.isclose(float(got), float(wanted), rel_tol=1e-9, abs_tol=1e-12):
                    return False
            except (TypeError, ValueError):
                return False
        elif got != wanted:
            return False
    return True
