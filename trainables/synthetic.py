"""The built-in synthetic card-transaction data (the default ``data.source``).

Shaped like the public credit-card fraud data: a time column over two days, a
heavy-tailed amount, correlated numeric features, fraud that is learnable but
not trivially separable (a few patterns, interactions, label noise).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

_DAY_S = 86_400.0


def make_synthetic(
    rows: int = 100_000, fraud_rate: float = 0.002, n_features: int = 30, seed: int = 0
) -> pd.DataFrame:
    """Generate card transactions shaped like the Kaggle ``creditcard.csv`` data.

    Columns: ``Time`` (seconds over two days, increasing, with a day/night
    rhythm), ``V1..V{n_features-2}`` (correlated, PCA-like, decreasing scale),
    ``Amount`` (lognormal; frauds are either tiny "card test" amounts or large
    ones) and ``Class`` (0/1). Frauds follow one of four patterns: an
    interaction (``V1`` and ``V2`` far from zero with opposite signs), a shifted
    cluster in ``V3..V6``, outliers in ``V7``/``V8``, or camouflage (legit-looking
    features). Some legit rows copy a fraud pattern. The mix makes fraud
    learnable but not separable: XGBoost with default-ish parameters on 100k
    rows at 0.2% fraud reaches a validation AUC-PR of about 0.55-0.7.

    Args:
        rows: Number of transactions.
        fraud_rate: Fraction of frauds; exactly ``max(1, round(rows * fraud_rate))``.
        n_features: Feature columns, counting ``Time`` and ``Amount``; at least 3.
        seed: Seed for numpy's generator; the same seed gives an identical frame.

    Returns:
        The frame, in time order, with ``Class`` as ``int8``.

    Raises:
        ValueError: If an argument is out of range.
    """
    if rows < 2:
        raise ValueError(f"rows must be >= 2, got {rows}")
    if not 0.0 < fraud_rate < 1.0:
        raise ValueError(f"fraud_rate must be in (0, 1), got {fraud_rate}")
    if n_features < 3:
        raise ValueError(f"n_features must be >= 3 (Time, Amount and at least V1), got {n_features}")
    n_pos = max(1, int(round(rows * fraud_rate)))
    if n_pos >= rows:
        raise ValueError(f"fraud_rate {fraud_rate} leaves no legit rows out of {rows}")
    rng = np.random.default_rng(seed)
    m = n_features - 2
    v, scales = _latent_features(rng, rows, m)

    y = np.zeros(rows, dtype=np.int8)
    pos = rng.choice(rows, n_pos, replace=False)
    y[pos] = 1
    # Legit rows that look like fraud, and frauds that look legit (pattern 3),
    # cap the reachable precision the way label noise does in real data.
    negatives = np.flatnonzero(y == 0)
    n_hard = min(int(round(n_pos * 0.3)), negatives.size)
    hard = negatives[rng.choice(negatives.size, n_hard, replace=False)]
    marked = np.concatenate([pos, hard])
    pattern = np.concatenate([rng.choice(4, n_pos, p=[0.27, 0.36, 0.27, 0.10]), rng.choice(3, n_hard)])
    _apply_fraud_patterns(rng, v, scales, marked, pattern)

    amount = rng.lognormal(3.0, 1.3, rows)
    card_test = rng.random(n_pos) < 0.4
    amount[pos] = np.where(card_test, rng.lognormal(0.3, 0.6, n_pos), rng.lognormal(4.8, 1.0, n_pos))

    # v is a transposed view of a (m, rows) array, so pandas keeps it as one block without a copy.
    frame = pd.DataFrame(v, columns=[f"V{i + 1}" for i in range(m)], copy=False)
    frame.insert(0, "Time", _diurnal_times(rng, rows))
    frame["Amount"] = np.round(amount, 2)
    frame["Class"] = y
    return frame


def _latent_features(rng: np.random.Generator, rows: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(rows, m)`` correlated float32 features and their per-column scales."""
    k = min(m, 6)
    loadings = rng.normal(0.0, 1.0, (k, m)).astype(np.float32) / np.float32(math.sqrt(k))
    scales = np.linspace(2.0, 0.4, m, dtype=np.float32)
    # Built as (m, rows) so each feature is contiguous: the DataFrame then needs no copy.
    vt = loadings.T @ rng.standard_normal((k, rows), dtype=np.float32)
    vt += rng.standard_normal((m, rows), dtype=np.float32) * np.float32(0.8)
    vt *= (scales / np.float32(math.sqrt(1.64)))[:, None]
    return vt.T, scales


def _apply_fraud_patterns(
    rng: np.random.Generator, v: np.ndarray, scales: np.ndarray, rows: np.ndarray, pattern: np.ndarray
) -> None:
    """Overwrite the features of ``rows`` in place with fraud pattern 0, 1 or 2 (3 is left as is)."""
    m = v.shape[1]
    col = [i % m for i in range(8)]  # with few features the patterns share columns
    strength = 1.9
    sel = rows[pattern == 0]
    sign = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), sel.size)
    for c, s in ((col[0], sign), (col[1], -sign)):
        v[sel, c] = s * (np.abs(rng.standard_normal(sel.size, dtype=np.float32)) * 0.8 + 1.2 * strength) * scales[c]
    sel = rows[pattern == 1]
    cols = col[2:6]
    shift = np.array([-2.0, 1.5, -1.8, 1.2], dtype=np.float32) * strength * scales[cols]
    v[np.ix_(sel, cols)] = v[np.ix_(sel, cols)] * np.float32(0.6) + shift
    sel = rows[pattern == 2]
    cols = col[6:8]
    v[np.ix_(sel, cols)] *= np.float32(1.0 + 2.0 * strength)


def _diurnal_times(rng: np.random.Generator, rows: int, days: float = 2.0) -> np.ndarray:
    """Return increasing whole seconds over ``days`` with fewer transactions at night."""
    grid = np.linspace(0.0, days * _DAY_S, 4097)
    intensity = 1.0 + 0.8 * np.cos(2 * np.pi * (grid / _DAY_S - 0.6))
    cdf = np.concatenate([[0.0], np.cumsum((intensity[1:] + intensity[:-1]) / 2)])
    # Normalised exponential gaps give sorted uniforms in O(n), cheaper than np.sort.
    gaps = np.cumsum(rng.standard_exponential(rows + 1))
    return np.floor(np.interp(gaps[:-1] / gaps[-1], cdf / cdf[-1], grid))
