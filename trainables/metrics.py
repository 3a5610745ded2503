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
from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np

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


def _validate(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(labels as bool, scores as float64)``; raise ValueError on bad input."""
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"y_true and scores must be 1-D, got shapes {y.shape} and {s.shape}")
    if y.shape != s.shape:
        raise ValueError(f"y_true and scores differ in length: {y.size} vs {s.size}")
    if y.size == 0:
        raise ValueError("y_true and scores are empty")
    if y.dtype != np.bool_:
        if not ((y == 0) | (y == 1)).all():
            raise ValueError("y_true must contain only 0 and 1")
        y = y == 1
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return y, s


def _ratio(num: np.ndarray, den: np.ndarray | int) -> np.ndarray:
    """Element-wise ``num / den`` that yields 0.0 where ``den`` is 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.broadcast_to(np.asarray(den, dtype=np.float64), num.shape)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


@dataclass(frozen=True)
class Confusion:
    """Confusion counts at one threshold."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def alerts(self) -> int:
        """Rows flagged (``tp + fp``): the review workload."""
        return self.tp + self.fp

    @property
    def precision(self) -> float:
        """``tp / alerts``; 0.0 when nothing is flagged."""
        return self.tp / self.alerts if self.alerts else 0.0

    @property
    def recall(self) -> float:
        """``tp / (tp + fn)``; 0.0 when there are no positives."""
        pos = self.tp + self.fn
        return self.tp / pos if pos else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall; 0.0 when both are 0."""
        den = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / den if den else 0.0

    @property
    def fpr(self) -> float:
        """``fp / (fp + tn)``; 0.0 when there are no negatives."""
        neg = self.fp + self.tn
        return self.fp / neg if neg else 0.0

    def as_dict(self) -> dict[str, float]:
        """Counts and derived rates in one flat dict."""
        out: dict[str, float] = {k: int(v) for k, v in asdict(self).items()}
        out.update(precision=self.precision, recall=self.recall, f1=self.f1,
                   fpr=self.fpr, alerts=self.alerts)
        return out


@dataclass(eq=False)  # array fields: identity equality, not ambiguous truth values
class ThresholdCurve:
    """Cumulative counts at every distinct score, highest threshold first.

    Entry ``k`` describes flagging every row with ``score >= thresholds[k]``.
    Build it with :func:`threshold_curve`; all the curve methods reuse its sort.

    Attributes:
        thresholds: Distinct scores, strictly decreasing.
        tps: True positives at each threshold (non-decreasing).
        fps: False positives at each threshold (non-decreasing).
        n_pos: Number of positive rows.
        n_neg: Number of negative rows.
    """

    thresholds: np.ndarray
    tps: np.ndarray
    fps: np.ndarray
    n_pos: int
    n_neg: int
    # Sort order and labels in that order: needed to accumulate per-row amounts.
    order: np.ndarray = field(repr=False)
    labels_sorted: np.ndarray = field(repr=False)
    ends: np.ndarray = field(repr=False)

    @property
    def n(self) -> int:
        """Number of rows."""
        return self.n_pos + self.n_neg

    @property
    def no_alert_threshold(self) -> float:
        """A threshold just above the top score: nothing is flagged."""
        return float(np.nextafter(self.thresholds[0], np.inf))

    @cached_property
    def precision(self) -> np.ndarray:
        """Precision at each threshold (never 0/0: each flags at least one row)."""
        return self.tps / (self.tps + self.fps)

    @cached_property
    def recall(self) -> np.ndarray:
        """Recall (TPR) at each threshold; zeros when there are no positives."""
        return _ratio(self.tps, self.n_pos)

    @cached_property
    def fpr(self) -> np.ndarray:
        """False-positive rate at each threshold; zeros when there are no negatives."""
        return _ratio(self.fps, self.n_neg)

    def count_index(self, threshold: float | np.ndarray) -> np.ndarray:
        """Number of curve entries with ``thresholds >= threshold`` (0 = nothing flagged)."""
        ascending = self.thresholds[::-1]
        return self.thresholds.size - np.searchsorted(ascending, threshold, side="left")

    def confusion_at(self, threshold: float) -> Confusion:
        """Confusion counts when flagging ``score >= threshold``."""
        k = int(self.count_index(threshold))
        tp = int(self.tps[k - 1]) if k else 0
        fp = int(self.fps[k - 1]) if k else 0
        return Confusion(tp=tp, fp=fp, tn=self.n_neg - fp, fn=self.n_pos - tp)

    def average_precision(self) -> float:
        """Step-wise AUC-PR, as scikit-learn's ``average_precision_score``; nan without positives."""
        if self.n_pos == 0:
            return math.nan
        gained = np.diff(self.tps, prepend=0)
        return float(np.dot(gained, self.precision) / self.n_pos)

    def roc_auc(self) -> float:
        """Trapezoidal ROC AUC (ties get half credit); nan unless both classes occur."""
        if self.n_pos == 0 or self.n_neg == 0:
            return math.nan
        # Integer arithmetic until the final division keeps this exact to one rounding.
        tps = np.concatenate(([0], self.tps)).astype(np.float64)
        dfp = np.diff(self.fps, prepend=0)
        twice_area = np.dot(dfp, tps[1:] + tps[:-1])
        return float(twice_area / (2.0 * self.n_pos * self.n_neg))

    def best_f1(self) -> tuple[float, float]:
        """Highest F1 over thresholds and the (highest) threshold reaching it."""
        f1 = _ratio(2 * self.tps, self.tps + self.fps + self.n_pos)
        k = int(np.argmax(f1))
        if f1[k] <= 0.0:
            return 0.0, self.no_alert_threshold
        return float(f1[k]), float(self.thresholds[k])

    def recall_at_fpr(self, max_fpr: float) -> tuple[float, float]:
        """Best recall with ``fpr <= max_fpr`` and the lowest threshold achieving it."""
        # fps grows as the threshold falls, so the feasible entries are a prefix.
        k = int(np.searchsorted(self.fpr, max_fpr, side="right"))
        if k == 0:
            return 0.0, self.no_alert_threshold
        return float(self.recall[k - 1]), float(self.thresholds[k - 1])

    def precision_at_recall(self, min_recall: float) -> tuple[float, float]:
        """Best precision with ``recall >= min_recall`` and its threshold.

        Among equally precise thresholds the lowest one wins: it catches more
        fraud at the same precision. Returns ``(0.0, no-alert threshold)`` when
        no threshold reaches the recall floor (or there are no positives).
        """
        if self.n_pos == 0:
            return 0.0, self.no_alert_threshold
        start = int(np.searchsorted(self.recall, min_recall, side="left"))
        if start == self.thresholds.size:
            return 0.0, self.no_alert_threshold
        tail = self.precision[start:][::-1]
        k = self.thresholds.size - 1 - int(np.argmax(tail))
        return float(self.precision[k]), float(self.thresholds[k])

    def cumulative(self, values: np.ndarray) -> np.ndarray:
        """Running sum of per-row ``values`` in score order, read at each threshold."""
        return np.cumsum(np.asarray(values, dtype=np.float64)[self.order])[self.ends]

    def _missed_cost(self, fn_cost: float, amounts: np.ndarray | None) -> tuple[float, np.ndarray]:
        """Total cost of missing every fraud, and the part caught at each threshold."""
        if amounts is None:
            return fn_cost * self.n_pos, fn_cost * self.tps.astype(np.float64)
        amounts = np.asarray(amounts, dtype=np.float64)
        if amounts.shape != (self.n,):
            raise ValueError(f"amounts must have {self.n} entries, got shape {amounts.shape}")
        per_row = np.where(self.labels_sorted, amounts[self.order], 0.0)
        caught = np.cumsum(per_row)[self.ends]
        return float(per_row.sum()), caught

    def cost_at(self, threshold: float, fn_cost: float, fp_cost: float,
                amounts: np.ndarray | None = None) -> float:
        """Per-row cost at ``threshold``; see :func:`expected_cost`."""
        total, caught = self._missed_cost(fn_cost, amounts)
        k = int(self.count_index(threshold))
        missed = total - (caught[k - 1] if k else 0.0)
        fp = self.fps[k - 1] if k else 0
        return float((missed + fp_cost * fp) / self.n)

    def min_cost(self, fn_cost: float, fp_cost: float,
                 amounts: np.ndarray | None = None) -> tuple[float, float]:
        """Lowest per-row cost over all thresholds and "flag nothing"; see :func:`min_cost`."""
        total, caught = self._missed_cost(fn_cost, amounts)
        costs = np.concatenate(([total], total - caught + fp_cost * self.fps)) / self.n
        # argmin takes the first minimum: the highest threshold, i.e. the fewest alerts.
        k = int(np.argmin(costs))
        threshold = self.no_alert_threshold if k == 0 else float(self.thresholds[k - 1])
        return float(costs[k]), threshold


def threshold_curve(y_true: np.ndarray, scores: np.ndarray) -> ThresholdCurve:
    """Sort once and accumulate counts at every distinct score.

    Args:
        y_true: 0/1 labels.
        scores: Predicted probabilities (any real ranking score works).

    Returns:
        The curve, highest threshold first.

    Raises:
        ValueError: On empty, mismatched, non-binary or NaN input.
    """
    y, s = _validate(y_true, scores)
    # Ties only need to be contiguous, so the default (unstable) sort is enough.
    order = np.argsort(s)[::-1]
    s_sorted = s[order]
    y_sorted = y[order]
    ends = np.append(np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), s.size - 1)
    tps = np.cumsum(y_sorted, dtype=np.int64)[ends]
    fps = ends + 1 - tps
    n_pos = int(tps[-1])
    return ThresholdCurve(thresholds=s_sorted[ends], tps=tps, fps=fps, n_pos=n_pos,
                          n_neg=int(s.size - n_pos), order=order,
                          labels_sorted=y_sorted, ends=ends)


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
