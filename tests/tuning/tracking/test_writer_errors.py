"""Transient vs permanent tracking errors, against a real ``mlflow server`` behind a proxy.

The proxy (``fault_proxy``) answers faults counted in requests: 503 for the next N,
400 for one ``runs/log-batch``, 400 for every request carrying a marker. The writer
must buffer through the 503s, skip and report only what was refused for good, and
leave a gap that a replay (``tuning sync``'s ``sync_trials``) fills.
"""

from __future__ import annotations

import logging
import socket
from collections import Counter

import pytest
import requests
from mlflow.exceptions import MlflowException, RestException
from mlflow.tracking import MlflowClient

from trainables.events import read_events
from tuning.job.sync import TrialFiles, sync_trials
from tuning.server import ServerSettings, TrackingServer, free_port
from tuning.tracking.errors import (
    ERRORS_FILE,
    PERMANENT,
    TRACKING_ERRORS_TAG,
    TRANSIENT,
    classify,
    read_errors,
)
from tuning.tracking.tags import PARENT_TAG, TRIAL_TAG
from tuning.tracking.writer import Record, RunWriter

from fault_proxy import Fault, FaultProxy
from faults import wait_for

from conftest import new_store

LOG_BATCH = "runs/log-batch"
Point = tuple[str, int, str]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One real ``mlflow server`` for the module (each test makes its own experiment)."""
    tmp = tmp_path_factory.mktemp("mlflow-server")
    settings = ServerSettings(port=free_port(), backend_store_uri=new_store(tmp, "store.db"),
                              artifacts_destination=str(tmp / "artifacts"), workers=1)
    srv = TrackingServer(settings, log_path=tmp / "server.log").start()
    yield srv
    srv.stop()


@pytest.fixture
def proxy(server, monkeypatch):
    # The writer retries with its own backoff; MLflow's HTTP retries would eat the faults.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    fp = FaultProxy(server.url).start()
    yield fp
    fp.stop()


def _parent(uri: str, name: str) -> tuple[str, str]:
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(name)
    return experiment_id, client.create_run(experiment_id).info.run_id


def _metrics(step: int, **extra: object) -> dict:
    return {"val_aucpr": step / 100, "val_f1": 0.5, "train_time_s": float(step), **extra}


def _stored(uri: str, experiment_id: str, parent: str) -> Counter[Point]:
    """Every (trial, step, metric) in the store, read directly (not through the proxy)."""
    client = MlflowClient(uri)
    points: Counter[Point] = Counter()
    for run in client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{parent}'"):
        for key in run.data.metrics:
            for m in client.get_metric_history(run.info.run_id, key):
                points[(run.data.tags[TRIAL_TAG], m.step, key)] += 1
    return points


def _points(records: list[Record]) -> set[Point]:
    return {(r.trial_id, r.step, k) for r in records if r.kind == "metrics" for k in r.metrics}


def test_503s_buffered_one_400_skipped_and_reported(server, proxy, tmp_path, job_events,
                                                     caplog):
    experiment_id, parent = _parent(server.url, "errors-503-400")
    writer = RunWriter(proxy.url, experiment_id, parent, max_backoff_s=0.2, job_dir=tmp_path)
    writer.start()
    submitted: list[Record] = []

    def submit(*records: Record) -> None:
        for rec in records:
            submitted.append(rec)
            writer.submit(rec)

    trials = ["a", "b", "c", "d"]
    submit(*(Record("start", t, params={"eta": 0.1}, tags={"mlflow.runName": t}, timestamp=1)
             for t in trials))
    submit(*(Record("metrics", t, step=10, metrics=_metrics(10), timestamp=2) for t in trials))
    assert writer.flush(timeout=60) == 0

    # 503 for the next 3 requests, then 400 for the next log-batch, then pass through.
    proxy.script(Fault(503, times=3), Fault(400, path=LOG_BATCH,
                                            error_code="INVALID_PARAMETER_VALUE"))
    caplog.set_level(logging.WARNING, logger="tuning.tracking")
    # d's record is first in the backlog, alone in its run: it meets the 503s, then the 400.
    submit(Record("metrics", "d", step=20, metrics=_metrics(20), timestamp=3))
    submit(*(Record("metrics", t, step=s, metrics=_metrics(s), timestamp=3)
             for s in (20, 30) for t in "abc"))
    wait_for(lambda: proxy.answered(400) == 1, "the proxy's one 400", hang_limit_s=60)
    submit(*(Record("metrics", "d", step=s, metrics=_metrics(s), timestamp=4) for s in (30, 40)))
    submit(*(Record("metrics", t, step=40, metrics=_metrics(40), timestamp=4) for t in "abc"))
    submit(*(Record("end", t, status="FINISHED", timestamp=5) for t in trials))
    assert writer.close(timeout=60) == 0

    # The outage: three log-batch attempts got 503, nothing was written meanwhile.
    first_503 = next(i for i, e in enumerate(proxy.log) if e[2] == 503)
    the_400 = next(i for i, e in enumerate(proxy.log) if e[2] == 400)
    assert [e[2] for e in proxy.log[first_503:the_400]] == [503, 503, 503]
    assert all(LOG_BATCH in e[1] for e in proxy.log[first_503:the_400 + 1])
    failed = [e for e in read_events(job_events) if e["event"] == "tracking.write_failed"]
    assert len(failed) == 3 and writer.stats["retries"] == 3

    # Exactly the 400 batch's points are missing; nothing is duplicated.
    missing = {("d", 20, k) for k in _metrics(20)}
    stored = _stored(server.url, experiment_id, parent)
    assert set(stored) == _points(submitted) - missing
    assert set(stored.values()) == {1}
    assert sum(stored.values()) == len(_points(submitted)) - len(missing)

    # Reported three ways: a log line, the jsonl line, the parent tag.
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    line = errors[0].getMessage()
    assert "metrics record of trial d" in line and "HTTP 400" in line and "step 20" in line
    (entry,) = read_errors(tmp_path / ERRORS_FILE)
    assert (entry["trial_id"], entry["kind"], entry["step"], entry["http_status"]) == \
        ("d", "metrics", 20, 400)
    assert {("d", entry["step"], k) for k in entry["keys"]} == missing
    assert entry["run_id"] == writer.run_ids["d"] and "INVALID_PARAMETER_VALUE" in entry["error"]
    parent_run = MlflowClient(server.url).get_run(parent)
    assert parent_run.data.tags[TRACKING_ERRORS_TAG] == "1"
    # The skipped step is a gap, not written: a replay starts before it.
    assert writer.last_step["d"] == 19 and writer.last_step["a"] == 40
    runs = MlflowClient(server.url).search_runs([experiment_id],
                                                f"tags.`{PARENT_TAG}` = '{parent}'")
    assert {r.info.status for r in runs} == {"FINISHED"} and len(runs) == 4

    # The cause fixed (the proxy passes now), a replay from Tune's files fills the gap.
    results = {t: [{**_metrics(s), "rounds": s, "timestamp": 1, "training_done": s == 40}
                   for s in (10, 20, 30, 40)] for t in trials}
    files = [TrialFiles(t, {"eta": 0.1}, results[t], errored=False) for t in trials]
    replay = RunWriter(proxy.url, experiment_id, parent, job_dir=tmp_path)
    sync_trials(replay, files, "errors", job_finished=True)
    stored = _stored(server.url, experiment_id, parent)
    assert set(stored) == _points(submitted) and set(stored.values()) == {1}
    again = RunWriter(proxy.url, experiment_id, parent, job_dir=tmp_path)
    assert sync_trials(again, files, "errors", job_finished=True).metric_points == 0


class _Unprintable:
    def __str__(self) -> str:
        raise ValueError("this parameter cannot be turned into text")


def test_a_bad_record_does_not_take_its_batch_along(server, proxy, tmp_path, caplog):
    experiment_id, parent = _parent(server.url, "errors-poison")
    writer = RunWriter(proxy.url, experiment_id, parent, job_dir=tmp_path)
    writer.load_existing()
    proxy.poison("val_poison")  # the store refuses this record every time, as a bad value
    records = [Record("start", "a", params={"eta": 0.1}, timestamp=1),
               Record("start", "c", params={"bad": _Unprintable()}, timestamp=1)]
    records += [Record("metrics", "a", step=s, timestamp=2,
                       metrics=_metrics(s, val_poison=1.0) if s == 20 else _metrics(s))
                for s in (10, 20, 30)]
    records += [Record("tags", "a", tags={"tuning.node": "n1"}),
                # refused by MLflow's client before sending: a str where a float goes
                Record("metrics", "a", step=40, metrics={"val_text": "NaN?"}, timestamp=2),
                Record("metrics", "c", step=10, metrics=_metrics(10), timestamp=2),
                Record("end", "a", status="FINISHED", timestamp=3)]
    caplog.set_level(logging.WARNING, logger="tuning.tracking")
    writer.write(list(records))  # synchronously, as `tuning sync` does: one batch for a

    # The batch of a's three records was refused, then written one by one.
    refused = [i for i, e in enumerate(proxy.log) if e[2] == 400]
    assert len(refused) == 2  # the batch and the poisoned record alone
    assert any("a batch of 3 records" in r.getMessage() for r in caplog.records)
    stored = _stored(server.url, experiment_id, parent)
    assert set(stored) == {("a", s, k) for s in (10, 30) for k in _metrics(s)} | \
        {("c", 10, k) for k in _metrics(10)}
    entries = read_errors(tmp_path / ERRORS_FILE)
    assert [(e["trial_id"], e["kind"], e["step"]) for e in entries] == \
        [("c", "start", 0), ("a", "metrics", 20), ("a", "metrics", 40)]
    assert entries[0]["keys"] == ["bad"] and entries[1]["http_status"] == 400
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 3
    assert writer.last_step["a"] == 19
    client = MlflowClient(server.url)
    assert client.get_run(parent).data.tags[TRACKING_ERRORS_TAG] == "3"
    assert client.get_run(writer.run_ids["a"]).info.status == "FINISHED"


# ------------------------------------------------------------------ the classifier
def _refused_port() -> int:
    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _error_of(uri: str) -> BaseException:
    with pytest.raises(Exception) as info:
        MlflowClient(uri).get_experiment("0")
    return info.value


@pytest.mark.parametrize(("fault", "kind"), [
    (Fault(500, error_code="INTERNAL_ERROR"), TRANSIENT),
    (Fault(502), TRANSIENT),
    (Fault(503), TRANSIENT),
    (Fault(503, error_code="TEMPORARILY_UNAVAILABLE"), TRANSIENT),
    (Fault(429), TRANSIENT),
    (Fault(429, error_code="REQUEST_LIMIT_EXCEEDED"), TRANSIENT),
    (Fault(400, error_code="INVALID_PARAMETER_VALUE"), PERMANENT),
    (Fault(400), PERMANENT),
    (Fault(404, error_code="RESOURCE_DOES_NOT_EXIST"), PERMANENT),
    (Fault(404), PERMANENT),
    (Fault(403, error_code="PERMISSION_DENIED"), PERMANENT),
])
def test_classify_http_answers_as_mlflow_raises_them(proxy, fault, kind):
    proxy.script(fault)
    err = _error_of(proxy.url)
    assert isinstance(err, MlflowException)
    assert classify(err) == kind, f"{type(err).__name__}: {err}"


def test_classify_connection_refused(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    err = _error_of(f"http://127.0.0.1:{_refused_port()}")
    assert classify(err) == TRANSIENT, f"{type(err).__name__}: {err}"


def test_classify_timeout(proxy, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    proxy.script(Fault("hang"))  # held until released: the client's own timeout fires
    err = _error_of(proxy.url)
    proxy.release()
    # With MLflow's retries off, urllib3 wraps the read timeout: requests raises a
    # ConnectionError, and MLflow a generic MlflowException during its handling.
    assert "timed out" in str(err)
    assert isinstance(err.__cause__ or err.__context__, requests.exceptions.RequestException)
    assert classify(err) == TRANSIENT


@pytest.mark.parametrize(("err", "kind"), [
    (requests.exceptions.ConnectionError("refused"), TRANSIENT),
    (requests.exceptions.ReadTimeout("slow"), TRANSIENT),
    (ConnectionRefusedError(111, "refused"), TRANSIENT),
    (RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "m"}), TRANSIENT),
    (RestException({"error_code": "RESOURCE_EXHAUSTED", "message": "m"}), TRANSIENT),
    (RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "m"}), PERMANENT),
    (RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "m"}), PERMANENT),
    (MlflowException.invalid_parameter_value("param too long"), PERMANENT),
    (TypeError("Object of type set is not JSON serializable"), PERMANENT),
    (ValueError("could not convert string to float: 'x'"), PERMANENT),
])
def test_classify_exception_kinds(err, kind):
    assert classify(err) == kind


def test_classify_a_record_that_cannot_be_serialised(tracking_uri):
    client = MlflowClient(tracking_uri)
    run_id = client.create_run(client.create_experiment("ser")).info.run_id
    from mlflow.entities import Metric

    with pytest.raises(Exception) as info:
        client.log_batch(run_id, metrics=[Metric("val_x", "not a number", 0, 0)])
    assert classify(info.value) == PERMANENT, f"{type(info.value).__name__}: {info.value}"


def test_writer_thread_survives_a_permanent_error_with_no_errors_file(tracking_uri):
    # Without a job folder the record is still reported (log line, parent tag).
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment("nofile")
    parent = client.create_run(experiment_id).info.run_id
    writer = RunWriter(tracking_uri, experiment_id, parent)
    writer.start()
    writer.submit(Record("start", "a", timestamp=1))
    writer.submit(Record("metrics", "a", step=1, metrics={"val_x": "text"}, timestamp=2))
    writer.submit(Record("metrics", "a", step=2, metrics={"val_x": 1.0}, timestamp=2))
    assert writer.close(timeout=60) == 0
    assert writer.stats["skipped_errors"] == 1 and writer.stats["metric_points"] == 1
    assert client.get_run(parent).data.tags[TRACKING_ERRORS_TAG] == "1"
