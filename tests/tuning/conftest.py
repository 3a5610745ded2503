"""Fixtures shared by the tuning tests: one finished tiny job for the whole session.

The report, the store reader and the inspection commands all read the same job
back from MLflow, so it is run once (about 20 s on 2 cores) instead of once per file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def _root_helpers() -> None:
    # Test modules import the root conftest's helpers as `from conftest import ...`;
    # with this file present that name is this module, so its plain functions (not
    # its fixtures, which pytest registers from the root file) are re-exported here.
    path = Path(__file__).parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("_tests_root_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, value in vars(module).items():
        plain = type(value).__name__ == "function" and not hasattr(value, "_pytestfixturefunction")
        if plain and not name.startswith("_") and value.__module__ == module.__name__:
            globals().setdefault(name, value)


_root_helpers()

TINY_JOB = {
    "name": "tiny",
    "data": {"source": "synthetic", "rows": 5000, "fraud_rate": 0.04, "seed": 2},
    "objective": {"metric": "aucpr"},
    "search_space": {"eta": {"type": "loguniform", "low": 0.05, "high": 0.3},
                     "max_depth": {"type": "randint", "low": 2, "high": 5},
                     "grow_policy": {"type": "choice", "values": ["depthwise", "lossguide"]}},
    "search": {"algorithm": "random", "seed": 0},
    "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
    "training": {"num_boost_round": 20, "report_every": 5, "params": {"min_child_weight": 2}},
    "evaluation": {"cv": 1},  # CV is not this test's subject
    "budget": {"num_samples": 4, "max_concurrent": 2},
}


def run_tiny_job(tmp, **changes):
    """Run the tiny job (with ``changes`` to its top-level sections) with its store and
    folders in ``tmp``; return its :class:`~tuning.job.results.JobResult`."""
    from tuning.job.lifecycle import run_job
    from tuning.spec import parse_spec

    spec = parse_spec({**TINY_JOB, "tracking": {"tracking_uri": new_store(tmp)},
                       "storage": {"path": str(tmp / "runs")}, **changes})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)  # a SQLite store keeps artifacts under ./mlruns
        return run_job(spec, progress=False)


@pytest.fixture(scope="session")
def finished_tiny_job(ray_session, tmp_path_factory):
    """The tiny job, finished: 4 random trials under ASHA, logged to a SQLite store."""
    return run_tiny_job(tmp_path_factory.mktemp("tiny-job"))
