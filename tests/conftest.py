"""Shared fixtures: one Ray instance per test session, MLflow stores in tmp_path."""

from __future__ import annotations

import os

import pytest

# Ray on 2 cores is slow to start: tests that need it share one instance.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "1")
# Tests send traffic only to loopback: no usage reports from MLflow or Ray. MLflow's
# telemetry also races the suite: when its config fetch fails (no internet), a
# background thread unsets an environment variable while requests iterates
# os.environ, and a tracking call fails with KeyError '_MLFLOW_TELEMETRY_SESSION_ID'.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def pytest_configure(config):
    """Give the whole session one event folder (trainables.events), before anything runs.

    Set in the environment at start, so every Ray worker inherits it, whichever test
    starts Ray first; a test that holds trials there uses ``job_events``.
    """
    import tempfile

    from trainables.events import EVENTS_ENV

    # Each pytest-xdist worker runs its own Ray and its own jobs: its own folder too
    # (it would otherwise inherit the controller's, and clear another worker's events).
    if EVENTS_ENV not in os.environ or os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ[EVENTS_ENV] = tempfile.mkdtemp(prefix="tuning-test-events-")
        config._tuning_events_dir = os.environ[EVENTS_ENV]


def pytest_unconfigure(config):
    import shutil

    folder = getattr(config, "_tuning_events_dir", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
    template = os.environ.pop(_STORE_TEMPLATE_ENV, None)
    if template:
        shutil.rmtree(os.path.dirname(template), ignore_errors=True)


@pytest.fixture(autouse=True)
def _logging_left_enabled():
    """Fail the test that leaves ``logging.disable`` set: it would silence every later
    test's log capture (a benchmark helper once did, and a warning test failed far away)."""
    import logging

    before = logging.root.manager.disable
    yield
    after = logging.root.manager.disable
    if after != before:
        logging.disable(before)
        pytest.fail(f"the test left logging.disable({after}) set for the rest of the session",
                    pytrace=False)


@pytest.fixture(scope="session")
def session_events_dir():
    """The session's event folder (see :func:`pytest_configure`)."""
    from pathlib import Path

    from trainables.events import EVENTS_ENV

    return Path(os.environ[EVENTS_ENV])


@pytest.fixture
def job_events(session_events_dir):
    """The shared event folder, empty at the start and the end of the test."""
    def clear():
        for path in session_events_dir.iterdir():
            path.unlink()

    clear()
    yield session_events_dir
    clear()


@pytest.fixture(scope="session")
def ray_session(session_events_dir):
    """A local Ray with 2 CPUs shared by every test that asks for it."""
    import ray

    started = False
    if not ray.is_initialized():
        # address="local": never attach to another Ray that happens to run on this machine.
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING",
                 log_to_driver=False)
        started = True
    yield ray
    if started:
        ray.shutdown()


_STORE_TEMPLATE_ENV = "TUNING_TEST_STORE_TEMPLATE"


def new_store(folder, name: str = "mlflow.db") -> str:
    """A real, empty SQLite MLflow store at ``folder/name``; returns its URI.

    MLflow builds a new SQLite store by running every schema migration (2-4 s on
    2 cores, 15 s on a loaded machine), and the suite makes dozens of them. So one
    store is built the normal way once per session and each test gets a byte copy
    of it: the same real store, as MLflow itself made it. (A job creating its store
    from nothing is still covered: tests/tuning/job/test_end_to_end.py and the CLI
    bad-input tests leave the path empty.)
    """
    import shutil
    import tempfile
    from pathlib import Path

    template = os.environ.get(_STORE_TEMPLATE_ENV)
    if not template or not Path(template).exists():
        from mlflow.tracking import MlflowClient

        # In the environment, not a module global: this file is also loaded a second
        # time (tests/tuning/conftest.py re-exports its helpers), and subprocesses
        # of a test may build stores too.
        template = str(Path(tempfile.mkdtemp(prefix="tuning-test-store-")) / "template.db")
        MlflowClient(f"sqlite:///{template}").search_experiments()  # runs the migrations
        os.environ[_STORE_TEMPLATE_ENV] = template
    target = Path(folder) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def tracking_uri(tmp_path):
    """A real SQLite MLflow store private to the test."""
    return new_store(tmp_path)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run the test from tmp_path so job folders and stores land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def in_ci() -> bool:
    """True under CI (``CI=true``), where every real part must be there."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_real_part(what: str, why: str) -> None:
    """A real part a test needs is missing: fail under ``CI=true``, else skip saying why.

    A green CI must mean PostgreSQL, Chromium and the other real parts were used,
    not that their tests skipped quietly.
    """
    if in_ci():
        pytest.fail(f"{what} is required under CI=true but unavailable: {why}", pytrace=False)
    pytest.skip(f"{what} unavailable: {why}")


def full_reads(events_dir) -> int:
    """Whole-table reads (``trainables.tables.read_table``) recorded in ``events_dir``."""
    from trainables.events import read_events

    return sum(e["event"] == "data.full_read" for e in read_events(events_dir))


def record_fault(fault: str, **figures) -> None:
    """Append one injected fault's figures to $RELIABILITY_LOG (for docs/reliability.md)."""
    import json

    path = os.environ.get("RELIABILITY_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps({"fault": fault, **figures}) + "\n")
