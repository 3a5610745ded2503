"""Calibrators: fitted on held-out scores, stored as JSON, applied with numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trainables.calibration import apply_calibrator, fit_calibrator


def _scores(n: int = 5000, seed: int = 0):
    """Scores of a class-weighted model: right order, far too high for the ~5% fraud rate."""
    rng = np.random.default_rng(seed)
    truth = rng.beta(0.5, 9, n)
    y = (rng.random(n) < truth).astype(int)
    scores = 1 / (1 + np.exp(-(np.log(truth / (1 - truth)) + 3)))
    return y, scores


def _logloss(y, p):
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibration_lowers_the_log_loss_and_keeps_the_order(method):
    y, s = _scores()
    params = json.loads(json.dumps(fit_calibrator(y, s, method)))  # as stored with the model
    p = apply_calibrator(params, s)
    assert _logloss(y, p) < 0.8 * _logloss(y, s)
    order = np.argsort(s)
    assert np.all(np.diff(p[order]) >= -1e-12)
    assert abs(p.mean() - y.mean()) < 0.01
    assert params["rows"] == len(y) and params["positives"] == int(y.sum())


def test_isotonic_matches_scikit_learn():
    from sklearn.isotonic import IsotonicRegression

    y, s = _scores(2000, seed=1)
    s = np.round(s, 3)  # ties
    params = fit_calibrator(y, s, "isotonic")
    reference = IsotonicRegression(out_of_bounds="clip").fit(s, y)
    grid = np.linspace(-0.1, 1.1, 500)
    np.testing.assert_allclose(apply_calibrator(params, grid), reference.predict(grid), atol=1e-9)


def test_sigmoid_matches_an_unregularised_logistic_fit_on_the_margin():
    from sklearn.linear_model import LogisticRegression

    y, s = _scores(20000, seed=2)
    params = fit_calibrator(y, s, "sigmoid")
    z = np.log(s / (1 - s)).reshape(-1, 1)
    reference = LogisticRegression(C=1e6).fit(z, y)  # Platt's targets differ by ~1/n
    assert params["a"] == pytest.approx(reference.coef_[0][0], rel=0.02)
    assert params["b"] == pytest.approx(reference.intercept_[0], abs=0.05)


def test_none_is_the_identity_and_bad_input_is_refused():
    y, s = _scores(100)
    assert fit_calibrator(y, s, "none") == {"method": "none"}
    np.testing.assert_array_equal(apply_calibrator({"method": "none"}, s), s)
    np.testing.assert_array_equal(apply_calibrator(None, s), s)
    with pytest.raises(ValueError, match="unknown calibration method 'platt'; valid: isotonic, sigmoid, none"):
        fit_calibrator(y, s, "platt")
    with pytest.raises(ValueError, match="both classes"):
        fit_calibrator(np.zeros(100), s, "isotonic")
    with pytest.raises(ValueError, match="one score per label"):
        fit_calibrator(y[:10], s, "sigmoid")
    with pytest.raises(ValueError, match="unknown calibration method"):
        apply_calibrator({"method": "beta"}, s)
