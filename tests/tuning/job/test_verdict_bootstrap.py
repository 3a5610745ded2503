"""The verdict's bootstrap: folded counts of one sort equal evaluate() on each resample."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from trainables.metrics import average_precision
from trainables.objectives import OBJECTIVES, ObjectiveSettings, evaluate
from tuning.job.bootstrap import fold
from tuning.job.verdict import REPORTED, _Strata, bootstrap_intervals, paired_difference

SETTINGS = (ObjectiveSettings(), ObjectiveSettings(max_fpr=0.05, fn_cost=30.0, fp_cost=2.5),
            ObjectiveSettings(max_fpr=0.2, fn_cost=0.0, fp_cost=0.0, threshold=0.3))


def _split(seed: int, n: int = 240, rate: float = 0.1,
           decimals: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, scores rounded to ``decimals`` (many ties) and amounts."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(np.int64)
    y[:2] = (1, 0)  # both classes
    scores = np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.0, 1.0), decimals)
    return y, scores, np.round(rng.lognormal(3.0, 1.0, n), 2)


def _old_bootstrap_intervals(y, scores, amounts, objective, settings, threshold, n_boot, seed,
                             alpha=0.05) -> dict[str, list[float]]:
    """The loop before the weighted curves: one evaluate() (one argsort) per replicate."""
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {k: [] for k in REPORTED}
    for _ in range(n_boot):
        idx = _Strata(y).draw(rng)
        sample = evaluate(y[idx], scores[idx], objective, settings,
                          amounts=None if amounts is None else amounts[idx], threshold=threshold)
        for key in REPORTED:
            values[key].append(sample.get(key, float("nan")))
    out = {}
    for key, series in values.items():
        arr = np.asarray(series, dtype=float)
        arr = arr[~np.isnan(arr)]
        out[key] = ([float(v) for v in np.quantile(arr, [alpha / 2, 1 - alpha / 2])]
                    if arr.size else [float("nan"), float("nan")])
    return out


def _old_paired_difference(y, scores, baseline, n_boot, seed, alpha=0.05) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        idx = _Strata(y).draw(rng)
        diffs.append(average_precision(y[idx], scores[idx])
                     - average_precision(y[idx], baseline[idx]))
    chosen, base = average_precision(y, scores), average_precision(y, baseline)
    low, high = (np.quantile(diffs, [alpha / 2, 1 - alpha / 2]) if diffs
                 else (float("nan"), float("nan")))
    return {"aucpr": float(chosen), "baseline_aucpr": float(base),
            "aucpr_minus_baseline": float(chosen - base), "interval": [float(low), float(high)]}


def _assert_same(new: float, old: float) -> None:
    """Equal to 1e-9: the folded sums add the same terms in another grouping."""
    if math.isnan(old):
        assert math.isnan(new)
    else:
        assert new == pytest.approx(old, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
@pytest.mark.parametrize("with_amounts", [False, True])
def test_replicate_metrics_equal_evaluate_on_the_resample(seed, objective, with_amounts):
    y, scores, amounts = _split(seed)
    rng = np.random.default_rng(100 + seed)
    # A tied score, thresholds between and beyond the scores, and the usual 0.5.
    thresholds = (float(scores[5]), 0.455, 0.5, 0.0, float(np.nextafter(scores.max(), 2.0)))
    for settings in SETTINGS:
        for threshold in thresholds:
            idx = _Strata(y).draw(rng)
            rows = fold(y, scores, threshold, amounts if with_amounts else None)
            got = rows.metrics(idx, int(y.sum()), settings)
            want = evaluate(y[idx], scores[idx], objective, settings,
                            amounts=amounts[idx] if with_amounts else None, threshold=threshold)
            assert set(got) == set(REPORTED)
            for key in REPORTED:
                _assert_same(got[key], want[key])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_intervals_are_those_of_the_old_loop(seed, objective):
    y, scores, amounts = _split(seed, n=300, rate=0.08)
    settings = SETTINGS[seed % len(SETTINGS)]
    for amt in (None, amounts):
        threshold = float(scores[7])
        new = bootstrap_intervals(y, scores, amt, objective, settings, threshold, 40, seed)
        old = _old_bootstrap_intervals(y, scores, amt, objective, settings, threshold, 40, seed)
        assert list(new) == list(old)
        for key in REPORTED:
            for a, b in zip(new[key], old[key]):
                _assert_same(a, b)


@pytest.mark.parametrize("labels", ["negatives only", "positives only", "one positive"])
def test_intervals_with_degenerate_classes_match_the_old_loop(labels):
    y, scores, amounts = _split(7, n=50)
    y = {"negatives only": np.zeros_like(y), "positives only": np.ones_like(y),
         "one positive": (np.arange(y.size) == 3).astype(np.int64)}[labels]
    for s in (scores, np.full(y.size, 0.4)):  # also every score tied
        new = bootstrap_intervals(y, s, amounts, "cost", ObjectiveSettings(), 0.4, 20, 3)
        old = _old_bootstrap_intervals(y, s, amounts, "cost", ObjectiveSettings(), 0.4, 20, 3)
        for key in REPORTED:
            for a, b in zip(new[key], old[key]):
                _assert_same(a, b)


@pytest.mark.parametrize("seed", range(6))
def test_paired_difference_is_that_of_the_old_loop(seed):
    y, scores, _ = _split(seed, n=300)
    rng = np.random.default_rng(seed)
    baseline = np.round(np.clip(scores + rng.normal(0, 0.15, y.size), 0, 1), 2)
    new = paired_difference(y, scores, baseline, 50, seed)
    old = _old_paired_difference(y, scores, baseline, 50, seed)
    assert new["interval"] == pytest.approx(old["interval"], rel=1e-9, abs=1e-12)
    assert {k: v for k, v in new.items() if k != "interval"} == {
        k: v for k, v in old.items() if k != "interval"}


def test_bad_amounts_and_objective_are_rejected():
    y, scores, amounts = _split(0, n=20)
    with pytest.raises(ValueError, match="amounts must have 20 entries"):
        bootstrap_intervals(y, scores, amounts[:1], "aucpr", ObjectiveSettings(), 0.5, 3, 0)
    with pytest.raises(ValueError, match="unknown objective"):
        bootstrap_intervals(y, scores, None, "accuracy", ObjectiveSettings(), 0.5, 3, 0)
