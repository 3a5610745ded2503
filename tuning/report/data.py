"""The data of a job report, extracted from the tracking store: operating points,
hyperparameter importance, the test-set curve of the logged model, the trials table."""

from __future__ import annotations

import math
import tempfile
from typing import Any

import yaml

from trainables.data import load_dataset
from trainables.metrics import pareto_front, threshold_curve
from tuning._mlflow_compat import use_tracking_uri
from tuning.report.plots import encoded
from tuning.spec import parse_spec
from tuning.tracking.store import Job, booster_uri, load_spec_text
from tuning.tracking.tags import FINISHED, KILLED

# Statuses whose reports are complete: a stopped-early trial is a finished, shorter model.
DONE = (FINISHED, KILLED)
#: The verdict's per-row test scores on the parent run (tuning.job.verdict.write_verdict).
TEST_SCORES = "verdict/test_scores.csv"


def operating_points(job: Job) -> list[dict]:
    """Each done trial's validation recall/FPR at its own threshold, at its best step."""
    out = []
    for t in job.trials:
        if t.status in DONE and "val_recall" in t.point and "val_fpr" in t.point:
            out.append({"trial_id": t.trial_id, "run_id": t.run_id, "status": t.status,
                        "recall": t.point["val_recall"], "fpr": t.point["val_fpr"],
                        "precision": t.point.get("val_precision", math.nan),
                        "threshold": t.point.get("val_threshold", math.nan),
                        "objective": t.best_value, "round": t.best_round})
    return out


def best_under_fpr(points: list[dict], max_fpr: float) -> dict | None:
    """The Pareto-front point with the highest recall whose FPR is at most ``max_fpr``."""
    eligible = [p for p in pareto_front(points) if p["fpr"] <= max_fpr]
    return max(eligible, key=lambda p: (p["recall"], -p["fpr"])) if eligible else None


def importance_rows(job: Job) -> list[tuple[str, float]]:
    """Hyperparameter importance from a random-forest surrogate of objective ~ params.

    scikit-learn's impurity importances (normalised to sum to 1), as Optuna's
    fANOVA evaluator does with its own forest; needs at least 3 scored trials.
    """
    from sklearn.ensemble import RandomForestRegressor  # heavy: scikit-learn

    scored = [t for t in job.trials if t.best_value is not None]
    names = sorted({k for t in scored for k in t.params})
    if len(scored) < 3 or not names:
        raise ValueError(f"needs at least 3 scored trials with params, got {len(scored)}")
    X, _ = encoded(scored, names)
    y = [t.best_value for t in scored]
    forest = RandomForestRegressor(n_estimators=256, random_state=0).fit(X, y)
    return sorted(zip(names, (float(v) for v in forest.feature_importances_)),
                  key=lambda r: r[1], reverse=True)


def test_curve(job: Job) -> tuple[Any, float | None]:
    """The logged model's test-split curve: (ThresholdCurve, threshold).

    From the verdict's ``test_scores.csv`` on the parent run (the refit model's score of
    every test row, with its label) when it holds the labels; otherwise (a job logged
    before the labels were written) by reading the data and scoring the test split
    again (:func:`rescored_test_curve`). At 10M rows the rescoring took 55 s of the report.
    """
    logged = logged_test_scores(job)
    if logged is None:
        return rescored_test_curve(job)
    return _curve(job, *logged)


def logged_test_scores(job: Job) -> tuple[Any, Any] | None:
    """(labels, scores) of the test rows from the parent run's verdict, or None."""
    import pandas as pd
    from mlflow.tracking import MlflowClient  # heavy: mlflow

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = MlflowClient(job.tracking_uri).download_artifacts(job.run_id, TEST_SCORES, tmp)
        except Exception:  # noqa: BLE001 - no verdict logged (offline, or no model): score again
            return None
        frame = pd.read_csv(path)
    if "label" not in frame.columns:
        return None
    return frame["label"].to_numpy(), frame["score"].to_numpy()


def rescored_test_curve(job: Job) -> tuple[Any, float | None]:
    """Score the test split with the job's logged model: (ThresholdCurve, threshold)."""
    import xgboost as xgb  # heavy: xgboost

    spec = parse_spec(yaml.safe_load(load_spec_text(job)), source=f"run {job.run_id} spec.yaml")
    booster = load_model(job)
    if spec.streams_data():  # sharded data-parallel job: the test rows read batch by batch
        from trainables.shard_plan import plan_shards
        from trainables.shards import predict_split

        data = plan_shards(**spec.dataset_kwargs())
        return _curve(job, data.test.y, predict_split(data, "test", [booster])[0])
    data = load_dataset(**spec.dataset_kwargs())
    scores = booster.predict(xgb.DMatrix(data.test.X, enable_categorical=True))
    return _curve(job, data.test.y, scores)


def _curve(job: Job, y: Any, scores: Any) -> tuple[Any, float | None]:
    threshold = job.params.get("best.threshold")
    return threshold_curve(y, scores), (
        float(threshold) if isinstance(threshold, (int, float)) else None)


def load_model(job: Job) -> Any:
    """The refit best booster logged on the parent run."""
    import mlflow.xgboost  # heavy: xgboost

    # runs:/ URIs resolve through the global tracking URI even when one is passed in:
    # point it at the job's store for this call only.
    with use_tracking_uri(job.tracking_uri):
        return mlflow.xgboost.load_model(booster_uri(job))


def trials_table(job: Job) -> list[dict]:
    names = sorted({k for t in job.trials for k in t.params})
    return [{"number": t.number, "trial_id": t.trial_id, "status": t.status,
             job.metric: t.best_value, "best_round": t.best_round, "last_round": t.last_round,
             "threshold": t.point.get("val_threshold"), **{n: t.params.get(n) for n in names},
             "run_id": t.run_id} for t in job.trials]
