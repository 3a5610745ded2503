"""The search space the XGBoost trainable brings when a spec has no ``search_space``.

Chosen for imbalanced tabular data (0.1-10% fraud, 10k-1M rows, tens of columns),
with in-trial early stopping bounding the rounds, so ``num_boost_round`` is not
searched: the round budget (``training.num_boost_round``) is a ceiling and each
trial stops where its objective stops improving. Every XGBoost default except
``alpha`` (0, outside a log range) lies inside, so the baseline trial is the
default itself. Plain data in the spec's YAML shape: the driver reads it as is.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_SPACE"]

DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    # Log scale: 0.01 vs 0.02 matters as much as 0.1 vs 0.2. Below 0.01 needs thousands of
    # rounds; above 0.3 (the default) the few frauds are overfitted within ten rounds.
    "eta": {"type": "loguniform", "low": 0.01, "high": 0.3},
    # Shallow trees generalise from a few hundred frauds; deep ones isolate single cases.
    # 2-10 covers additive effects to rich interactions (randint excludes 11).
    "max_depth": {"type": "randint", "low": 2, "high": 11},
    # Hessians of rare positives are small (p(1-p)), so a large min_child_weight forbids the
    # very leaves that catch fraud, and a small one lets leaves fit single rows: log scale
    # around the default 1.
    "min_child_weight": {"type": "loguniform", "low": 0.1, "high": 30.0},
    # Row and column sampling decorrelate the trees; below 0.5 a round sees too few frauds.
    "subsample": {"type": "uniform", "low": 0.5, "high": 1.0},
    "colsample_bytree": {"type": "uniform", "low": 0.5, "high": 1.0},
    # L2 on leaf weights shrinks leaves backed by a handful of frauds; log scale around 1.
    "lambda": {"type": "loguniform", "low": 0.1, "high": 30.0},
    # L1 zeroes weak leaves (noisy columns); default 0 maps to the lower end (no effect).
    "alpha": {"type": "loguniform", "low": 0.001, "high": 10.0},
    # Full negatives/positives reweighting inflates scores and can hurt ranking at tiny fraud
    # rates; its square root or no weight are often better for AUC-PR. The trainable maps the
    # mode to scale_pos_weight on the rows each booster trains on.
    "class_weight": {"type": "choice", "values": ["balanced", "sqrt", "none"]},
}
