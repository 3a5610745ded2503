"""Fraud-detection metrics in plain numpy.

Workers evaluate 40k-200k validation rows every few boosting rounds, so every
ranking metric here is read off one :class:`ThresholdCurve`, built with a single
argsort of the scores. scikit-learn is deliberately not imported: importing it
costs about two seconds in a fresh Ray worker (the tests use it as the reference).

Conventions:
    * ``y_true`` holds 0/1 labels (1 = fraud); ``scores`` are probabilities.
    * A row is predicted positive iff ``score >= threshold``.
    * "Flag nothing" is expressed as the threshold ``nextafter(max(scores), inf)``.
    * Undefined ratios (precision with no alerts, recall with no frauds, FPR with
      no legitimate rows) are 0.0 in confusion counts and curves; the scalar
      ranking metrics that would be meaningless return ``nan`` instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

# The curve and the confusion counts live in trainables.curve; their names stay
# importable from here.
from trainables.curve import Confusion, ThresholdCurve, threshold_curve
from trainables.curve import validate_scores as _validate

__all__ = [
    "Confusion",
    "ThresholdCurve",
    "average_precision",
    "best_f1",
    "bootstrap_ci",
    "confusion_at",
    "expected_cost",
    "log_loss",
    "min_cost",
    "pareto_front",
    "precision_at_recall",
    "recall_at_fpr",
    "roc_auc",
    "threshold_curve",
    "threshold_table",
]


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """AUC-PR as scikit-learn's ``average_precision_score``; nan when there are no positives."""
    return threshold_curve(y_true, scores).average_precision()


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as scikit-learn's ``roc_auc_score``; nan when only one class is present."""
    return threshold_curve(y_true, scores).roc_auc()


def log_loss(y_true: np.ndarray, scores: np.ndarray, eps: float = 1e-15) -> float:
    """Mean binary cross-entropy, with scores clipped to ``[eps, 1 - eps]``."""
    y, s = _validate(y_true, scores)
    p = np.clip(s, eps, 1.0 - eps)
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


def confusion_at(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> Confusion:
    """Confusion counts when flagging ``score >= threshold`` (no sort needed)."""
    y, s = _validate(y_true, scores)
    flagged = s >= threshold
    tp = int(np.count_nonzero(flagged & y))
    fp = int(np.count_nonzero(flagged)) - tp
    n_pos = int(np.count_nonzero(y))
    return Confusion(tp=tp, fp=fp, tn=y.size - n_pos - fp, fn=n_pos - tp)


def best_f1(y_true: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Highest F1 over all thresholds, as ``(f1, threshold)``."""
    return threshold_curve(y_true, scores).best_f1()


def recall_at_fpr(y_true: np.ndarray, scores: np.ndarray, max_fpr: float) -> tuple[float, float]:
    """Best recall with ``FPR <= max_fpr``, as ``(recall, threshold)``.

    The threshold is the lowest one meeting the budget. When none does (for
    instance, negatives tie with the top score), returns ``(0.0, t)`` with ``t``
    just above the top score so that nothing is flagged.
    """
    return threshold_curve(y_true, scores).recall_at_fpr(max_fpr)


def precision_at_recall(y_true: np.ndarray, scores: np.ndarray,
                        min_recall: float) -> tuple[float, float]:
    """Best precision among thresholds with ``recall >= min_recall``, as ``(precision, threshold)``."""
    return threshold_curve(y_true, scores).precision_at_recall(min_recall)


def expected_cost(y_true: np.ndarray, scores: np.ndarray, threshold: float, fn_cost: float,
                  fp_cost: float, amounts: np.ndarray | None = None) -> float:
    """Cost per transaction of operating at ``threshold``.

    Every missed fraud costs its amount (when ``amounts`` is given) or
    ``fn_cost``; every false alert costs ``fp_cost``. The total is divided by the
    number of rows, so values compare across validation sets of different sizes.

    Args:
        y_true: 0/1 labels.
        scores: Predicted probabilities.
        threshold: Flag rows with ``score >= threshold``.
        fn_cost: Cost of one missed fraud; ignored when ``amounts`` is given.
        fp_cost: Cost of reviewing one false alert.
        amounts: Optional per-row transaction amounts.

    Returns:
        Total cost divided by the number of rows.
    """
    y, s = _validate(y_true, scores)
    missed = y & (s < threshold)
    if amounts is None:
        fn_total = fn_cost * np.count_nonzero(missed)
    else:
        amounts = np.asarray(amounts, dtype=np.float64)
        if amounts.shape != y.shape:
            raise ValueError(f"amounts must have {y.size} entries, got shape {amounts.shape}")
        fn_total = float(amounts[missed].sum())
    fp = np.count_nonzero(~y & (s >= threshold))
    return float((fn_total + fp_cost * fp) / y.size)


def min_cost(y_true: np.ndarray, scores: np.ndarray, fn_cost: float, fp_cost: float,
             amounts: np.ndarray | None = None) -> tuple[float, float]:
    """Lowest :func:`expected_cost` over all thresholds, "flag nothing" included.

    Returns:
        ``(cost per row, threshold)``; ties go to the highest threshold.
    """
    return threshold_curve(y_true, scores).min_cost(fn_cost, fp_cost, amounts)


def bootstrap_ci(y_true: np.ndarray, scores: np.ndarray,
                 metric: Callable[[np.ndarray, np.ndarray], float], n_boot: int = 1000,
                 alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``metric(y, s)``.

    Positives and negatives are resampled separately, so every replicate keeps
    the original class counts (rare frauds would otherwise vanish from some
    replicates). Replicates where the metric is nan are skipped.

    Args:
        y_true: 0/1 labels.
        scores: Predicted probabilities.
        metric: ``metric(y, s) -> float``; it receives the same label array on
            every call and must not modify it.
        n_boot: Number of replicates.
        alpha: One minus the confidence level.
        seed: Seed of the resampling; the same seed gives the same interval.

    Returns:
        ``(low, high)``, or ``(nan, nan)`` when every replicate is nan.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    y, s = _validate(y_true, scores)
    pos, neg = s[y], s[~y]
    # Class counts are fixed, so the labels are the same for every replicate.
    y_boot = np.concatenate((np.ones(pos.size, dtype=np.int8), np.zeros(neg.size, dtype=np.int8)))
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // s.size)  # bounds index memory at ~16 MB per array
    values = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        s_boot = np.concatenate((pos[rng.integers(0, pos.size, (rows, pos.size))],
                                 neg[rng.integers(0, neg.size, (rows, neg.size))]), axis=1)
        for i in range(rows):
            values[start + i] = metric(y_boot, s_boot[i])
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan, math.nan
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def threshold_table(y_true: np.ndarray, scores: np.ndarray,
                    thresholds: Sequence[float]) -> list[dict[str, float]]:
    """Operating points at the given thresholds, for reports.

    Returns:
        One dict per threshold with ``threshold``, ``precision``, ``recall``,
        ``fpr`` and ``alerts_per_10k`` (alerts per 10,000 rows).
    """
    curve = threshold_curve(y_true, scores)
    rows = []
    for t in thresholds:
        c = curve.confusion_at(float(t))
        rows.append({"threshold": float(t), "precision": c.precision, "recall": c.recall,
                     "fpr": c.fpr, "alerts_per_10k": 1e4 * c.alerts / curve.n})
    return rows


def pareto_front(points: Sequence[Mapping], x: str = "fpr", y: str = "recall") -> list[Mapping]:
    """Points not dominated by any other (lower ``x`` and higher ``y`` are better).

    Exact duplicates of a front point are all kept; points with a nan
    coordinate are dropped.

    Returns:
        The front, sorted by ``x`` ascending.
    """
    valid = [p for p in points if not (math.isnan(p[x]) or math.isnan(p[y]))]
    ranked = sorted(valid, key=lambda p: (p[x], -p[y]))
    front: list[Mapping] = []
    for p in ranked:
        if not front or p[y] > front[-1][y] or (p[x], p[y]) == (front[-1][x], front[-1][y]):
            front.append(p)
    return front
