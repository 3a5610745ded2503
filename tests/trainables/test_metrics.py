"""Fraud metrics checked against scikit-learn and brute force on small inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from trainables import metrics as m


def make_data(seed: int, n: int = 400, rate: float = 0.1, decimals: int | None = None):
    """Labels and overlapping scores; rounding to ``decimals`` creates ties."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(int)
    y[:2] = [0, 1]  # both classes always present
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.0, 1.0)
    if decimals is not None:
        s = s.round(decimals)
    return y, s


def candidate_thresholds(s: np.ndarray) -> np.ndarray:
    """Every distinct operating point: each distinct score plus "flag nothing"."""
    return np.append(np.unique(s), np.nextafter(s.max(), np.inf))


def brute_confusion(y, s, t) -> tuple[int, int, int, int]:
    """(tp, fp, tn, fn) via scikit-learn's confusion matrix."""
    tn, fp, fn, tp = skm.confusion_matrix(y, (s >= t).astype(int), labels=[0, 1]).ravel()
    return int(tp), int(fp), int(tn), int(fn)


CASES = [(seed, dec) for seed in range(3) for dec in (None, 2, 1)]


@pytest.mark.parametrize(("seed", "decimals"), CASES)
def test_ranking_metrics_match_sklearn(seed, decimals):
    y, s = make_data(seed, decimals=decimals)
    assert m.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert m.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize(("seed", "decimals"), CASES)
def test_curve_matches_sklearn_curves(seed, decimals):
    y, s = make_data(seed, decimals=decimals)
    curve = m.threshold_curve(y, s)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    assert (curve.n_pos, curve.n_neg) == (n_pos, n_neg)
    fpr, tpr, roc_thr = skm.roc_curve(y, s, drop_intermediate=False)
    # roc_curve prepends a "flag nothing" point; the rest are the distinct scores.
    np.testing.assert_array_equal(curve.thresholds, roc_thr[1:])
    np.testing.assert_array_equal(curve.tps, np.rint(tpr[1:] * n_pos))
    np.testing.assert_array_equal(curve.fps, np.rint(fpr[1:] * n_neg))
    np.testing.assert_allclose(curve.fpr, fpr[1:])
    np.testing.assert_allclose(curve.recall, tpr[1:])
    precision, recall, pr_thr = skm.precision_recall_curve(y, s)
    np.testing.assert_allclose(curve.precision[::-1], precision[:-1])
    np.testing.assert_allclose(curve.recall[::-1], recall[:-1])
    np.testing.assert_array_equal(curve.thresholds[::-1], pr_thr)


def test_hand_made_ranking_with_ties():
    y = np.array([1, 0, 1, 0, 0, 1])
    s = np.array([0.9, 0.9, 0.7, 0.5, 0.5, 0.1])
    curve = m.threshold_curve(y, s)
    np.testing.assert_array_equal(curve.thresholds, [0.9, 0.7, 0.5, 0.1])
    np.testing.assert_array_equal(curve.tps, [1, 2, 2, 3])
    np.testing.assert_array_equal(curve.fps, [1, 1, 3, 3])
    # AP = 1/3 * (1/2 + 2/3 + 3/6); the tie at 0.9 counts as one step.
    assert m.average_precision(y, s) == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)
    assert m.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s))
    assert m.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))


def test_all_scores_equal():
    y = np.array([0, 1, 0, 0, 1, 0, 0, 0])
    s = np.full(y.size, 0.3)
    assert m.average_precision(y, s) == pytest.approx(0.25)
    assert m.roc_auc(y, s) == pytest.approx(0.5)
    assert m.best_f1(y, s) == (pytest.approx(2 * 2 / (2 * 2 + 6)), 0.3)
    # The only threshold flags everyone, which breaks any budget below 100% FPR.
    assert m.recall_at_fpr(y, s, 0.5) == (0.0, np.nextafter(0.3, np.inf))
    assert m.recall_at_fpr(y, s, 1.0) == (1.0, 0.3)


def test_single_class_is_nan_or_defined():
    s = np.array([0.1, 0.4, 0.8])
    assert math.isnan(m.roc_auc([0, 0, 0], s))
    assert math.isnan(m.roc_auc([1, 1, 1], s))
    # sklearn returns 0.0 (with a warning) here; nan is the honest "undefined".
    assert math.isnan(m.average_precision([0, 0, 0], s))
    assert m.average_precision([1, 1, 1], s) == skm.average_precision_score([1, 1, 1], s)
    assert m.precision_at_recall([0, 0, 0], s, 0.5) == (0.0, np.nextafter(0.8, np.inf))
    assert m.best_f1([0, 0, 0], s) == (0.0, np.nextafter(0.8, np.inf))


def test_log_loss_matches_sklearn_and_clips():
    y, s = make_data(0)
    s = np.clip(s, 0.01, 0.99)
    assert m.log_loss(y, s) == pytest.approx(skm.log_loss(y, s), rel=1e-12)
    # Certain-and-wrong predictions cost -log(eps) instead of infinity.
    for eps in (1e-15, 1e-3):
        expected = -(math.log(eps) + math.log(1.0 - (1.0 - eps))) / 2
        assert m.log_loss([1, 0], [0.0, 1.0], eps=eps) == pytest.approx(expected)
    assert m.log_loss([1, 0], [1.0, 0.0]) == pytest.approx(0.0, abs=1e-14)


@pytest.mark.parametrize("decimals", [None, 1])
def test_confusion_matches_sklearn(decimals):
    y, s = make_data(1, decimals=decimals)
    curve = m.threshold_curve(y, s)
    thresholds = np.concatenate((candidate_thresholds(s), [-1.0, 0.333, 0.5, 2.0]))
    for t in thresholds:
        c = m.confusion_at(y, s, t)
        assert (c.tp, c.fp, c.tn, c.fn) == brute_confusion(y, s, t)
        assert curve.confusion_at(t) == c
    c = m.confusion_at(y, s, 0.5)
    pred = (s >= 0.5).astype(int)
    assert c.precision == pytest.approx(skm.precision_score(y, pred))
    assert c.recall == pytest.approx(skm.recall_score(y, pred))
    assert c.f1 == pytest.approx(skm.f1_score(y, pred))
    assert c.fpr == pytest.approx(c.fp / (y == 0).sum())
    assert c.alerts == pred.sum()


def test_confusion_with_nothing_predicted():
    c = m.confusion_at([0, 1, 1], [0.2, 0.3, 0.4], threshold=0.9)
    assert c == m.Confusion(tp=0, fp=0, tn=1, fn=2)
    assert (c.precision, c.recall, c.f1, c.fpr, c.alerts) == (0.0, 0.0, 0.0, 0.0, 0)
    d = c.as_dict()
    assert d["tp"] == 0 and d["fn"] == 2 and d["precision"] == 0.0 and d["alerts"] == 0
    assert set(d) == {"tp", "fp", "tn", "fn", "precision", "recall", "f1", "fpr", "alerts"}


@pytest.mark.parametrize("decimals", [None, 1])
def test_best_f1_is_brute_force_optimum(decimals):
    y, s = make_data(2, n=200, decimals=decimals)
    best = max(skm.f1_score(y, (s >= t).astype(int)) for t in np.unique(s))
    f1, t = m.best_f1(y, s)
    assert f1 == pytest.approx(best)
    assert skm.f1_score(y, (s >= t).astype(int)) == pytest.approx(f1)


@pytest.mark.parametrize("max_fpr", [0.0, 0.01, 0.05, 0.2, 1.0])
def test_recall_at_fpr_is_brute_force_optimum(max_fpr):
    y, s = make_data(0, n=200, decimals=2)
    feasible = []
    for t in candidate_thresholds(s):
        tp, fp, tn, fn = brute_confusion(y, s, t)
        if fp / (fp + tn) <= max_fpr:
            feasible.append((tp / (tp + fn), -t))
    best_recall, neg_t = max(feasible)
    recall, t = m.recall_at_fpr(y, s, max_fpr)
    assert recall == pytest.approx(best_recall)
    assert t == -neg_t  # lowest threshold reaching that recall within budget
    assert m.confusion_at(y, s, t).fpr <= max_fpr


def test_recall_at_fpr_budget_nobody_can_meet():
    # A negative ties with the top score: the first operating point already has FPR 1/3.
    y = np.array([1, 0, 0, 0, 1])
    s = np.array([0.95, 0.95, 0.2, 0.1, 0.5])
    recall, t = m.recall_at_fpr(y, s, max_fpr=0.1)
    assert recall == 0.0
    assert t == np.nextafter(0.95, np.inf) and t > 0.95
    assert m.confusion_at(y, s, t).alerts == 0


@pytest.mark.parametrize("min_recall", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_precision_at_recall_is_brute_force_optimum(min_recall):
    y, s = make_data(1, n=200, decimals=2)
    feasible = []
    for t in np.unique(s):
        tp, fp, tn, fn = brute_confusion(y, s, t)
        if tp / (tp + fn) >= min_recall:
            feasible.append(tp / (tp + fp))
    precision, t = m.precision_at_recall(y, s, min_recall)
    assert precision == pytest.approx(max(feasible))
    c = m.confusion_at(y, s, t)
    assert c.recall >= min_recall
    assert c.precision == pytest.approx(precision)


def test_precision_at_full_recall_hand_made():
    y = np.array([1, 0, 1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.1])
    assert m.precision_at_recall(y, s, 1.0) == (pytest.approx(3 / 5), 0.4)
    assert m.precision_at_recall(y, s, 0.5) == (pytest.approx(2 / 3), 0.7)
    assert m.precision_at_recall(y, s, 0.3) == (1.0, 0.9)


def test_expected_cost_hand_made_and_normalised_per_row():
    y = np.array([1, 1, 0, 0, 0, 1])
    s = np.array([0.9, 0.2, 0.8, 0.1, 0.3, 0.6])
    # At 0.5: frauds at 0.2 missed (1 fn), one false alert (0.8).
    assert m.expected_cost(y, s, 0.5, fn_cost=100, fp_cost=2) == pytest.approx((100 + 2) / 6)
    amounts = np.array([10.0, 250.0, 5.0, 5.0, 5.0, 40.0])
    assert m.expected_cost(y, s, 0.5, 100, 2, amounts) == pytest.approx((250 + 2) / 6)
    # Constant amounts equal to fn_cost reproduce the constant-cost model.
    same = np.full(y.size, 100.0)
    for t in candidate_thresholds(s):
        assert m.expected_cost(y, s, t, 100, 2, same) == pytest.approx(
            m.expected_cost(y, s, t, 100, 2))


@pytest.mark.parametrize("use_amounts", [False, True])
@pytest.mark.parametrize(("fn_cost", "fp_cost"), [(100.0, 1.0), (5.0, 1.0), (1.0, 50.0)])
def test_min_cost_is_brute_force_optimum(use_amounts, fn_cost, fp_cost):
    y, s = make_data(0, n=200, decimals=2)
    amounts = np.random.default_rng(1).exponential(30.0, y.size) if use_amounts else None
    costs = {t: m.expected_cost(y, s, t, fn_cost, fp_cost, amounts) for t in candidate_thresholds(s)}
    cost, t = m.min_cost(y, s, fn_cost, fp_cost, amounts)
    assert cost == pytest.approx(min(costs.values()))
    assert m.expected_cost(y, s, t, fn_cost, fp_cost, amounts) == pytest.approx(cost)
    curve = m.threshold_curve(y, s)
    for t in list(costs)[::7]:
        assert curve.cost_at(t, fn_cost, fp_cost, amounts) == pytest.approx(costs[t])


def test_min_cost_may_flag_nothing():
    y = np.array([0, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1])
    cost, t = m.min_cost(y, s, fn_cost=1.0, fp_cost=10.0)
    assert cost == pytest.approx(1 / 4)
    assert t > 0.9


def test_bootstrap_ci_contains_estimate_and_is_reproducible():
    y, s = make_data(3, n=600, rate=0.05)
    point = m.average_precision(y, s)
    low, high = m.bootstrap_ci(y, s, m.average_precision, n_boot=200, seed=7)
    assert low < point < high
    assert m.bootstrap_ci(y, s, m.average_precision, n_boot=200, seed=7) == (low, high)
    assert m.bootstrap_ci(y, s, m.average_precision, n_boot=200, seed=8) != (low, high)
    narrow = m.bootstrap_ci(y, s, m.average_precision, n_boot=200, alpha=0.5, seed=7)
    assert low <= narrow[0] <= narrow[1] <= high


def test_bootstrap_keeps_both_classes_and_skips_nan():
    y = np.array([1] + [0] * 99)
    s = np.linspace(0, 1, 100)
    seen = []

    def metric(yb, sb):
        seen.append((int(yb.sum()), yb.size))
        return m.roc_auc(yb, sb) if len(seen) % 2 else math.nan

    low, high = m.bootstrap_ci(y, s, metric, n_boot=20, seed=0)
    assert seen == [(1, 100)] * 20
    assert 0.0 <= low <= high <= 1.0
    assert all(math.isnan(v) for v in m.bootstrap_ci(y, s, lambda a, b: math.nan, n_boot=5))


def test_threshold_table():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    rows = m.threshold_table(y, s, [0.75, 0.95])
    assert rows[0] == {"threshold": 0.75, "precision": 0.5, "recall": 0.5,
                       "fpr": pytest.approx(1 / 8), "alerts_per_10k": 2000.0}
    assert rows[1] == {"threshold": 0.95, "precision": 0.0, "recall": 0.0, "fpr": 0.0,
                       "alerts_per_10k": 0.0}


def test_pareto_front_hand_made():
    pts = [
        {"id": "a", "fpr": 0.01, "recall": 0.50},
        {"id": "b", "fpr": 0.02, "recall": 0.40},  # dominated by a
        {"id": "c", "fpr": 0.03, "recall": 0.70},
        {"id": "d", "fpr": 0.001, "recall": 0.20},
        {"id": "e", "fpr": 0.03, "recall": 0.60},  # same fpr as c, lower recall
        {"id": "f", "fpr": 0.05, "recall": 0.70},  # same recall as c, higher fpr
        {"id": "g", "fpr": 0.01, "recall": 0.50},  # duplicate of a: not dominated
        {"id": "h", "fpr": float("nan"), "recall": 0.99},
    ]
    assert [p["id"] for p in m.pareto_front(pts)] == ["d", "a", "g", "c"]
    assert m.pareto_front([]) == []
    custom = [{"cost": 3, "aucpr": 0.5}, {"cost": 1, "aucpr": 0.4}, {"cost": 2, "aucpr": 0.3}]
    assert m.pareto_front(custom, x="cost", y="aucpr") == [custom[1], custom[0]]


@pytest.mark.parametrize(("y", "s", "match"), [
    ([0, 1], [0.1], "differ in length"),
    ([], [], "empty"),
    ([0, 2], [0.1, 0.2], "only 0 and 1"),
    ([0, 1], [0.1, float("nan")], "NaN"),
    ([[0, 1]], [[0.1, 0.2]], "1-D"),
])
def test_bad_input_is_rejected(y, s, match):
    with pytest.raises(ValueError, match=match):
        m.threshold_curve(y, s)


def test_bool_labels_and_amount_shape_checked():
    y = np.array([True, False, True])
    s = np.array([0.9, 0.5, 0.1])
    assert m.roc_auc(y, s) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="amounts"):
        m.min_cost(y, s, 1.0, 1.0, amounts=np.ones(2))
