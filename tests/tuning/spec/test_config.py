"""The spec: examples validate, mistakes get one-line errors naming the field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tuning.spec import SpecError, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[3]
GOOD = {
    "name": "t",
    "search_space": {"eta": {"type": "loguniform", "low": 0.01, "high": 0.3}},
}


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_examples_validate(example):
    spec = load_spec(example)
    assert spec.name
    assert spec.search_space


def test_defaults_are_the_documented_ones():
    spec = parse_spec(GOOD)
    assert spec.search.algorithm == "tpe"
    assert spec.scheduler.type == "asha"
    assert spec.objective.result_key == "val_aucpr"
    assert spec.objective.resolved_mode == "max"
    assert spec.max_t == 30  # 300 rounds / report every 10


def test_val_prefix_and_mode_from_registry():
    spec = parse_spec({**GOOD, "objective": {"metric": "val_logloss"}})
    assert spec.objective.metric == "logloss"
    assert spec.objective.resolved_mode == "min"


def _with(path: str, value):
    raw = copy.deepcopy(GOOD)
    node = raw
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return raw


BAD = [
    (_with("serach", {"algorithm": "tpe"}), "serach: unknown key"),
    (_with("search_space.eta.low", -1), "search_space.eta: low must be > 0 for loguniform, got -1"),
    (_with("search_space.depth", {"type": "randint", "low": 9, "high": 3}), "low must be < high"),
    (_with("search_space.c", {"type": "choice", "values": []}), "search_space.c.values: List should have at least 1 item"),
    (_with("search_space.x", {"type": "normal", "low": 0, "high": 1}), "search_space.x.type: must be one of"),
    (_with("search.algorithm", "annealing"), "unknown search algorithm 'annealing'; valid: tpe"),
    (_with("scheduler.type", "pbt2"), "unknown scheduler 'pbt2'"),
    (_with("objective.metric", "accuracy"), "unknown objective 'accuracy'"),
    (_with("trainable", "lightgbm"), "unknown trainable 'lightgbm'"),
    (_with("budget.num_samples", 0), "budget.num_samples"),
    (_with("budget.max_concurrent", 0), "budget.max_concurrent"),
    (_with("budget.num_samples", "many"), "budget.num_samples"),
    (_with("scheduler.grace_period", 50), "grace_period (50) must be <= max_t (30)"),
    (_with("resources.gpu", 1.5), "gpu above 1 must be a whole number"),
    (_with("resources.cpu", 0), "resources.cpu"),
    (_with("data.fraud_rate", 0.9), "data.fraud_rate"),
    (_with("data.source", "file"), "source 'file' needs data.path"),
    (_with("data.split", "time"), "split 'time' needs data.time_column"),
    (_with("name", "has space"), "name"),
]


@pytest.mark.parametrize("raw,expected", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_specs_get_one_line_errors(raw, expected):
    with pytest.raises(SpecError) as info:
        parse_spec(raw, source="bad.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("bad.yaml: ")
    assert expected in message


def test_missing_search_space_is_the_trainables_default_and_an_empty_one_is_an_error():
    from trainables.registry import default_space

    spec = parse_spec({"name": "t"})
    assert set(spec.search_space) == set(default_space("xgboost_fraud"))
    with pytest.raises(SpecError, match="search_space: "):
        parse_spec({"name": "t", "search_space": {}})


@pytest.mark.parametrize(("section", "where"), [("search_space", "search_space"),
                                                ("training", "training.params")])
def test_a_misspelt_parameter_names_the_closest_one(section, where):
    bad = {"max_depht": {"type": "randint", "low": 2, "high": 5}}
    raw = {"name": "t", "search_space": bad} if section == "search_space" else \
        {"name": "t", "training": {"params": {"max_depht": 4}}}
    with pytest.raises(SpecError, match=rf"{where}\.max_depht: not an XGBoost parameter; "
                                        r"did you mean max_depth\?"):
        parse_spec(raw)


def test_evaluation_cv_and_threshold_rules_are_validated():
    spec = parse_spec({"name": "t", "evaluation": {"cv": "auto",
                                                  "threshold": {"rule": "alerts", "value": 20}}})
    assert spec.evaluation.folds_for(100) == 5 and spec.evaluation.folds_for(5000) == 1
    assert parse_spec({"name": "t", "evaluation": {"cv": 3}}).evaluation.folds_for(100) == 3
    for bad, message in ((({"cv": 0}), "evaluation.cv"),
                         ({"threshold": {"rule": "alerts"}}, "needs a value"),
                         ({"threshold": {"rule": "max_fp"}}, "unknown threshold rule"),
                         ({"calibrate": "platt"}, "unknown calibration")):
        with pytest.raises(SpecError, match=message):
            parse_spec({"name": "t", "evaluation": bad})


def test_files_that_are_not_specs(tmp_path):
    cases = {
        "missing.yaml": None,
        "empty.yaml": "",
        "list.yaml": "- a\n- b\n",
        "broken.yaml": "name: [unclosed\n",
    }
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(SpecError) as info:
            load_spec(path)
        assert name in str(info.value)


def test_spec_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo pwned']\nsearch_space: {a: 1}\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(path)


def test_overrides_are_revalidated():
    spec = parse_spec(GOOD)
    assert spec.with_overrides(**{"budget.num_samples": 6}).budget.num_samples == 6
    with pytest.raises(SpecError, match="budget.num_samples"):
        spec.with_overrides(**{"budget.num_samples": -1})


def test_tracking_uri_precedence(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert parse_spec(GOOD).tracking_uri() == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert parse_spec(GOOD).tracking_uri() == "sqlite:///env.db"
    spec = parse_spec({**GOOD, "tracking": {"tracking_uri": "sqlite:///spec.db"}})
    assert spec.tracking_uri() == "sqlite:///spec.db"


def test_dump_round_trips():
    spec = load_spec(ROOT / "examples" / "fraud_xgb.yaml")
    again = parse_spec(yaml.safe_load(yaml.safe_dump(spec.model_dump(mode="json"))))
    assert again == spec
