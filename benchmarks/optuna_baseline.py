"""The Optuna baseline: everything in one process, no cluster.

TPESampler + HyperbandPruner, RDB storage in SQLite, ``n_jobs`` = cores (threads;
XGBoost releases the GIL while boosting). Each trial trains in-process on matrices
built once, scores validation AUC-PR with ``trainables.metrics.average_precision``
every ``report_every`` rounds, reports it and lets the pruner stop the trial.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from benchmarks.common import BenchSettings, BoostTimer, base_params, load_data, search_space


def suggest(trial: Any) -> dict[str, Any]:
    """The spec's search space as Optuna suggestions (randint's upper bound excluded)."""
    out: dict[str, Any] = {}
    for name, p in search_space().items():
        kind = getattr(p, "type", None)
        if kind == "uniform":
            out[name] = trial.suggest_float(name, p.low, p.high)
        elif kind == "loguniform":
            out[name] = trial.suggest_float(name, p.low, p.high, log=True)
        elif kind == "randint":
            out[name] = trial.suggest_int(name, int(p.low), int(p.high) - 1)
        else:
            raise ValueError(f"search_space.{name}: type {kind!r} not supported by the benchmark")
    return out


class _Recorder:
    """Thread-safe timeline and per-trial training seconds of the study."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.lock = threading.Lock()
        self.points: list[list[float]] = []
        self.train_s: dict[str, float] = {}
        self.best: tuple[float, int, dict] | None = None

    def point(self, value: float, rounds: int, config: dict[str, Any]) -> None:
        with self.lock:
            self.points.append([time.time() - self.t0, value])
            if self.best is None or value > self.best[0]:
                self.best = (value, rounds, dict(config))


def run(settings: BenchSettings) -> dict[str, Any]:
    """Run the Optuna study; return the raw benchmark record."""
    import optuna
    import xgboost as xgb

    from trainables.metrics import average_precision

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.time()
    started = time.perf_counter()
    data = load_data(settings)
    dtrain = xgb.DMatrix(data.train.X, label=data.train.y, enable_categorical=True)
    dval = xgb.DMatrix(data.val.X, label=data.val.y, enable_categorical=True)
    rec = _Recorder(t0)

    class Pruning(xgb.callback.TrainingCallback):
        def __init__(self, trial: Any, config: dict[str, Any]) -> None:
            super().__init__()
            self.trial, self.config, self.last = trial, config, float("nan")

        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            rounds = epoch + 1
            if rounds % settings.report_every and rounds < settings.rounds:
                return False
            self.last = float(average_precision(data.val.y, model.predict(dval)))
            rec.point(self.last, rounds, self.config)
            self.trial.report(self.last, rounds)
            if self.trial.should_prune():
                raise optuna.TrialPruned()
            return False

    def objective(trial: Any) -> float:
        config = suggest(trial)
        params = base_params(config, data, nthread=1)
        params.pop("eval_metric", None)
        callback = Pruning(trial, config)
        timer = BoostTimer()
        try:
            with timer:
                xgb.train(params, dtrain, num_boost_round=settings.rounds, callbacks=[callback],
                          verbose_eval=False)
        finally:
            with rec.lock:
                rec.train_s[str(trial.number)] = timer.seconds
        return callback.last

    study = optuna.create_study(
        direction="maximize", storage=f"sqlite:///{settings.workdir}/optuna.db",
        sampler=optuna.samplers.TPESampler(seed=settings.seed, n_startup_trials=10),
        pruner=optuna.pruners.HyperbandPruner(min_resource=settings.report_every,
                                              max_resource=settings.rounds, reduction_factor=3),
    )
    study.optimize(objective, n_trials=settings.trials, n_jobs=settings.cores)
    wall = time.perf_counter() - started
    if rec.best is None:
        raise RuntimeError("optuna: no trial reported a result")
    best_val, best_round, best_config = rec.best
    states = [t.state.name for t in study.trials]
    return {
        "wall_s": wall,
        "timeline": rec.points,
        "train_s": rec.train_s,
        "n_trials": len(study.trials),
        "n_results": len(rec.points),
        "best_val": best_val,
        "best_config": best_config,
        "best_round": best_round,
        "mlflow_ms_per_result": None,
        "extra": {"pruned_trials": states.count("PRUNED"), "failed_trials": states.count("FAIL")},
    }
