"""After the search: summarise trials, pick the best, refit it once and test it."""

from __future__ import annotations

import logging
import math
from typing import Any

from tuning.config import Spec

logger = logging.getLogger(__name__)


def summarise(results: Any, spec: Spec) -> list[Any]:
    """One :class:`~tuning.run.TrialSummary` per trial, from Tune's result grid."""
    from tuning.run import TrialSummary

    key, mode = spec.objective.result_key, spec.objective.resolved_mode
    out = []
    for result in results:
        history = result.metrics_dataframe
        last = result.metrics or {}
        trial_id = last.get("trial_id") or (result.path.rsplit("_", 2)[-2] if result.path else "?")
        config = {k: v for k, v in (result.config or {}).items()}
        if result.error is not None:
            status = "FAILED"
        elif last.get("training_done", False):
            status = "FINISHED"
        else:
            status = "KILLED"
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


def pick_best(trials: list[Any], mode: str) -> Any | None:
    scored = [t for t in trials if t.best_value is not None and not math.isnan(t.best_value)]
    if not scored:
        return None
    return (max if mode == "max" else min)(scored, key=lambda t: t.best_value)


def evaluate_best(spec: Spec, data: Any, best: Any) -> tuple[Any, dict[str, float]]:
    """Refit the best configuration on train+validation and score the test set once.

    The threshold is the one the trial chose on the validation set, so the test
    figures are an honest estimate of the deployed operating point.
    """
    from trainables.objectives import evaluate
    from trainables.xgboost_fraud import fit_final
    from tuning.run import train_settings

    settings = train_settings(spec)
    booster = fit_final(data, best.config, settings, rounds=max(1, best.best_round or 1),
                        include_val=True)
    import xgboost as xgb

    scores = booster.predict(xgb.DMatrix(data.test.X, enable_categorical=True))
    metrics = evaluate(data.test.y, scores, settings.objective, settings.objective_settings,
                       amounts=data.test.amount, threshold=best.threshold)
    return booster, metrics


def log_model(client_uri: str, run_id: str, booster: Any, data: Any, threshold: float | None) -> str:
    """Log the refit model on the parent run as an MLflow XGBoost model; return its URI."""
    import mlflow
    import mlflow.xgboost
    import xgboost as xgb
    from mlflow.models import infer_signature

    example = data.test.X.head(5)
    signature = infer_signature(example, booster.predict(xgb.DMatrix(example, enable_categorical=True)))
    mlflow.set_tracking_uri(client_uri)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.xgboost.log_model(
            booster, name="model", signature=signature, input_example=example,
            model_format="ubj", metadata={"threshold": threshold},
        )
    return info.model_uri
