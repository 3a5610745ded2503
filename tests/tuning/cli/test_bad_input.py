"""The bad-input catalogue: each case through the real CLI, as a user would hit it.

Every case must end with one line ``error: ...`` naming the field or file, a
non-zero exit, no traceback, and nothing left behind: no MLflow run, no job folder.
``UPDATE_DOCS=1`` rewrites the catalogue table in docs/reliability.md from the cases.
"""

from __future__ import annotations

import copy
import os
import socket
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import yaml

from tuning.cli import main

ROOT = Path(__file__).resolve().parents[3]
BASE = {
    "name": "bad",
    "data": {"rows": 2000, "fraud_rate": 0.05},
    "search_space": {"eta": {"type": "loguniform", "low": 0.05, "high": 0.3}},
    "training": {"num_boost_round": 10, "report_every": 5},
    "evaluation": {"cv": 1},  # CV is not this test's subject
    "budget": {"num_samples": 2},
}


def _set(path: str, value: Any) -> Callable[[dict], dict]:
    def edit(raw: dict) -> dict:
        node = raw
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
        return raw
    return edit


def _csv(frame: pd.DataFrame) -> Callable[[Path], str]:
    def write(folder: Path) -> str:
        frame.to_csv(folder / "data.csv", index=False)
        return str(folder / "data.csv")
    return write


def _frame(labels: list[Any], n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                         "Class": (labels * (n // len(labels) + 1))[:n]})


def _raw_file(name: str, content: bytes) -> Callable[[Path], str]:
    def write(folder: Path) -> str:
        (folder / name).write_bytes(content)
        return str(folder / name)
    return write


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_MIXED = _frame([0] * 99 + [1])
_MIXED.loc[5, "Class"] = np.nan

# (case id, edit of the spec | raw spec text, data file writer or None, extra args, expected)
CASES: list[tuple[str, Any, Any, list[str], str]] = [
    ("unknown top-level key", _set("serach", {"algorithm": "tpe"}), None, [], "serach: unknown key"),
    ("unknown nested key", _set("budget.num_sample", 3), None, [], "budget.num_sample: unknown key"),
    ("wrong type", _set("budget.num_samples", "many"), None, [], "budget.num_samples"),
    ("low > high", _set("search_space.d", {"type": "randint", "low": 9, "high": 3}), None, [],
     "search_space.d: low must be < high"),
    ("log scale with low <= 0", _set("search_space.eta.low", 0), None, [],
     "low must be > 0 for loguniform"),
    ("empty choice list", _set("search_space.c", {"type": "choice", "values": []}), None, [],
     "search_space.c.values"),
    ("unknown parameter type", _set("search_space.c", {"type": "normal"}), None, [],
     "search_space.c.type: must be one of"),
    ("unknown searcher", _set("search.algorithm", "annealing"), None, [],
     "unknown search algorithm 'annealing'"),
    ("unknown scheduler", _set("scheduler.type", "pbt2"), None, [], "unknown scheduler 'pbt2'"),
    ("unknown objective", _set("objective.metric", "accuracy"), None, [],
     "unknown objective 'accuracy'"),
    ("unknown trainable", _set("trainable", "lightgbm"), None, [], "unknown trainable 'lightgbm'"),
    ("grace_period > max_t", _set("scheduler.grace_period", 9), None, [],
     "grace_period (9) must be <= max_t (2)"),
    ("num_samples < 1", None, None, ["--num-samples", "0"], "budget.num_samples"),
    ("max_concurrent < 1", None, None, ["--max-concurrent", "0"], "budget.max_concurrent"),
    ("fractional GPUs above 1", _set("resources.gpu", 1.5), None, [], "resources.gpu"),
    ("missing name", lambda raw: {k: v for k, v in raw.items() if k != "name"}, None, [],
     "name: is required"),
    ("no search space", _set("search_space", {}), None, [], "search_space"),
    ("spec is not YAML", "name: [unclosed\n", None, [], "not valid YAML"),
    ("spec is a list", "- name: a\n- name: b\n", None, [], "must be a mapping of sections"),
    ("spec is empty", "", None, [], "the spec is empty"),
    ("spec file missing", None, None, ["<missing-spec>"], "spec file not found"),
    ("data file missing", _set("data", {"path": "nowhere.csv"}), None, [], "nowhere.csv"),
    ("empty data file", None, _raw_file("data.csv", b""), [], "data.csv"),
    ("header-only CSV", None, _raw_file("data.csv", b"a,b,Class\n"), [], "data.csv"),
    ("missing target column", _set("data.target", "is_fraud"), _csv(_frame([0, 1])), [],
     "is_fraud"),
    ("constant target", None, _csv(_frame([0])), [], "Class"),
    ("NaN labels", None, _csv(_MIXED), [], "Class"),
    ("inf labels", None, _csv(_frame([0, 1, np.inf])), [], "Class"),
    ("three classes", None, _csv(_frame([0, 1, 2])), [], "Class"),
    ("unrecognised label pair", None, _csv(_frame(["cat", "dog"])), [], "Class"),
    ("unreadable Parquet", None, _raw_file("data.parquet", b"not parquet at all"), [],
     "data.parquet"),
    ("too few positives to split", None, _csv(_frame([0] * 199 + [1])), [], "positives"),
    ("unknown drop column", _set("data.drop", ["nope"]), _csv(_frame([0, 1])), [], "nope"),
    ("time split without time column", _set("data.split", "time"), None, [],
     "split 'time' needs data.time_column"),
    ("unreachable tracking URI", None, None, ["--tracking-uri", "http://127.0.0.1:{port}"],
     "cannot reach the MLflow store"),
    ("unreachable Ray address", None, None, ["--address", "127.0.0.1:{port}"],
     "cannot connect to a Ray cluster"),
]


def _run_case(folder: Path, edit: Any, data: Any, extra: list[str]) -> tuple[int, str]:
    raw = copy.deepcopy(BASE)
    spec_path = folder / "spec.yaml"
    if isinstance(edit, str):
        spec_path.write_text(edit)
    else:
        if data is not None:
            raw["data"] = {"path": data(folder), "min_positives": 3}
        if callable(edit):
            raw = edit(raw)
        spec_path.write_text(yaml.safe_dump(raw))
    port = _closed_port()
    args = [a.format(port=port) for a in extra if a != "<missing-spec>"]
    spec_arg = str(folder / "missing.yaml") if "<missing-spec>" in extra else str(spec_path)
    if "--tracking-uri" not in args:
        args += ["--tracking-uri", f"sqlite:///{folder}/mlflow.db"]
    return main(["run", spec_arg, "-q", *args])


@pytest.mark.parametrize("case,edit,data,extra,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(case, edit, data, extra, expected, tmp_path, monkeypatch,
                                     capsys):
    monkeypatch.chdir(tmp_path)
    code = _run_case(tmp_path, edit, data, extra)
    err = capsys.readouterr().err.strip()
    assert code != 0
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "tuning_runs").exists(), "no job folder left behind"
    assert not (tmp_path / "mlflow.db").exists(), "no MLflow store written"
    if os.environ.get("UPDATE_DOCS"):
        _record(case, lines[0])


@pytest.mark.slow
def test_gpu_request_on_a_cluster_without_gpus(ray_session, tmp_path, monkeypatch, capsys):
    """Checked against the live cluster, before any MLflow run is made."""
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    raw = {**copy.deepcopy(BASE), "resources": {"cpu": 1, "gpu": 0.5}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code = main(["run", str(tmp_path / "spec.yaml"), "-q", "--tracking-uri", uri])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert err.splitlines()[-1] == ("error: resources.gpu: 0.5 GPU per trial requested, "
                                    "but the Ray cluster has no GPU")
    assert not (tmp_path / "tuning_runs").exists()
    assert MlflowClient(uri).search_runs(["0"]) == []
    assert MlflowClient(uri).get_experiment_by_name("bad") is None


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "spec.yaml").write_text("- a list\n")
    with pytest.raises(Exception, match="must be a mapping"):
        main(["--debug", "validate", str(tmp_path / "spec.yaml")])


_DOC_ROWS: list[tuple[str, str]] = []


def _record(case: str, line: str) -> None:
    _DOC_ROWS.append((case, line))
    doc = ROOT / "docs" / "bad_input.md"
    rows = "\n".join(f"| {c} | `{m.replace('|', '/')}` |" for c, m in _DOC_ROWS)
    doc.write_text("# Bad input catalogue\n\nEach row is a test case in "
                   "`tests/tuning/cli/test_bad_input.py`, run through `tuning run`; the message is "
                   "the exact line printed (paths shortened by the test's temp folder).\n\n"
                   "| case | message |\n|---|---|\n" + rows + "\n")
