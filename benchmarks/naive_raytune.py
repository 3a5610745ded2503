"""The baseline a Ray Tune user writes from Ray's docs.

HyperOptSearch + ASHAScheduler, Ray's own ``MLflowLoggerCallback`` (SQLite store),
data passed with ``tune.with_parameters``, XGBoost reporting every round through
``TuneReportCheckpointCallback``, a fresh worker process per trial (no actor
reuse), at most ``max_concurrent`` trials at a time. The model and search space
are the project's; the validation metric is the same AUC-PR
(``trainables.metrics.average_precision``), given to XGBoost as ``custom_metric``.

Instrumentation only: a driver callback records when each result arrives, the MLflow
callback is subclassed to time ``log_trial_result``, and each trial adds its
boosting seconds to what it reports.
"""

from __future__ import annotations

import time
from typing import Any

from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.tune import Callback

from benchmarks.common import BenchSettings, BoostTimer, base_params, load_data, search_space, \
    start_local_ray

METRIC = "eval-aucpr"
#: Checkpoint cadence in rounds: the project's (every 5 reports of 10 rounds). Ray's
#: docs example checkpoints every round, which would make this baseline far slower.
CHECKPOINT_EVERY = 50


class TimedMLflowLoggerCallback(MLflowLoggerCallback):
    """Ray's MLflow callback, unchanged, with the driver time of each result measured."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.result_seconds = 0.0
        self.results = 0

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        started = time.perf_counter()
        super().log_trial_result(iteration, trial, result)
        self.result_seconds += time.perf_counter() - started
        self.results += 1


class Timeline(Callback):
    """Records (elapsed, value) of every result and each trial's last training seconds."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.points: list[list[float]] = []
        self.train_s: dict[str, float] = {}
        self.best: tuple[float, str, int, dict] | None = None

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if METRIC not in result:
            return
        value = float(result[METRIC])
        self.points.append([time.time() - self.t0, value])
        self.train_s[trial.trial_id] = float(result.get("train_time_s", 0.0))
        if self.best is None or value > self.best[0]:
            self.best = (value, trial.trial_id, int(result["training_iteration"]),
                         dict(trial.config))


def ray_space() -> dict[str, Any]:
    """The spec's search space written as plain Ray Tune domains."""
    from ray import tune

    out: dict[str, Any] = {}
    for name, p in search_space().items():
        kind = getattr(p, "type", None)
        if kind == "uniform":
            out[name] = tune.uniform(p.low, p.high)
        elif kind == "loguniform":
            out[name] = tune.loguniform(p.low, p.high)
        elif kind == "randint":
            out[name] = tune.randint(p.low, p.high)
        else:
            raise ValueError(f"search_space.{name}: type {kind!r} not supported by the benchmark")
    return out


def train_fraud(config: dict[str, Any], data: Any, settings: BenchSettings) -> None:
    """The trial: plain DMatrix per trial, evaluation and report every round."""
    import xgboost as xgb
    from ray.tune.integration.xgboost import TuneReportCheckpointCallback

    from trainables.metrics import average_precision

    dtrain = xgb.DMatrix(data.train.X, label=data.train.y, enable_categorical=True)
    dval = xgb.DMatrix(data.val.X, label=data.val.y, enable_categorical=True)
    params = base_params(config, data, nthread=1)
    params.pop("eval_metric", None)
    params["disable_default_eval_metric"] = 1
    y_val = data.val.y

    def aucpr(predt: Any, _: Any) -> tuple[str, float]:
        return "aucpr", average_precision(y_val, predt)

    timer = BoostTimer()
    report = TuneReportCheckpointCallback(
        frequency=CHECKPOINT_EVERY,
        results_postprocessing_fn=lambda d: {**d, "train_time_s": timer.seconds},
    )
    with timer:
        xgb.train(params, dtrain, num_boost_round=settings.rounds, evals=[(dval, "eval")],
                  custom_metric=aucpr, verbose_eval=False, callbacks=[report])


def run(settings: BenchSettings) -> dict[str, Any]:
    """Run the plain Ray Tune job; return the raw benchmark record."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch

    t0 = time.time()
    started = time.perf_counter()
    data = load_data(settings)
    start_local_ray(settings.cores)
    mlflow_cb = TimedMLflowLoggerCallback(
        tracking_uri=f"sqlite:///{settings.workdir}/mlflow.db", experiment_name="naive-raytune",
        save_artifact=False,
    )
    timeline = Timeline(t0)
    searcher = ConcurrencyLimiter(
        HyperOptSearch(n_initial_points=10, random_state_seed=settings.seed),
        max_concurrent=settings.max_concurrent,
    )
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(train_fraud, data=data, settings=settings),
                            {"cpu": 1}),
        param_space=ray_space(),
        tune_config=tune.TuneConfig(
            metric=METRIC, mode="max", search_alg=searcher, num_samples=settings.trials,
            scheduler=ASHAScheduler(max_t=settings.rounds, grace_period=settings.report_every,
                                    reduction_factor=3),
            reuse_actors=False,
        ),
        run_config=tune.RunConfig(storage_path=f"{settings.workdir}/ray_results",
                                  callbacks=[timeline, mlflow_cb], verbose=0),
    )
    results = tuner.fit()
    wall = time.perf_counter() - started
    errors = sum(r.error is not None for r in results)

    import ray

    ray.shutdown()
    if timeline.best is None:
        raise RuntimeError("naive Ray Tune: no trial reported a result")
    best_val, _, best_round, best_config = timeline.best
    return {
        "wall_s": wall,
        "timeline": timeline.points,
        "train_s": timeline.train_s,
        "n_trials": len(results),
        "n_results": len(timeline.points),
        "best_val": best_val,
        "best_config": best_config,
        "best_round": best_round,
        "mlflow_ms_per_result": 1000 * mlflow_cb.result_seconds / max(mlflow_cb.results, 1),
        "extra": {"failed_trials": errors},
    }
