"""A loopback HTTP proxy in front of a real ``mlflow server`` that answers faults on cue.

Faults are counted in requests, never in time: ``script(Fault(503, times=3),
Fault(400, path="runs/log-batch"))`` answers 503 to the next three requests, then
400 to the next ``runs/log-batch`` (other requests pass meanwhile), then passes
everything through. ``poison(marker)`` answers 400 to every request whose body holds
``marker``, as a store does for a record it will never take. A ``"hang"`` fault holds
the request until :meth:`FaultProxy.release` (a client timeout, without a time window
on our side).
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
_HANG_LIMIT_S = 120  # bounds a hang only: a test releases held requests itself


@dataclass
class Fault:
    """One scripted answer.

    Args:
        status: the HTTP status to answer, or ``"hang"``.
        times: how many matching requests get it.
        path: only requests whose path contains this (others pass through meanwhile).
        error_code: an MLflow error code for a JSON body as MLflow's own server sends;
            None for a plain-text body, as a load balancer or a proxy sends.
    """

    status: int | str
    times: int = 1
    path: str | None = None
    error_code: str | None = None


class FaultProxy:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 forwarding to ``upstream`` (``http://h:p``)."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.log: list[tuple[str, str, int | str]] = []  # (method, path, answer)
        self.bodies: list[bytes] = []  # request bodies, in the order of ``log``
        self._faults: deque[Fault] = deque()
        self._poison: list[tuple[bytes, Fault]] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="fault-proxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def script(self, *faults: Fault) -> None:
        """Queue faults; each applies to the next requests it matches, in order."""
        with self._lock:
            self._faults.extend(faults)

    def poison(self, marker: str, status: int = 400,
               error_code: str = "INVALID_PARAMETER_VALUE") -> None:
        """Answer ``status`` to every request whose body contains ``marker``, for good."""
        with self._lock:
            self._poison.append((marker.encode(), Fault(status, error_code=error_code)))

    def release(self) -> None:
        """Let every held (``"hang"``) request go; they end without an answer."""
        self._release.set()

    def answered(self, status: int | str, path: str | None = None) -> int:
        """How many requests (whose path contains ``path``) got ``status``."""
        with self._lock:
            return sum(1 for _, p, s in self.log if s == status and (path is None or path in p))

    def decide(self, path: str, body: bytes) -> Fault | None:
        """The fault for this request (consuming a scripted one), or None to forward."""
        with self._lock:
            for marker, fault in self._poison:
                if marker in body:
                    return fault
            if self._faults and (self._faults[0].path is None or self._faults[0].path in path):
                fault = self._faults[0]
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.popleft()
                return fault
        return None

    def record(self, method: str, path: str, body: bytes, answer: int | str) -> None:
        with self._lock:
            self.log.append((method, path, answer))
            self.bodies.append(body)

    def wait_released(self) -> None:
        self._release.wait(_HANG_LIMIT_S)


def _error_body(fault: Fault) -> tuple[bytes, str]:
    if fault.error_code is None:
        return f"<html><body>{fault.status} from the proxy</body></html>".encode(), "text/html"
    payload = {"error_code": fault.error_code, "message": f"injected by the test proxy "
                                                          f"({fault.status})"}
    return json.dumps(payload).encode(), "application/json"


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fault = proxy.decide(self.path, body)
            if fault is not None and fault.status == "hang":
                proxy.record(self.command, self.path, body, "hang")
                proxy.wait_released()
                self.close_connection = True
                return
            if fault is not None:
                proxy.record(self.command, self.path, body, fault.status)
                payload, kind = _error_body(fault)
                self._answer(int(fault.status), [("Content-Type", kind)], payload)
                return
            conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                proxy.record(self.command, self.path, body, resp.status)
                self._answer(resp.status, [(k, v) for k, v in resp.getheaders()
                                           if k.lower() not in _HOP_HEADERS], payload)
            finally:
                conn.close()

        def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

    return Handler
