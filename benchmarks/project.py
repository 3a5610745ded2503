"""This project: ``tuning.run_job`` on ``examples/fraud_xgb.yaml``.

Only the benchmark settings are overridden (rows, trials, rounds, searcher seed,
concurrency, ``evaluation.cv: 1``) plus tracking to a temporary SQLite store and storage to a temporary
folder. Ray is started the same way as for the naive baseline, inside the timed
region. The timeline comes back from the MLflow store: each metric point carries
the driver time at which its result arrived.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.common import SPEC_PATH, BenchSettings, start_local_ray


def build_spec(settings: BenchSettings) -> Any:
    from tuning.spec import load_spec

    return load_spec(SPEC_PATH).with_overrides(**{
        "data.rows": settings.rows,
        "data.fraud_rate": settings.fraud_rate,
        "budget.num_samples": settings.trials,
        "budget.max_concurrent": settings.max_concurrent,
        "training.num_boost_round": settings.rounds,
        "training.report_every": settings.report_every,
        "search.seed": settings.seed,
        # One validation split, as the baselines use: no cross-validation inside trials.
        "evaluation.cv": 1,
        "tracking.tracking_uri": f"sqlite:///{settings.workdir}/mlflow.db",
        "storage.path": f"{settings.workdir}/tuning_runs",
    })


class FitClock:
    """Notes when ``Tuner.fit`` returns: the search ends there; the refit and model
    logging that ``run_job`` does afterwards are reported apart."""

    def __init__(self) -> None:
        self.ended: float | None = None

    def __enter__(self) -> FitClock:
        from ray import tune

        self._original = original = tune.Tuner.fit
        clock = self

        def fit(tuner: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(tuner, *args, **kwargs)
            finally:
                clock.ended = time.perf_counter()

        tune.Tuner.fit = fit  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: Any) -> None:
        from ray import tune

        tune.Tuner.fit = self._original  # type: ignore[method-assign]


def timeline_from_mlflow(uri: str, experiment_id: str, parent_run_id: str, metric: str,
                         t0: float) -> tuple[list[list[float]], dict[str, float]]:
    """(elapsed, value) of every reported result and each trial's last ``train_time_s``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([experiment_id],
                              filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
                              max_results=50_000)
    points: list[list[float]] = []
    train_s: dict[str, float] = {}
    for run in runs:
        trial_id = run.data.tags.get("ray.trial_id", run.info.run_id)
        train_s[trial_id] = float(run.data.metrics.get("train_time_s", 0.0))
        points += [[m.timestamp / 1000 - t0, m.value]
                   for m in client.get_metric_history(run.info.run_id, metric)]
    return sorted(points), train_s


def run(settings: BenchSettings) -> dict[str, Any]:
    """Run the project's job; return the raw benchmark record."""
    import ray

    from tuning.job.lifecycle import run_job

    spec = build_spec(settings)
    t0 = time.time()
    started = time.perf_counter()
    start_local_ray(settings.cores)
    with FitClock() as clock:
        result = run_job(spec, progress=False)
    finished = time.perf_counter()
    ray.shutdown()
    if clock.ended is None or result.best is None:
        raise RuntimeError("project: no trial reported a result")
    points, train_s = timeline_from_mlflow(result.tracking_uri, result.experiment_id,
                                           result.parent_run_id, result.metric, t0)
    return {
        "wall_s": clock.ended - started,
        "timeline": points,
        "train_s": train_s,
        "n_trials": len(result.trials),
        "n_results": len(points),
        "best_val": result.best.best_value,
        "best_config": result.best.config,
        "best_round": result.best.best_round,
        "mlflow_ms_per_result": result.mlflow_ms_per_result,
        "extra": {
            "fit_wall_s": result.wall_s,
            "finish_s": finished - clock.ended,
            "own_test_aucpr_train_val_refit": result.test_metrics.get("aucpr"),
            "unlogged_records": result.unlogged_records,
            "failed_trials": result.count("FAILED"),
        },
    }
