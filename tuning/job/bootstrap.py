"""Bootstrap replicates of a scored test split in O(draws) each, from one sort.

A replicate of the verdict's stratified bootstrap is a count per row. With the
scores sorted once, every reported metric is a cumulative count over the sorted
rows; only the positions where that count can change a metric need to be kept:
each distinct score holding a positive, the distinct score just above it, the
lowest score still flagged at the fixed threshold, and the lowest score. A run of
scores holding only negatives folds into one entry without changing any metric
(within such a run recall is constant and the ROC area is linear in the count),
so a replicate costs one gather and two ``bincount`` of its draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from trainables.curve import Confusion
from trainables.metrics import threshold_curve
from trainables.objectives import ObjectiveSettings


@dataclass(eq=False)  # array fields: identity equality
class Replicates:
    """The split's rows folded into entries of the sorted order; build with :func:`fold`.

    Attributes:
        entry: Entry of each row (input order), in descending score order.
        thresholds: Lowest score of each entry.
        flagged: Entries whose rows are flagged at the threshold (a prefix).
        amounts: Per-row amounts, or None.
    """

    entry: np.ndarray = field(repr=False)
    thresholds: np.ndarray = field(repr=False)
    flagged: int
    amounts: np.ndarray | None = field(repr=False)

    def metrics(self, idx: np.ndarray, n_pos: int, settings: ObjectiveSettings) -> dict[str, float]:
        """The reported metrics of the resample ``idx`` (its ``n_pos`` positives first), as
        :func:`trainables.objectives.evaluate` computes them at the fixed threshold."""
        bins = self.entry[idx]
        tps, fps, kept = self._counts(bins, n_pos)
        n, n_neg = idx.size, idx.size - n_pos
        tp, fp = (int(tps[self.flagged - 1]), int(fps[self.flagged - 1])) if self.flagged else (0, 0)
        conf = Confusion(tp=tp, fp=fp, tn=n_neg - fp, fn=n_pos - tp)
        if self.amounts is None:
            total, caught = settings.fn_cost * n_pos, settings.fn_cost * float(tp)
        else:
            pos_amounts = self.amounts[idx[:n_pos]]
            flagged_pos = bins[:n_pos] < self.flagged
            total, caught = float(pos_amounts.sum()), float(pos_amounts[flagged_pos].sum())
        tps, fps = tps.take(kept), fps.take(kept)
        return {
            "aucpr": _average_precision(tps, fps, n_pos),
            "roc_auc": _roc_auc(tps, fps, n_pos, n_neg),
            **conf.rates(),
            "recall_at_fpr": _recall_at_fpr(tps, fps, n_pos, n_neg, settings.max_fpr),
            "cost": float((total - caught + settings.fp_cost * fp) / n),
        }

    def average_precision(self, idx: np.ndarray, n_pos: int) -> float:
        """AUC-PR of the resample ``idx`` (its ``n_pos`` positives first)."""
        tps, fps, kept = self._counts(self.entry[idx], n_pos)
        return _average_precision(tps.take(kept), fps.take(kept), n_pos)

    def _counts(self, bins: np.ndarray, n_pos: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cumulative positives and negatives per entry, and the entries with a drawn row
        (the resample's distinct scores)."""
        tp_e = np.bincount(bins[:n_pos], minlength=self.thresholds.size)
        fp_e = np.bincount(bins[n_pos:], minlength=self.thresholds.size)
        return np.cumsum(tp_e), np.cumsum(fp_e), np.flatnonzero(tp_e + fp_e)


def fold(y: np.ndarray, scores: np.ndarray, threshold: float,
         amounts: np.ndarray | None = None) -> Replicates:
    """Sort once and fold the negative-only runs of scores (see the module docstring)."""
    curve = threshold_curve(y, scores)
    groups = curve.thresholds.size
    has_pos = np.diff(curve.tps, prepend=0) > 0
    keep = has_pos.copy()
    keep[:-1] |= has_pos[1:]  # the score just above each positive's
    keep[-1] = True
    cut = int(curve.count_index(threshold))  # distinct scores flagged at the threshold
    if cut:
        keep[cut - 1] = True
    entries = np.flatnonzero(keep)
    # Group of each sorted row, then the first kept group at or below it.
    group = np.repeat(np.arange(groups), np.diff(curve.ends, prepend=-1))
    entry = np.empty(curve.n, dtype=np.intp)
    entry[curve.order] = np.searchsorted(entries, group, side="left")
    return Replicates(entry=entry, thresholds=curve.thresholds[entries],
                      flagged=int(np.searchsorted(entries, cut - 1, side="left")) + 1 if cut else 0,
                      amounts=amounts)


def _average_precision(tps: np.ndarray, fps: np.ndarray, n_pos: int) -> float:
    if n_pos == 0:
        return math.nan
    return float(np.dot(np.diff(tps, prepend=0), tps / (tps + fps)) / n_pos)


def _roc_auc(tps: np.ndarray, fps: np.ndarray, n_pos: int, n_neg: int) -> float:
    if n_pos == 0 or n_neg == 0:
        return math.nan
    before = np.concatenate(([0], tps)).astype(np.float64)
    twice_area = np.dot(np.diff(fps, prepend=0), before[1:] + before[:-1])
    return float(twice_area / (2.0 * n_pos * n_neg))


def _recall_at_fpr(tps: np.ndarray, fps: np.ndarray, n_pos: int, n_neg: int,
                   max_fpr: float) -> float:
    # As ThresholdCurve.recall_at_fpr: the feasible entries are a prefix.
    fpr = fps / n_neg if n_neg else np.zeros(fps.size)
    k = int(np.searchsorted(fpr, max_fpr, side="right"))
    return float(tps[k - 1] / n_pos) if k and n_pos else 0.0
