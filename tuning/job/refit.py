"""After the search: summarise trials, pick the best, refit it once and test it."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import xgboost as xgb

from trainables.xgboost_fraud import fit_final
from tuning._ray_compat import grid_trials
from tuning.job.results import TrialSummary
from tuning.job.tuner import train_settings
from tuning.job.verdict import build_verdict
from tuning.spec import Spec
from tuning.tracking.tags import trial_status

logger = logging.getLogger(__name__)


def summarise(results: Any, spec: Spec) -> list[TrialSummary]:
    """One :class:`~tuning.job.results.TrialSummary` per trial, from Tune's result grid."""
    key, mode = spec.objective.result_key, spec.objective.resolved_mode
    out = []
    # Results come in the order of Tune's trials; a trial that never reported has no
    # trial_id in its metrics, so the id is taken from the trial itself.
    ids = [t.trial_id for t in grid_trials(results)]
    for i, result in enumerate(results):
        history = result.metrics_dataframe
        last = result.metrics or {}
        trial_id = last.get("trial_id") or (ids[i] if i < len(ids) else "?")
        config = {k: v for k, v in (result.config or {}).items()}
        status = trial_status(last, errored=result.error is not None)
        best_value = best_round = threshold = None
        best_row: dict[str, Any] = {}
        if history is not None and key in history and history[key].notna().any():
            idx = history[key].idxmax() if mode == "max" else history[key].idxmin()
            best_row = history.loc[idx].to_dict()
            best_value = float(best_row[key])
            best_round = int(best_row.get("rounds", 0))
            threshold = _float(best_row.get("val_threshold"))
        metrics = {k: float(v) for k, v in best_row.items()
                   if k.startswith("val_") and isinstance(v, (int, float)) and not isinstance(v, bool)}
        out.append(TrialSummary(trial_id=trial_id, status=status, config=config,
                                best_value=best_value, best_round=best_round,
                                rounds=int(last.get("rounds", 0) or 0), threshold=threshold,
                                metrics=metrics))
    return out


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def pick_best(trials: list[TrialSummary], mode: str) -> TrialSummary | None:
    scored = [t for t in trials if t.best_value is not None and not math.isnan(t.best_value)]
    if not scored:
        return None
    return (max if mode == "max" else min)(scored, key=lambda t: t.best_value)


def evaluate_best(spec: Spec, data: Any, best: TrialSummary) -> tuple[Any, np.ndarray]:
    """Refit the best configuration and score the test set once; return (booster, scores).

    ``evaluation.refit: train_val`` (default) refits on train+validation with the
    best trial's number of rounds; ``train`` rebuilds the trial's own model.
    """
    booster = fit_final(data, best.config, train_settings(spec),
                        rounds=max(1, best.best_round or 1),
                        include_val=spec.evaluation.refit == "train_val")
    scores = booster.predict(xgb.DMatrix(data.test.X, enable_categorical=True))
    return booster, scores


def verdict_of(spec: Spec, data: Any, best: TrialSummary, scores: np.ndarray) -> dict[str, Any]:
    """The test-set verdict at the threshold the best trial chose on validation."""
    settings = train_settings(spec)
    return build_verdict(data.test.y, scores, data.test.amount, settings.objective,
                         settings.objective_settings, best.threshold,
                         spec.evaluation.bootstrap, spec.evaluation.seed, spec.evaluation.refit)


