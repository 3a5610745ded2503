"""``tuning server``: a real ``mlflow server`` process as the tracking store of a job."""

from __future__ import annotations

import json
import os
import urllib.request
import uuid

import pytest
from mlflow.tracking import MlflowClient

from tuning.cli import build_parser
from tuning.spec import parse_spec
from tuning.server import (
    ServerError,
    ServerSettings,
    TrackingServer,
    check_settings,
    free_port,
    port_in_use,
    server_command,
    server_env,
)

POSTGRES_ENV = "TUNING_TEST_POSTGRES_URI"


# ------------------------------------------------------------------ settings
def test_cli_defaults_bind_to_loopback_with_a_database_store():
    args = build_parser().parse_args(["server"])
    assert (args.host, args.port, args.backend_store_uri) == ("127.0.0.1", 5000,
                                                              "sqlite:///mlflow.db")
    command = server_command(ServerSettings())
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert "--serve-artifacts" in command


@pytest.mark.parametrize("uri", ["./mlruns", "file:///tmp/mlruns", "mongodb://h/db"])
def test_non_database_backend_stores_are_refused(uri):
    with pytest.raises(ServerError, match="--backend-store-uri must be a database URI"):
        check_settings(ServerSettings(backend_store_uri=uri))


def test_a_busy_port_is_a_one_line_error(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = TrackingServer(ServerSettings(port=port,
                                               backend_store_uri=f"sqlite:///{tmp_path}/m.db"))
        with pytest.raises(ServerError, match=f"--port {port}: something already listens"):
            server.start()
    assert server.process is None


def test_mlflow_job_execution_is_off_unless_the_user_sets_it(monkeypatch):
    monkeypatch.delenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", raising=False)
    assert server_env()["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "true")
    assert server_env()["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"


# ------------------------------------------------------------- real server
def small_spec(uri: str, tmp_path) -> object:
    return parse_spec({
        "name": "served",
        "data": {"rows": 5_000, "fraud_rate": 0.02, "seed": 0, "min_positives": 5},
        "search_space": {"eta": {"type": "loguniform", "low": 0.05, "high": 0.3},
                         "max_depth": {"type": "randint", "low": 2, "high": 6}},
        "search": {"algorithm": "random", "seed": 0},
        "scheduler": {"type": "fifo"},
        "training": {"num_boost_round": 20, "report_every": 10},
        "evaluation": {"cv": 1},  # CV is not this test's subject
        "budget": {"num_samples": 3, "max_concurrent": 2},
        # A fresh experiment per test: the PostgreSQL database outlives test runs.
        "tracking": {"tracking_uri": uri, "experiment": f"served-{uuid.uuid4().hex[:8]}",
                     "log_model": False},
        "storage": {"path": str(tmp_path / "tuning_runs")},
    })


def run_job_against_server(backend: str, tmp_path) -> None:
    """Start a server on a free port, run a job through it, read it back over HTTP."""
    from tuning.job.lifecycle import run_job

    artifacts = tmp_path / "artifacts"
    settings = ServerSettings(port=free_port(), backend_store_uri=backend,
                              artifacts_destination=str(artifacts), workers=1)
    with TrackingServer(settings, log_path=tmp_path / "server.log") as server:
        result = run_job(small_spec(server.url, tmp_path), progress=False)
        assert result.unlogged_records == 0

        # The REST API itself, not only the client library.
        body = json.dumps({"experiment_ids": [result.experiment_id], "max_results": 100})
        request = urllib.request.Request(f"{server.url}/api/2.0/mlflow/runs/search",
                                         data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            runs = json.load(response)["runs"]
        tags = [{t["key"]: t["value"] for t in run["data"].get("tags", [])} for run in runs]
        children = [t for t in tags if t.get("mlflow.parentRunId") == result.parent_run_id]
        assert len(runs) == 4 and len(children) == 3
        assert sum(t.get("tuning.role") == "parent" for t in tags) == 1

        client = MlflowClient(server.url)
        for run in client.search_runs([result.experiment_id],
                                      filter_string=f"tags.`mlflow.parentRunId` = "
                                                    f"'{result.parent_run_id}'"):
            assert run.info.status == "FINISHED"
            steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_aucpr")]
            assert sorted(steps) == [10, 20]
        parent = client.get_run(result.parent_run_id)
        assert parent.info.status == "FINISHED"
        assert "best_val_aucpr" in parent.data.metrics
        # Artifacts were uploaded through the server into --artifacts-destination.
        listed = [f.path for f in client.list_artifacts(result.parent_run_id)]
        assert "spec.yaml" in listed
        assert list(artifacts.rglob("spec.yaml"))
    assert not port_in_use("127.0.0.1", settings.port)  # stopped, workers included


@pytest.mark.slow
def test_job_logs_to_a_tracking_server_with_sqlite_store(ray_session, tmp_path):
    run_job_against_server(f"sqlite:///{tmp_path}/server.db", tmp_path)


@pytest.mark.slow
def test_job_logs_to_a_tracking_server_with_postgresql_store(ray_session, tmp_path):
    from conftest import missing_real_part

    if not os.environ.get(POSTGRES_ENV):
        missing_real_part("PostgreSQL", f"{POSTGRES_ENV} is not set "
                                        f'(export {POSTGRES_ENV}="$(scripts/start_postgres.sh)")')
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        missing_real_part("psycopg2", "psycopg2-binary (dev extra) is not installed")
    run_job_against_server(os.environ[POSTGRES_ENV], tmp_path)


def test_a_missing_database_driver_is_named_before_the_server_starts():
    import importlib.util

    if importlib.util.find_spec("pg8000") is not None:
        pytest.skip("pg8000 is installed here")
    with pytest.raises(ServerError, match=r"postgresql\+pg8000://u:\*\*\*@h/db: its database "
                                          r"driver is not installed"):
        check_settings(ServerSettings(backend_store_uri="postgresql+pg8000://u:secret@h/db"))
