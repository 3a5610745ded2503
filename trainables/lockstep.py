"""Boost one booster per part in lockstep and yield one scored result every k rounds.

This is the trial without Ray: the trainable feeds each yielded result to
``tune.report`` and checkpoints the boosters, tests iterate it directly. All
boosters finish round r before any starts round r + 1, so a report holds the K
folds at the same round and schedulers (ASHA, Hyperband, median) compare trials on
the fold mean as they would on a holdout metric. Best-so-far state travels in the
checkpoint, so a restored trial stops and reports exactly as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import statistics
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from trainables.cv import Part, score_round
from trainables.settings import TrainSettings

__all__ = ["MODEL_FILE", "PROGRESS_FILE", "SCORING_REPEATS", "SCORING_ROWS", "Progress", "Report",
           "at_best_metrics", "judge_report", "load_checkpoint", "save_checkpoint", "scoring_ms", "train_lockstep"]

MODEL_FILE = "model.ubj"  # the holdout's one booster: the file name older checkpoints have
PROGRESS_FILE = "progress.json"


def fold_file(i: int) -> str:
    return f"fold_{i}.ubj"


@dataclass
class Progress:
    """Best objective so far, where it was reached, and reports since then."""

    best: float | None = None
    best_round: int = 0
    best_threshold: float | None = None
    since_best: int = 0
    stopped: bool = False
    # Further objectives at the best round (settings.also_at_best).
    at_best: dict[str, float] = field(default_factory=dict)
    # Tree nodes of each booster over its first ``counted_rounds`` rounds (model size).
    nodes: list[int] = field(default_factory=list)
    counted_rounds: int = 0

    def update(self, value: float, rounds: int, threshold: float, mode: str) -> bool:
        """Record one report's objective; True when it is a new best (nan never is)."""
        better = not math.isnan(value) and (
            self.best is None or (value > self.best if mode == "max" else value < self.best))
        if better:
            self.best, self.best_round, self.best_threshold, self.since_best = value, rounds, threshold, 0
        else:
            self.since_best += 1
        return better

    def keys(self, metric: str, also: tuple[str, ...] = ()) -> dict[str, float]:
        """The best-so-far keys of a result (``also``: further objectives at the best round)."""
        nan = float("nan")
        out = {f"val_{metric}_best": nan if self.best is None else float(self.best),
               "best_round": self.best_round,
               "best_threshold": nan if self.best_threshold is None else float(self.best_threshold)}
        out.update({f"val_{m}_at_best": float(self.at_best.get(m, nan)) for m in also})
        return out

    def violation(self, settings: TrainSettings) -> float:
        """How far the values at the best round exceed ``settings.constraints`` (0: feasible)."""
        total = 0.0
        for name, low, high in settings.constraints:
            value = self.best if name == settings.metric else self.at_best.get(name)
            if value is None or math.isnan(value):
                return float("nan")
            total += max(0.0, (low - value) if low is not None else 0.0,
                         (value - high) if high is not None else 0.0)
        return total

    def model_size(self, boosters: list[xgb.Booster], rounds: int) -> float:
        """Tree nodes of the boosters at ``rounds`` (their mean with K folds).

        Counted incrementally: a full dump of 300 trees takes ~0.25 s, the trees added
        since the last report a few ms. The counts travel in the checkpoint with the boosters.
        """
        if len(self.nodes) != len(boosters) or self.counted_rounds > rounds:
            self.nodes, self.counted_rounds = [0] * len(boosters), 0
        if rounds > self.counted_rounds:
            self.nodes = [n + _nodes(b[self.counted_rounds:rounds]) for n, b in zip(self.nodes, boosters)]
            self.counted_rounds = rounds
        return float(sum(self.nodes) / len(self.nodes))


def _nodes(booster: xgb.Booster) -> int:
    """Tree nodes (splits and leaves) of a booster: one line per node in its text dump."""
    return sum(tree.count("\n") for tree in booster.get_dump())


#: Validation rows each report scores to time the model (evenly spaced, the same every report).
SCORING_ROWS = 512
#: Timed repeats per report; their median is reported.
SCORING_REPEATS = 3
_SAMPLES: weakref.WeakKeyDictionary[Part, np.ndarray] = weakref.WeakKeyDictionary()


def _scoring_sample(part: Part) -> np.ndarray:
    """A dense float32 copy of up to :data:`SCORING_ROWS` validation rows of ``part``, cached.

    The validation matrix is quantised, so its values are each bin's cut value: every row
    follows the same path through the trees as the input row, and scores the same.
    """
    sample = _SAMPLES.get(part)
    if sample is None:
        csr = part.dval.get_data()
        rows = np.unique(np.linspace(0, csr.shape[0] - 1, min(SCORING_ROWS, csr.shape[0])).astype(int))
        csr = csr[rows]
        sample = np.full(csr.shape, np.nan, dtype=np.float32)  # absent entries are missing values
        sample[np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr)), csr.indices] = csr.data
        _SAMPLES[part] = sample
    return sample


def scoring_ms(boosters: list[xgb.Booster], parts: list[Part], repeats: int = SCORING_REPEATS) -> float:
    """Measured milliseconds to score 1,000 validation rows (the fold mean with K folds).

    ``Booster.predict`` on a matrix the booster has seen reuses its cached predictions and
    adds only the newest trees; ``inplace_predict`` on a numpy copy caches nothing, so each
    call walks every tree, with the trial's threads. The median of ``repeats`` calls.
    """
    per_fold = []
    for booster, part in zip(boosters, parts):
        sample = _scoring_sample(part)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            booster.inplace_predict(sample, validate_features=False)
            times.append(time.perf_counter() - start)
        per_fold.append(statistics.median(times) * 1e6 / len(sample))
    return float(sum(per_fold) / len(per_fold))


@dataclass(frozen=True)
class Report:
    """One result for Tune: ``result`` (metrics, ``rounds``, ``training_done``, best so far)
    and ``boosters`` to checkpoint; ``done`` marks the trial's last report."""

    rounds: int
    result: dict[str, Any]
    boosters: list[xgb.Booster]
    progress: Progress
    done: bool


def train_lockstep(params: list[dict[str, Any]], parts: list[Part], total: int, settings: TrainSettings,
                   boosters: list[xgb.Booster] | None = None, progress: Progress | None = None,
                   on_round: Callable[[int], None] | None = None) -> Iterator[Report]:
    """Train one booster per part up to ``total`` rounds, yielding a :class:`Report` every
    ``settings.report_every`` rounds (and at the last round).

    Args:
        params: XGBoost parameters per part.
        parts: The holdout or the K folds (:func:`trainables.cv.parts_for`).
        total: Round budget.
        settings: Reporting cadence, objective, threshold rule, early stopping.
        boosters: Boosters restored from a checkpoint (same number as ``parts``), or None.
        progress: Best-so-far state restored with them.
        on_round: Called with the round count after every round (test hooks, fault injection).

    Yields:
        One report per scoring; ``train_time_s`` in its result excludes the time spent at
        the yield (the driver's report callbacks). ``val_model_size`` and ``val_scoring_ms``
        describe the model at that round; ``val_scoring_ms_at_best`` is always reported.
    """
    if boosters is None:
        boosters = [xgb.Booster(p, [part.dtrain]) for p, part in zip(params, parts)]
    elif len(boosters) != len(parts):
        raise ValueError(f"checkpoint holds {len(boosters)} boosters for {len(parts)} folds")
    else:  # as xgb.train does with xgb_model: the trial's params, the matrix in the cache
        boosters = [xgb.Booster(p, [part.dtrain], model_file=b) for p, b, part in zip(params, boosters, parts)]
    progress = progress or Progress()
    done = boosters[0].num_boosted_rounds()
    train_s, started = 0.0, time.perf_counter()
    for i in range(done, total):
        for booster, part in zip(boosters, parts):
            booster.update(part.dtrain, i)
        rounds = i + 1
        if on_round is not None:
            on_round(rounds)
        if rounds % settings.report_every and rounds < total:
            continue
        result = score_round(parts, [b.predict(p.dval) for b, p in zip(boosters, parts)], settings)
        result["val_model_size"] = progress.model_size(boosters, rounds)
        result["val_scoring_ms"] = scoring_ms(boosters, parts)
        last = judge_report(result, progress, settings, rounds, total)
        result.update(rounds=rounds, training_done=last, cv_folds=len(parts))
        train_s += time.perf_counter() - started
        result["train_time_s"] = train_s
        yield Report(rounds, result, boosters, progress, last)
        started = time.perf_counter()
        if last:
            return


def judge_report(result: dict[str, Any], progress: Progress, settings: TrainSettings,
                 rounds: int, total: int) -> bool:
    """Track the best round with a scored ``result`` and add the best-so-far keys (and the
    constraint violation) to it; True when training ends here (the round budget, or
    ``early_stopping_reports`` reports without a better objective)."""
    at_best = at_best_metrics(settings)
    if progress.update(result[f"val_{settings.metric}"], rounds, result["val_threshold"], settings.mode):
        progress.at_best = {m: float(result[f"val_{m}"]) for m in at_best}
    patience = settings.early_stopping_reports
    last = rounds >= total or (patience is not None and progress.since_best >= patience)
    progress.stopped = last
    result.update(progress.keys(settings.metric, at_best))
    if settings.constraints:
        result["val_constraint_violation"] = progress.violation(settings)
    return last


def at_best_metrics(settings: TrainSettings) -> tuple[str, ...]:
    """Metrics reported at the best round: the job's further objectives, and always the
    scoring time (``tuning best --max-scoring-ms`` picks by it in any job)."""
    return settings.also_at_best + (() if "scoring_ms" in settings.also_at_best else ("scoring_ms",))


def save_checkpoint(folder: str | Path, boosters: list[xgb.Booster], progress: Progress) -> None:
    """Write the boosters (``model.ubj`` for one, ``fold_<i>.ubj`` for K) and the progress."""
    folder = Path(folder)
    if len(boosters) == 1:
        (folder / MODEL_FILE).write_bytes(boosters[0].save_raw("ubj"))
    else:
        for i, booster in enumerate(boosters):
            (folder / fold_file(i)).write_bytes(booster.save_raw("ubj"))
    (folder / PROGRESS_FILE).write_text(json.dumps(asdict(progress)))


def load_checkpoint(folder: str | Path, k: int) -> tuple[list[xgb.Booster], Progress]:
    """Boosters and progress saved by :func:`save_checkpoint` (older ones lack the progress).

    Raises:
        ValueError: When the checkpoint was written for another number of folds.
    """
    folder = Path(folder)
    saved = 1 if (folder / MODEL_FILE).exists() else len(list(folder.glob("fold_*.ubj")))
    if saved != k:
        raise ValueError(f"checkpoint in {folder} holds {saved} boosters: written for another "
                         f"number of folds than {k}")
    files = [folder / MODEL_FILE] if k == 1 else [folder / fold_file(i) for i in range(k)]
    boosters = [xgb.Booster(model_file=str(f)) for f in files]
    state = folder / PROGRESS_FILE
    progress = Progress(**json.loads(state.read_text())) if state.exists() else Progress()
    return boosters, progress
