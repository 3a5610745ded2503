"""Turn a booster's ranking score into a calibrated fraud probability.

The booster is trained with class weighting (``scale_pos_weight``), so its output
ranks transactions well but overstates the fraud rate: it is a score, not a
probability. A calibrator fitted on held-out scores (validation, or out-of-fold
with cross-validation) maps it back to observed frequencies.

A calibrator is a small JSON-safe dict, stored with the deployed model and
applied with numpy alone (this module travels with the model: it imports only
numpy):

- ``isotonic``: a non-decreasing step function (pool adjacent violators), stored as
  its knots and applied with ``np.interp`` (flat beyond the end knots);
- ``sigmoid``: Platt scaling on the booster's margin, ``p = 1 / (1 + exp(-(a z + b)))``
  with ``z = logit(score)``;
- ``none``: the identity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

METHODS = ("isotonic", "sigmoid", "none")
_EPS = 1e-7  # scores are clipped into [eps, 1 - eps] before the logit
_NEWTON_STEPS = 100


def fit_calibrator(y: np.ndarray, scores: np.ndarray, method: str) -> dict[str, Any]:
    """Fit a calibrator of ``scores`` against the 0/1 labels ``y``.

    Args:
        y: Labels of held-out rows (0/1).
        scores: The booster's scores of the same rows.
        method: ``"isotonic"``, ``"sigmoid"`` or ``"none"``.

    Returns:
        A JSON-safe dict that :func:`apply_calibrator` applies.

    Raises:
        ValueError: On an unknown method, mismatched lengths, or labels of one class.
    """
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; valid: {', '.join(METHODS)}")
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"calibration needs one score per label, got {s.size} scores and {y.size} labels")
    if method == "none":
        return {"method": "none"}
    positives = int(y.sum())
    if positives == 0 or positives == y.size:
        raise ValueError(f"calibration needs both classes, got {positives} positives in {y.size} rows")
    meta = {"rows": int(y.size), "positives": positives}
    if method == "isotonic":
        x, p = _isotonic(s, y)
        return {"method": "isotonic", "x": x.tolist(), "y": p.tolist(), **meta}
    a, b = _platt(_logit(s), y)
    return {"method": "sigmoid", "a": a, "b": b, **meta}


def apply_calibrator(params: dict[str, Any] | None, scores: np.ndarray) -> np.ndarray:
    """Probabilities (float64) of ``scores`` under a :func:`fit_calibrator` result.

    Raises:
        ValueError: On an unknown method in ``params``.
    """
    s = np.asarray(scores, dtype=np.float64)
    method = (params or {}).get("method", "none")
    if method == "none":
        return s.copy()
    if method == "isotonic":
        return np.interp(s, np.asarray(params["x"], dtype=np.float64), np.asarray(params["y"], dtype=np.float64))
    if method == "sigmoid":
        z = float(params["a"]) * _logit(s) + float(params["b"])
        return 1.0 / (1.0 + np.exp(-z))
    raise ValueError(f"unknown calibration method {method!r}; valid: {', '.join(METHODS)}")


def _logit(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, _EPS, 1 - _EPS)
    return np.log(s / (1 - s))


def _isotonic(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool adjacent violators over the distinct scores: the knots (score, probability)."""
    x, inverse = np.unique(s, return_inverse=True)
    weight = np.bincount(inverse).astype(np.float64)
    mean = np.bincount(inverse, weights=y) / weight
    # A stack of blocks (value, weight, first knot); a block that breaks the order
    # merges with the one before it.
    values: list[float] = []
    weights: list[float] = []
    starts: list[int] = []
    for i, (m, w) in enumerate(zip(mean, weight)):
        values.append(float(m))
        weights.append(float(w))
        starts.append(i)
        while len(values) > 1 and values[-2] >= values[-1]:
            w2 = weights[-2] + weights[-1]
            values[-2] = (values[-2] * weights[-2] + values[-1] * weights[-1]) / w2
            weights[-2] = w2
            values.pop(), weights.pop(), starts.pop()
    fitted = np.repeat(values, np.diff(np.append(starts, len(x))))
    # Keep the end knots of each flat block: np.interp is then exact on the steps.
    keep = np.ones(len(x), dtype=bool)
    keep[1:-1] = (fitted[1:-1] != fitted[:-2]) | (fitted[1:-1] != fitted[2:])
    return x[keep], fitted[keep]


def _platt(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt's fit of ``sigmoid(a z + b)`` with his smoothed targets, by Newton's method."""
    pos = y.sum()
    neg = y.size - pos
    t = np.where(y > 0, (pos + 1) / (pos + 2), 1 / (neg + 2))
    a, b = 1.0, 0.0
    for _ in range(_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(a * z + b)))
        g = np.array([np.dot(p - t, z), np.sum(p - t)])
        w = p * (1 - p)
        h = np.array([[np.dot(w, z * z), np.dot(w, z)], [np.dot(w, z), w.sum()]]) + 1e-12 * np.eye(2)
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)
