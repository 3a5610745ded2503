"""What every benchmarked method shares: settings, data, the model, timers, the refit.

Each method runs in a fresh ``python -m benchmarks.common <method> ...`` process,
so Ray starts cold for every method and no import or cache carries over. A method
module exposes ``run(settings) -> dict`` with the raw record (wall time, timeline,
per-trial training seconds, best config); this module adds the test score of the
best config, refit the same way for every method, and writes the record as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "examples" / "fraud_xgb.yaml"
RESULTS_DIR = ROOT / "benchmarks" / "results"

#: Method name -> module with ``run(settings)``; the single list of benchmarked methods.
METHODS: dict[str, str] = {
    "naive_raytune": "benchmarks.naive_raytune",
    "optuna": "benchmarks.optuna_baseline",
    "project": "benchmarks.project",
}


@dataclass(frozen=True)
class BenchSettings:
    """One benchmark cell: the same for every method except ``seed`` varies per run."""

    rows: int = 200_000
    fraud_rate: float = 0.002
    trials: int = 40
    rounds: int = 300
    report_every: int = 10
    max_concurrent: int = 2
    cores: int = 2
    seed: int = 0
    workdir: str = ""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> BenchSettings:
        return cls(**{f.name: raw[f.name] for f in dataclasses.fields(cls) if f.name in raw})


# --------------------------------------------------------------------- data
def load_data(settings: BenchSettings) -> Any:
    """The benchmark data: synthetic, data seed fixed at 0 whatever the searcher seed."""
    from trainables.data import load_dataset

    return load_dataset(rows=settings.rows, fraud_rate=settings.fraud_rate, seed=0,
                        val_fraction=0.2, test_fraction=0.2)


def search_space() -> dict[str, Any]:
    """The spec entries of ``examples/fraud_xgb.yaml``'s search space (8 parameters)."""
    from tuning.spec import load_spec

    return dict(load_spec(SPEC_PATH).search_space)


def base_params(config: dict[str, Any], data: Any, nthread: int) -> dict[str, Any]:
    """XGBoost parameters of one config: the project's defaults, so the model is the same."""
    from trainables.xgboost_fraud import TrainSettings, xgb_params

    return xgb_params(config, TrainSettings(), data, nthread, "cpu")


# ------------------------------------------------------------------- timing
_local = threading.local()
_patch_lock = threading.Lock()


class BoostTimer:
    """Seconds spent in ``Booster.update`` by this thread while the timer is active.

    The project's trainable reports ``train_time_s`` without the time spent
    evaluating and reporting; timing only the boosting step gives the baselines
    the same definition, whether they evaluate every round or every k rounds.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        _install_update_timer()

    def __enter__(self) -> BoostTimer:
        _local.timer = self
        return self

    def __exit__(self, *exc: Any) -> None:
        _local.timer = None


def _install_update_timer() -> None:
    import xgboost as xgb

    with _patch_lock:
        if getattr(xgb.Booster.update, "_bench_timed", False):
            return
        original = xgb.Booster.update

        def update(self: Any, *args: Any, **kwargs: Any) -> Any:
            timer = getattr(_local, "timer", None)
            if timer is None:
                return original(self, *args, **kwargs)
            started = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                timer.seconds += time.perf_counter() - started

        update._bench_timed = True  # type: ignore[attr-defined]
        xgb.Booster.update = update  # type: ignore[method-assign]


def apply_quick(args: argparse.Namespace, parser: argparse.ArgumentParser, quick: dict[str, Any]) -> None:
    """``--quick``: the smoke-test sizes in ``quick``, except flags given explicitly."""
    if args.quick:
        for key, value in quick.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)


def start_local_ray(cores: int) -> None:
    """A fresh local Ray with ``cores`` CPUs; never attaches to someone else's cluster."""
    import logging

    import ray

    ray.init(address="local", num_cpus=cores, include_dashboard=False,
             logging_level=logging.WARNING, log_to_driver=False)


# -------------------------------------------------------------------- refit
def refit_test_aucpr(data: Any, config: dict[str, Any], rounds: int, nthread: int) -> float:
    """Train ``config`` on the train split for ``rounds`` rounds; AUC-PR on the test split.

    The same refit for every method, so test scores compare configs, not refit recipes.
    """
    import xgboost as xgb

    from trainables.metrics import average_precision

    dtrain = xgb.QuantileDMatrix(data.train.X, label=data.train.y, max_bin=256,
                                 enable_categorical=True)
    booster = xgb.train(base_params(config, data, nthread), dtrain, num_boost_round=max(1, rounds))
    scores = booster.predict(xgb.DMatrix(data.test.X, enable_categorical=True))
    return float(average_precision(data.test.y, scores))


# ---------------------------------------------------------------- timelines
def time_to_target(timeline: list[list[float]], target: float) -> float | None:
    """Seconds until the best-so-far validation value first reaches ``target`` (max mode)."""
    for elapsed, value in sorted(timeline):
        if value >= target:
            return float(elapsed)
    return None


def best_of(timeline: list[list[float]]) -> float | None:
    return max((v for _, v in timeline), default=None)


# ------------------------------------------------------------------ workers
def run_method(method: str, settings: BenchSettings, timeout_s: float) -> dict[str, Any]:
    """Run one method in a fresh Python process and return its record."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{method}-") as work:
        settings = dataclasses.replace(settings, workdir=work)
        out = Path(work, "record.json")
        cmd = [sys.executable, "-m", "benchmarks.common", method,
               json.dumps(dataclasses.asdict(settings)), str(out)]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_DEDUP_LOGS": "1",
               "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}
        env.pop("RAY_ADDRESS", None)
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True,
                              timeout=timeout_s)
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
            raise RuntimeError(f"{method} (seed {settings.seed}) failed with exit code "
                               f"{proc.returncode}:\n" + "\n".join(tail))
        record = json.loads(out.read_text())
        record["process_s"] = time.monotonic() - started
        return record


def _worker(method: str, settings: BenchSettings, out: Path) -> None:
    module = importlib.import_module(METHODS[method])
    record = module.run(settings)
    data = load_data(settings)
    record["test_aucpr"] = refit_test_aucpr(data, record["best_config"], record["best_round"],
                                            settings.cores)
    record.update(method=method, seed=settings.seed, settings=dataclasses.asdict(settings))
    out.write_text(json.dumps(record))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one benchmark method (internal).")
    parser.add_argument("method", choices=sorted(METHODS))
    parser.add_argument("settings", help="BenchSettings as JSON")
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    _worker(args.method, BenchSettings.from_dict(json.loads(args.settings)), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
