"""The final verdict: the chosen model scored once on the held-out test set.

Point estimates alone overstate what ~80 test frauds can tell, so every metric
comes with a stratified bootstrap interval. Everything is written to the job
folder (``verdict/``) first and logged on the parent run from there, so
``tuning sync`` can log it later when the store was unreachable.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from trainables.metrics import average_precision, confusion_at, threshold_curve, threshold_table
from trainables.objectives import ObjectiveSettings, evaluate, get_objective
from tuning.job.bootstrap import fold
from tuning.report.plots import pr_roc

VERDICT_DIR = "verdict"
# Metrics shown with intervals, in the order people read them.
REPORTED = ("aucpr", "roc_auc", "precision", "recall", "f1", "fpr", "alerts_per_10k",
            "recall_at_fpr", "cost")
# A validation objective this close to its ceiling is more likely a leak than a model.
CEILING = 0.999
# Alert budgets (share of transactions flagged) for the threshold table.
ALERT_RATES = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05)


def bootstrap_intervals(y: np.ndarray, scores: np.ndarray, amounts: np.ndarray | None,
                        objective: str, settings: ObjectiveSettings, threshold: float,
                        n_boot: int, seed: int, alpha: float = 0.05) -> dict[str, list[float]]:
    """Percentile intervals of every reported metric, from one resample per replicate.

    Positives and negatives are resampled separately (each replicate keeps both
    classes); the threshold stays fixed, as it would be in production. The scores
    are sorted once (:func:`tuning.job.bootstrap.fold`): a replicate then costs a gather and
    two ``bincount`` of its draws, not a sort.
    """
    get_objective(objective)  # an unknown name fails as evaluate() does
    if amounts is not None:
        amounts = np.asarray(amounts, dtype=np.float64)
        if amounts.shape != np.shape(y):
            raise ValueError(f"amounts must have {y.size} entries, got shape {amounts.shape}")
    rng = np.random.default_rng(seed)
    rows, n_pos = fold(y, scores, threshold, amounts), int(np.count_nonzero(y == 1))
    values: dict[str, list[float]] = {k: [] for k in REPORTED}
    strata = _Strata(y)
    for _ in range(n_boot):
        sample = rows.metrics(strata.draw(rng), n_pos, settings)
        for key in REPORTED:
            values[key].append(sample[key])
    out = {}
    for key, series in values.items():
        arr = np.asarray(series, dtype=float)
        arr = arr[~np.isnan(arr)]
        out[key] = ([float(v) for v in np.quantile(arr, [alpha / 2, 1 - alpha / 2])]
                    if arr.size else [float("nan"), float("nan")])
    return out


class _Strata:
    """The positives' and the negatives' row indices, found once for all replicates."""

    def __init__(self, y: np.ndarray) -> None:
        self.pos, self.neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """Row indices of one replicate: the positives' draws first, then the negatives'."""
        return np.concatenate((rng.choice(self.pos, self.pos.size),
                               rng.choice(self.neg, self.neg.size)))


def paired_difference(y: np.ndarray, scores: np.ndarray, baseline: np.ndarray, n_boot: int,
                      seed: int, alpha: float = 0.05) -> dict[str, Any]:
    """Test AUC-PR of the chosen model minus the baseline's, with a paired bootstrap interval.

    Both models are scored on the same resampled rows in each replicate, so the
    interval is of the difference itself, much narrower than two separate intervals.
    """
    rng = np.random.default_rng(seed)
    # At an infinite threshold nothing is flagged: only AUC-PR is read.
    chosen_rows, base_rows = fold(y, scores, math.inf), fold(y, baseline, math.inf)
    n_pos = int(np.count_nonzero(y == 1))
    diffs, strata = [], _Strata(y)
    for _ in range(n_boot):
        idx = strata.draw(rng)
        diffs.append(chosen_rows.average_precision(idx, n_pos)
                     - base_rows.average_precision(idx, n_pos))
    chosen, base = average_precision(y, scores), average_precision(y, baseline)
    low, high = (np.quantile(diffs, [alpha / 2, 1 - alpha / 2]) if diffs
                 else (float("nan"), float("nan")))
    return {"aucpr": float(chosen), "baseline_aucpr": float(base),
            "aucpr_minus_baseline": float(chosen - base),
            "interval": [float(low), float(high)]}


def verdict_warnings(verdict: dict[str, Any], max_fpr: float, best: Any) -> list[str]:
    """Plain-language warnings: an FPR over budget, a probable leak, defaults not beaten."""
    out = []
    fpr_low = verdict["intervals"].get("fpr", [float("nan")])[0]
    if verdict.get("rule") == "max_fpr":
        budget = verdict.get("rule_value") or max_fpr
        if fpr_low == fpr_low and fpr_low > budget:
            out.append(f"test FPR {verdict['metrics']['fpr']:.5f} exceeds the budget {budget:g} "
                       f"beyond its interval (low end {fpr_low:.5f})")
    value = getattr(best, "best_value", None)
    if value is not None and value >= CEILING and verdict["metrics"].get("aucpr", 0) < 1:
        out.append(f"validation objective {value:.4f} is at its ceiling: a probable leak "
                   "(a column that gives the label away); check the data flags")
    base = verdict.get("baseline")
    if base and base["chosen"]:
        out.append("the baseline trial (XGBoost's defaults) won on validation: the model handed "
                   "over is the defaults; tuning did not beat them")
    elif base and not base["interval"][0] > 0:
        out.append(f"tuning did not clearly beat XGBoost's defaults on the test rows: AUC-PR "
                   f"{base['aucpr_minus_baseline']:+.4f} [{base['interval'][0]:+.4f}, "
                   f"{base['interval'][1]:+.4f}]")
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
                  scores: np.ndarray, rows: np.ndarray | None = None) -> Path:
    """Write test_report.json, threshold_table.csv, test_scores.csv and pr_roc.png into
    ``folder/verdict``.

    ``test_scores.csv`` holds each test row's position in the input (``rows``), its
    label and the refit model's score, so a deployed model can be checked against the
    verdict, and the job report draws its test curves without reading the data again.
    """
    out = folder / VERDICT_DIR
    out.mkdir(parents=True, exist_ok=True)
    (out / "test_report.json").write_text(json.dumps(verdict, indent=2))
    positions = np.arange(len(scores)) if rows is None else np.asarray(rows)
    with open(out / "test_scores.csv", "w", newline="") as handle:
        handle.write("row,label,score\n")
        handle.writelines(f"{int(r)},{int(t)},{float(v)!r}\n" for r, t, v in zip(positions, y, scores))
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
    folds = verdict.get("cv_folds", 1)
    chosen_on = f"{folds}-fold out-of-fold scores" if folds > 1 else "validation"
    rule = verdict.get("rule")
    rule_text = f"rule {rule}" + (f" {verdict['rule_value']:g}"
                                  if verdict.get("rule_value") is not None else "") if rule else ""
    lines = [f"Test set: {verdict['rows']} transactions, {verdict['positives']} frauds; "
             f"threshold {verdict['threshold']:.4g} ({rule_text + ', ' if rule_text else ''}"
             f"chosen on {chosen_on}); model refit on {verdict['refit'].replace('_', '+')}"]
    for key in REPORTED:
        value = verdict["metrics"].get(key)
        if value is None:
            continue
        low, high = verdict["intervals"].get(key, [float("nan")] * 2)
        ci = f"  [{low:.4f}, {high:.4f}]" if low == low else ""
        lines.append(f"  {key:<15} {value:.4f}{ci}")
    c = verdict["confusion"]
    lines.append(f"  confusion       TP {c['tp']}  FP {c['fp']}  FN {c['fn']}  TN {c['tn']}")
    base = verdict.get("baseline")
    if base:
        low, high = base["interval"]
        lines.append(f"  vs defaults     AUC-PR {base['aucpr']:.4f} vs {base['baseline_aucpr']:.4f} "
                     f"(baseline trial {base['trial_id']}): {base['aucpr_minus_baseline']:+.4f} "
                     f"[{low:+.4f}, {high:+.4f}] paired bootstrap")
    lines += [f"  WARNING: {w}" for w in verdict.get("warnings", [])]
    lines.append("  threshold   precision  recall   FPR      alerts/10k")
    for row in verdict["threshold_table"]:
        lines.append(f"  {row['threshold']:<10.4g}  {row['precision']:<9.3f}  {row['recall']:<7.3f}"
                     f"  {row['fpr']:<7.5f}  {row['alerts_per_10k']:.1f}")
    return lines
