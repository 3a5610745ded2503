"""The Pareto set of a multi-objective job (pure computation)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from tuning.tracking.pareto import dominates, pareto_record, pareto_set

OBJ = {"val_recall_at_fpr_best": "max", "val_model_size_at_best": "min"}


def _rows(points):
    return {f"t{i}": {"val_recall_at_fpr_best": r, "val_model_size_at_best": s}
            for i, (r, s) in enumerate(points)}


def test_dominates_respects_each_mode():
    modes = ["max", "min"]
    assert dominates([0.5, 100], [0.4, 200], modes)
    assert dominates([0.5, 100], [0.5, 200], modes)  # equal on one, better on the other
    assert not dominates([0.5, 100], [0.5, 100], modes)  # equal is not better
    assert not dominates([0.6, 300], [0.5, 100], modes)  # a trade-off


def test_pareto_set_keeps_trade_offs_and_ties_and_drops_the_dominated():
    rows = _rows([(0.5, 454), (0.47, 105), (0.25, 109), (0.44, 332), (0.5, 454), (0.1, 105)])
    assert pareto_set(rows, OBJ) == ["t0", "t1", "t4"]


def test_rows_missing_or_nan_objectives_take_no_part():
    rows = _rows([(0.5, 100), (math.nan, 10)])
    rows["t2"] = {"val_recall_at_fpr_best": 0.9}  # no size
    assert pareto_set(rows, OBJ) == ["t0"]


def test_random_sets_match_the_definition():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pts = [(float(a), float(b)) for a, b in rng.integers(0, 6, size=(15, 2))]
        rows = _rows(pts)
        front = set(pareto_set(rows, OBJ))
        for (i, p), (j, q) in itertools.permutations(enumerate(pts), 2):
            if f"t{i}" in front:  # nothing beats a member on both
                assert not (q[0] >= p[0] and q[1] <= p[1] and q != p)
        for i, p in enumerate(pts):  # and everything left out is beaten
            if f"t{i}" not in front:
                assert any(q[0] >= p[0] and q[1] <= p[1] and q != p for q in pts)


def test_record_lists_members_with_their_values_and_runs():
    rows = _rows([(0.5, 454), (0.25, 500)])
    rows["t0"].update(best_round=15, training_done=True)
    record = pareto_record(rows, OBJ, {"t0": "run0"})
    assert record["objectives"] == [{"key": "val_recall_at_fpr_best", "mode": "max"},
                                    {"key": "val_model_size_at_best", "mode": "min"}]
    assert record["members"] == [{"trial_id": "t0", "child_run_id": "run0", "best_round": 15,
                                  "stopped_early": False, "val_recall_at_fpr_best": 0.5,
                                  "val_model_size_at_best": 454.0}]
