"""Confusion counts and the threshold curve of a scored split, in plain numpy.

Every ranking metric of :mod:`trainables.metrics` is read off one
:class:`ThresholdCurve`, built with a single argsort of the scores; the
conventions are those stated in :mod:`trainables.metrics`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np

__all__ = ["Confusion", "ThresholdCurve", "threshold_curve", "validate_scores"]


def validate_scores(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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

    def rates(self) -> dict[str, float]:
        """The reported metrics measured at this threshold (``evaluate`` and the verdict's
        bootstrap both take them from here): f1, precision, recall, fpr, alerts per 10k rows."""
        n = self.tp + self.fp + self.tn + self.fn
        return {"f1": float(self.f1), "precision": float(self.precision), "recall": float(self.recall),
                "fpr": float(self.fpr), "alerts_per_10k": 1e4 * self.alerts / n if n else 0.0}


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
    y, s = validate_scores(y_true, scores)
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


