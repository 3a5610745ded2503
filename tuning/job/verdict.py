"""The final verdict: the chosen model scored once on the held-out test set.

Point estimates alone overstate what ~80 test frauds can tell, so every metric
comes with a stratified bootstrap interval. Everything is written to the job
folder (``verdict/``) first and logged on the parent run from there, so
``tuning sync`` can log it later when the store was unreachable.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from trainables.metrics import confusion_at, threshold_curve, threshold_table
from trainables.objectives import ObjectiveSettings, evaluate
from tuning.report.plots import pr_roc

VERDICT_DIR = "verdict"
# Metrics shown with intervals, in the order people read them.
REPORTED = ("aucpr", "roc_auc", "precision", "recall", "f1", "fpr", "recall_at_fpr", "cost")
# Alert budgets (share of transactions flagged) for the threshold table.
ALERT_RATES = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05)


def bootstrap_intervals(y: np.ndarray, scores: np.ndarray, amounts: np.ndarray | None,
                        objective: str, settings: ObjectiveSettings, threshold: float,
                        n_boot: int, seed: int, alpha: float = 0.05) -> dict[str, list[float]]:
    """Percentile intervals of every reported metric, from one resample per replicate.

    Positives and negatives are resampled separately (each replicate keeps both
    classes); the threshold stays fixed, as it would be in production.
    """
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    values: dict[str, list[float]] = {k: [] for k in REPORTED}
    for _ in range(n_boot):
        idx = np.concatenate((rng.choice(pos, pos.size), rng.choice(neg, neg.size)))
        sample = evaluate(y[idx], scores[idx], objective, settings,
                          amounts=None if amounts is None else amounts[idx], threshold=threshold)
        for key in REPORTED:
            values[key].append(sample[key])
    out = {}
    for key, series in values.items():
        arr = np.asarray(series, dtype=float)
        arr = arr[~np.isnan(arr)]
        out[key] = ([float(v) for v in np.quantile(arr, [alpha / 2, 1 - alpha / 2])]
                    if arr.size else [float("nan"), float("nan")])
    return out


def build_verdict(y: np.ndarray, scores: np.ndarray, amounts: np.ndarray | None,
                  objective: str, settings: ObjectiveSettings, threshold: float | None,
                  n_boot: int, seed: int, refit: str) -> dict[str, Any]:
    """Point metrics, 95% intervals, confusion matrix and threshold table on the test set."""
    threshold = 0.5 if threshold is None else float(threshold)
    metrics = evaluate(y, scores, objective, settings, amounts=amounts, threshold=threshold)
    intervals = (bootstrap_intervals(y, scores, amounts, objective, settings, threshold,
                                     n_boot, seed) if n_boot else {})
    cuts = sorted({float(np.quantile(scores, 1 - r)) for r in ALERT_RATES} | {threshold},
                  reverse=True)
    return {
        "threshold": threshold,
        "refit": refit,
        "rows": int(y.size),
        "positives": int(y.sum()),
        "bootstrap_samples": n_boot,
        "metrics": metrics,
        "intervals": intervals,
        "confusion": confusion_at(y, scores, threshold).as_dict(),
        "threshold_table": threshold_table(y, scores, cuts),
    }


def write_verdict(folder: Path, verdict: dict[str, Any], y: np.ndarray,
                  scores: np.ndarray) -> Path:
    """Write test_report.json, threshold_table.csv and pr_roc.png into ``folder/verdict``."""
    out = folder / VERDICT_DIR
    out.mkdir(parents=True, exist_ok=True)
    (out / "test_report.json").write_text(json.dumps(verdict, indent=2))
    with open(out / "threshold_table.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(verdict["threshold_table"][0]))
        writer.writeheader()
        writer.writerows(verdict["threshold_table"])
    figure, _ = pr_roc(threshold_curve(y, scores), verdict["threshold"],
                       "Best model on the test set")
    figure.savefig(out / "pr_roc.png", dpi=110, bbox_inches="tight")
    return out


def summary_lines(verdict: dict[str, Any]) -> list[str]:
    """The short text summary printed at the end of ``tuning run``."""
    lines = [f"Test set: {verdict['rows']} transactions, {verdict['positives']} frauds; "
             f"threshold {verdict['threshold']:.4g} (chosen on validation); model refit on "
             f"{verdict['refit'].replace('_', '+')}"]
    for key in REPORTED:
        value = verdict["metrics"].get(key)
        if value is None:
            continue
        low, high = verdict["intervals"].get(key, [float("nan")] * 2)
        ci = f"  [{low:.4f}, {high:.4f}]" if low == low else ""
        lines.append(f"  {key:<15} {value:.4f}{ci}")
    c = verdict["confusion"]
    lines.append(f"  confusion       TP {c['tp']}  FP {c['fp']}  FN {c['fn']}  TN {c['tn']}")
    lines.append("  threshold   precision  recall   FPR      alerts/10k")
    for row in verdict["threshold_table"]:
        lines.append(f"  {row['threshold']:<10.4g}  {row['precision']:<9.3f}  {row['recall']:<7.3f}"
                     f"  {row['fpr']:<7.5f}  {row['alerts_per_10k']:.1f}")
    return lines
