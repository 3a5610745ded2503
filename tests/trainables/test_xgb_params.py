"""Parameter names, the baseline trial and the default space of the XGBoost trainable."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trainables import registry
from trainables.default_space import DEFAULT_SPACE
from trainables.xgb_params import (
    VALID_NAMES,
    XGB_DEFAULTS,
    XGB_PARAMS,
    baseline_config,
    check_param_names,
    class_weight,
    scale_pos_weight_for,
)


def _config_names(node: object) -> set[str]:
    """Parameter names in a ``Booster.save_config()`` tree (leaves under *_param sections)."""
    out: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("_param") and isinstance(value, dict):
                out |= {k for k, v in value.items() if isinstance(v, str)}
            out |= _config_names(value)
    elif isinstance(node, list):
        for item in node:
            out |= _config_names(item)
    return out


def test_names_cover_what_xgboost_itself_configures():
    xgb = pytest.importorskip("xgboost")
    X = np.random.default_rng(0).random((50, 3))
    bst = xgb.train({"objective": "binary:logistic", "tree_method": "hist"},
                    xgb.DMatrix(X, label=X[:, 0] > 0.5), 1)
    config = json.loads(bst.save_config())
    internal = {"num_trees", "num_feature", "num_class", "num_target", "updater_seq"}
    assert _config_names(config) - internal <= XGB_PARAMS
    for name, value in XGB_DEFAULTS.items():  # the defaults are the ones XGBoost reports
        assert name in XGB_PARAMS
        found = [v for k, v in _flat(config) if k == name]
        if found and isinstance(value, (int, float)):
            assert float(found[0]) == pytest.approx(value, rel=1e-6), name


def _flat(node: object):
    if isinstance(node, dict):
        for k, v in node.items():
            yield k, v
            yield from _flat(v)
    elif isinstance(node, list):
        for item in node:
            yield from _flat(item)


def test_unknown_name_is_one_line_naming_the_closest():
    with pytest.raises(ValueError) as err:
        check_param_names(["eta", "max_depht"], "search_space")
    assert str(err.value) == "search_space.max_depht: not an XGBoost parameter; did you mean max_depth?"
    with pytest.raises(ValueError, match=r"^training\.params\.zzz: not an XGBoost parameter; valid: "):
        check_param_names(["zzz"], "training.params")
    check_param_names(["num_boost_round", "class_weight", "reg_lambda", "learning_rate"], "search_space")
    with pytest.raises(ValueError, match="did you mean max_depth"):
        registry.check_params("xgboost_fraud", ["max_depht"], "search_space")


def test_baseline_takes_defaults_and_notes_each_clipping():
    space = {
        "eta": {"type": "loguniform", "low": 0.01, "high": 0.1},          # 0.3 -> 0.1
        "max_depth": {"type": "randint", "low": 2, "high": 6},            # 6 -> 5 (high excluded)
        "subsample": {"type": "uniform", "low": 0.5, "high": 1.0},        # 1.0 fits
        "grow_policy": {"type": "choice", "values": ["lossguide", "depthwise"]},
        "min_child_weight": {"type": "choice", "values": [2, 5, 10]},     # 1 -> closest 2
        "scale_pos_weight": {"type": "uniform", "low": 1.0, "high": 10.0},
        "num_boost_round": {"type": "randint", "low": 50, "high": 200},
        "max_bin": 128,                                                   # constant: not searched
    }
    config, notes = baseline_config(space, class_weight=15.0, num_boost_round=300)
    assert config == {"eta": 0.1, "max_depth": 5, "subsample": 1.0, "grow_policy": "depthwise",
                      "min_child_weight": 2, "scale_pos_weight": 10.0, "num_boost_round": 199}
    assert notes == [
        "eta: XGBoost's default 0.3 is outside [0.01, 0.1]; the baseline uses 0.1",
        "max_depth: XGBoost's default 6 is outside [2, 5]; the baseline uses 5",
        "min_child_weight: XGBoost's default 1.0 is not among [2, 5, 10]; the baseline uses 2",
        "scale_pos_weight: the job's class weight 15.0 is outside [1, 10]; the baseline uses 10.0",
        "num_boost_round: the round budget 300 is outside [50, 199]; the baseline uses 199",
    ]
    config, notes = baseline_config({"scale_pos_weight": {"type": "loguniform", "low": 1, "high": 50}},
                                    class_weight=15.0, num_boost_round=300)
    assert config == {"scale_pos_weight": 15.0} and notes == []


def test_baseline_rejects_unknown_names():
    with pytest.raises(ValueError, match="did you mean max_depth"):
        baseline_config({"max_depht": {"type": "randint", "low": 2, "high": 5}},
                        class_weight=1.0, num_boost_round=10)


def test_class_weight_modes():
    y = np.r_[np.ones(10), np.zeros(90)]
    assert class_weight(y) == 9.0
    assert [scale_pos_weight_for(m, y) for m in ("balanced", "sqrt", "none")] == [9.0, 3.0, 1.0]
    with pytest.raises(ValueError, match="class_weight"):
        scale_pos_weight_for("heavy", y)


def test_default_space_is_valid_and_holds_the_defaults():
    space = registry.default_space("xgboost_fraud")
    assert space == DEFAULT_SPACE and space is not DEFAULT_SPACE
    check_param_names(space, "search_space")
    assert {"eta", "max_depth", "min_child_weight", "subsample", "colsample_bytree", "lambda",
            "alpha", "class_weight"} <= set(space)
    for name, entry in space.items():
        if entry["type"] == "choice":
            assert entry["values"]
        else:
            assert entry["low"] < entry["high"]
            if entry["type"] == "loguniform":
                assert entry["low"] > 0
    config, notes = baseline_config(space, class_weight=15.0, num_boost_round=300)
    assert set(config) == set(space) and config["class_weight"] == "balanced"
    assert [n.split(":")[0] for n in notes] == ["alpha"]  # 0 lies below any log range
    assert registry.param_names("xgboost_fraud") == VALID_NAMES
    params = pytest.importorskip("tuning.search.params")  # the spec's own range models
    for entry in space.values():
        params.PARAM_ADAPTER.validate_python(entry)
