"""When the background Ray start starts nothing (no Ray is started by these tests)."""

from __future__ import annotations

import socket

from tuning.job.warmup import start_ray


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_cluster_address_connects_in_the_callers_thread_instead():
    assert start_ray("auto") is None
    assert start_ray("127.0.0.1:6379", "sqlite:///mlflow.db") is None


def test_a_refusing_tracking_server_starts_no_ray():
    """The job is about to stop on the store: a Ray started now would only delay the error."""
    assert start_ray(None, f"http://127.0.0.1:{_closed_port()}") is None
