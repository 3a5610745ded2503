"""The (train, validation) parts a trial trains on, and how one round of them is scored.

A trial trains one booster per part: the holdout is one part (train, validation);
K-fold CV is K parts over the non-test rows (``Dataset.dev()``), whose validation
rows together cover every row once (stratified or group folds) or every row after
the first time block (forward chaining). The quantised matrices cost far more than
a short trial, so they are built once per worker process and cached by the data's
fingerprint and everything else that shapes them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import xgboost as xgb

from trainables.data import Dataset
from trainables.folds import make_folds
from trainables.objectives import evaluate
from trainables.preprocess import DataError
from trainables.settings import TrainSettings
from trainables.thresholds import threshold_on_curve
from trainables.curve import threshold_curve

__all__ = ["CACHE_STATS", "Part", "fold_kind", "fold_parts", "holdout_parts", "matrices", "oof_scores",
           "parts_for", "score_round"]


@dataclass(frozen=True, eq=False)
class Part:
    """One (train, validation) pair of matrices and what scoring its validation rows needs.

    Attributes:
        dtrain: Training matrix.
        dval: Validation matrix (quantised with ``dtrain``'s cuts).
        y_train: Training labels (the class weight is computed from them).
        y_val: Validation labels.
        amount_val: Validation amounts, or None.
        val_rows: Positions of the validation rows in ``Dataset.dev()``; None for the holdout.
    """

    dtrain: xgb.DMatrix
    dval: xgb.DMatrix
    y_train: np.ndarray
    y_val: np.ndarray
    amount_val: np.ndarray | None = None
    val_rows: np.ndarray | None = None


_CACHE_SIZE = 2
_MATRICES: OrderedDict[tuple, tuple[xgb.DMatrix, xgb.DMatrix]] = OrderedDict()
_PARTS: OrderedDict[tuple, list[Part]] = OrderedDict()
CACHE_STATS = {"hits": 0, "misses": 0}


def _cached(cache: OrderedDict, key: tuple, build):  # noqa: ANN001, ANN202 - tiny LRU helper
    if key in cache:
        CACHE_STATS["hits"] += 1
        cache.move_to_end(key)
        return cache[key]
    CACHE_STATS["misses"] += 1
    cache[key] = build()
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return cache[key]


def _pair(X_train, y_train, X_val, y_val, max_bin: int) -> tuple[xgb.DMatrix, xgb.DMatrix]:  # noqa: ANN001
    """A ``QuantileDMatrix`` pair: ~10x a plain ``DMatrix`` to build, but the quantile
    sketch every trial would otherwise redo at its first round is paid once."""
    dtrain = xgb.QuantileDMatrix(X_train, label=y_train, max_bin=max_bin, enable_categorical=True)
    dval = xgb.QuantileDMatrix(X_val, label=y_val, ref=dtrain, max_bin=max_bin, enable_categorical=True)
    return dtrain, dval


def matrices(data: Dataset, max_bin: int, device: str) -> tuple[xgb.DMatrix, xgb.DMatrix]:
    """Training and validation matrices of the holdout, built once per worker process."""
    return _cached(_MATRICES, (data.fingerprint, max_bin, device),
                   lambda: _pair(data.train.X, data.train.y, data.val.X, data.val.y, max_bin))


def holdout_parts(data: Dataset, max_bin: int, device: str) -> list[Part]:
    """The one part of the holdout path: train against validation."""
    dtrain, dval = matrices(data, max_bin, device)
    return [Part(dtrain, dval, data.train.y, data.val.y, data.val.amount)]


def fold_kind(data: Dataset, time_folds: bool) -> str:
    """``stratified``, ``group``, ``time`` or ``time_group``: how the folds are cut."""
    grouped = data.train.groups is not None and data.val.groups is not None
    base = "time" if time_folds else "stratified"
    return ("time_group" if time_folds else "group") if grouped else base


def fold_parts(data: Dataset, k: int, max_bin: int, device: str, *, seed: int,
               time_folds: bool) -> list[Part]:
    """K parts over ``data.dev()`` from :func:`trainables.folds.make_folds`, cached per process.

    Raises:
        DataError: When time folds are asked for without times, or a fold lacks positives.
    """
    kind = fold_kind(data, time_folds)

    def build() -> list[Part]:
        dev = data.dev()
        if time_folds and dev.times is None:
            raise DataError("forward-chaining folds (split: time) need data.time_column")
        folds = make_folds(dev.y, k, seed=seed, times=dev.times if time_folds else None,
                           groups=dev.groups)
        parts = []
        for train, val in folds:
            dtrain, dval = _pair(dev.X.iloc[train], dev.y[train], dev.X.iloc[val], dev.y[val], max_bin)
            amount = None if dev.amount is None else dev.amount[val]
            parts.append(Part(dtrain, dval, dev.y[train], dev.y[val], amount, np.asarray(val)))
        return parts

    return _cached(_PARTS, (data.fingerprint, k, max_bin, device, kind, seed), build)


def parts_for(data: Dataset, settings: TrainSettings, max_bin: int, device: str) -> list[Part]:
    """The holdout (``cv_folds == 1``) or the K folds of ``settings``."""
    if settings.cv_folds == 1:
        return holdout_parts(data, max_bin, device)
    return fold_parts(data, settings.cv_folds, max_bin, device, seed=settings.seed,
                      time_folds=settings.time_folds)


def oof_scores(parts: list[Part], scores: list[np.ndarray], n_rows: int) -> np.ndarray:
    """Out-of-fold score per dev row (each from the booster that did not train on it); nan
    for rows no fold validates (the first block of forward-chaining folds)."""
    out = np.full(n_rows, np.nan)
    for part, s in zip(parts, scores):
        out[part.val_rows] = s
    return out


def _pooled(parts: list[Part], scores: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validation labels, scores and amounts of all parts, pooled (row order does not matter)."""
    y = np.concatenate([p.y_val for p in parts])
    s = np.concatenate(scores)
    amounts = None if any(p.amount_val is None for p in parts) else np.concatenate(
        [p.amount_val for p in parts])
    return y, s, amounts


def score_round(parts: list[Part], scores: list[np.ndarray],
                settings: TrainSettings) -> dict[str, float]:
    """The reported metrics of one round: ``val_<metric>`` for every metric :func:`evaluate` returns.

    With one part these are the validation metrics at the rule's threshold. With K parts the
    threshold is chosen on the pooled out-of-fold scores, every metric is the mean over the
    folds (each measured at that threshold), and ``val_<objective>_sd`` is the folds' spread.
    """
    rule, value = settings.rule()
    osettings = settings.objective_settings
    if len(parts) == 1:
        p = parts[0]
        metrics = evaluate(p.y_val, scores[0], settings.objective, osettings, amounts=p.amount_val,
                           rule=rule, rule_value=value)
        return {f"val_{k}": v for k, v in metrics.items()}
    y, s, amounts = _pooled(parts, scores)
    threshold = threshold_on_curve(threshold_curve(y, s), rule, value, osettings, amounts)
    per_fold = [evaluate(p.y_val, f, settings.objective, osettings, amounts=p.amount_val,
                         threshold=threshold) for p, f in zip(parts, scores)]
    result = {f"val_{k}": float(np.mean([m[k] for m in per_fold])) for k in per_fold[0]}
    result["val_threshold"] = float(threshold)  # the mean of K equal values, exactly
    result[f"val_{settings.metric}_sd"] = float(np.std([m[settings.metric] for m in per_fold], ddof=1))
    return result


def validation_negatives(parts: list[Part]) -> int:
    """Negatives the threshold is chosen on (pooled over the folds)."""
    return int(sum(int(np.count_nonzero(p.y_val == 0)) for p in parts))
