"""An MLflow tracking server for jobs that share one store (a cluster, a team).

A SQLite file is enough for one driver on one machine. A tracking server puts the
store behind HTTP: drivers anywhere log to ``http://HOST:5000``, the database
(SQLite or PostgreSQL) stays on one machine, and artifacts (the best model,
``spec.yaml``) are uploaded through the server to ``--artifacts-destination``.
The server binds to 127.0.0.1 unless told otherwise: it has no authentication,
so reach it through an SSH tunnel rather than an open port.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tuning.errors import ServerError

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
DEFAULT_BACKEND = "sqlite:///mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"
# SQLAlchemy dialects MLflow's SQL store accepts; a plain folder (file store) is refused
# by MLflow 3 unless MLFLOW_ALLOW_FILE_STORE is set.
DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


@dataclass
class ServerSettings:
    """How to start ``mlflow server``."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    backend_store_uri: str = DEFAULT_BACKEND
    artifacts_destination: str = DEFAULT_ARTIFACTS
    workers: int = 2

    @property
    def url(self) -> str:
        """The tracking URI clients use (``tracking.tracking_uri``)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"


def check_settings(settings: ServerSettings) -> None:
    """Reject settings ``mlflow server`` would fail on later, or silently misuse."""
    scheme = settings.backend_store_uri.split(":", 1)[0].split("+", 1)[0]
    if "://" not in settings.backend_store_uri or scheme not in DB_SCHEMES:
        raise ServerError(
            f"--backend-store-uri must be a database URI ({', '.join(s + '://...' for s in DB_SCHEMES)}),"
            f" got {settings.backend_store_uri!r}"
        )
    check_driver(settings.backend_store_uri)
    if not 0 < settings.port < 65536:
        raise ServerError(f"--port must be in 1..65535, got {settings.port}")
    if not is_loopback(settings.host):
        logger.warning("the MLflow server on %s is reachable from the network and has no "
                       "authentication", settings.host)


def check_driver(uri: str) -> None:
    """Fail here, in one line, when the store's database driver is not installed.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3; the project installs
    psycopg2 (dev extra), which ``postgresql+psycopg2://`` names explicitly.
    """
    from sqlalchemy.engine.url import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(uri)
        url.get_dialect().import_dbapi()
    except ImportError as err:
        shown = url.render_as_string(hide_password=True)
        hint = " (or name the installed driver: postgresql+psycopg2://...)" \
            if url.get_backend_name() == "postgresql" else ""
        raise ServerError(f"--backend-store-uri {shown}: its database driver is not "
                          f"installed ({err}){hint}") from None
    except (ArgumentError, NoSuchModuleError) as err:
        raise ServerError(f"--backend-store-uri: not a usable database URI ({err})") from None


def shown_uri(uri: str) -> str:
    """The store URI with any password masked, for logs and messages."""
    from sqlalchemy.engine.url import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(uri).render_as_string(hide_password=True)
    except ArgumentError:
        return uri


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def artifacts_location(destination: str) -> str:
    """A local folder as an absolute path (the server's cwd may differ); URIs unchanged."""
    if "://" in destination:
        return destination
    return str(Path(destination).expanduser().resolve())


def server_command(settings: ServerSettings) -> list[str]:
    """The ``mlflow server`` command line for these settings."""
    return [
        sys.executable, "-m", "mlflow", "server",
        "--host", settings.host, "--port", str(settings.port),
        "--backend-store-uri", settings.backend_store_uri,
        # Artifacts go through the server (mlflow-artifacts:/), so drivers and
        # workers need no direct access to the artifact store.
        "--serve-artifacts",
        "--artifacts-destination", artifacts_location(settings.artifacts_destination),
        "--workers", str(settings.workers),
    ]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host if host != "0.0.0.0" else "127.0.0.1", port)) == 0


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port nothing listens on now (for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _answers(url: str, path: str, timeout: float) -> bool:
    """True when ``GET url+path`` returns 200 (directly: an HTTP proxy is bypassed)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}{path}", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def healthy(url: str, timeout: float = 2.0) -> bool:
    """True when the server answers ``/health``."""
    return _answers(url, "/health", timeout)


def store_answers(url: str, timeout: float) -> bool:
    """True when the server's tracking API answers (its store is open), not only ``/health``."""
    return _answers(url, "/api/2.0/mlflow/experiments/search?max_results=1", timeout)


def server_env() -> dict[str, str]:
    """The server's environment: this one, with MLflow's job execution off unless set.

    Job execution (GenAI scoring jobs, trace archival) is no part of a tuning job's
    tracking; it starts a job consumer and periodic tasks beside the web workers,
    which compete with the trials for the CPU (on a loaded 2-core machine the first
    API call after ``/health`` then took minutes).
    """
    return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}


class TrackingServer:
    """A running ``mlflow server`` process; a context manager that stops it on exit."""

    def __init__(self, settings: ServerSettings, log_path: Path | None = None) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return self.settings.url

    def start(self, timeout: float = 90.0) -> TrackingServer:
        """Start the server and wait until ``/health`` and then its tracking API answer
        (the first API call opens the store: a job started on ``/health`` alone could
        meet a server still busy with that).

        Raises:
            ServerError: Bad settings, a busy port, or a server that exits or
                stays unhealthy (the message quotes its last log line).
        """
        check_settings(self.settings)
        if port_in_use(self.settings.host, self.settings.port):
            raise ServerError(f"--port {self.settings.port}: something already listens on "
                              f"{self.settings.host}:{self.settings.port}")
        # Without a log file the server's output goes to this terminal.
        log = open(self.log_path, "w") if self.log_path else None  # noqa: SIM115
        # A session of its own: `mlflow server` runs uvicorn (and its workers) as
        # children, and stop() must end them all, not only the wrapper.
        self.process = subprocess.Popen(server_command(self.settings), stdout=log, env=server_env(),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        if log is not None:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"mlflow server exited with code {self.process.returncode}: "
                                  f"{self._last_line()}")
            if healthy(self.url) and store_answers(self.url, max(1.0, deadline - time.monotonic())):
                logger.info("MLflow server at %s (store %s)", self.url,
                            shown_uri(self.settings.backend_store_uri))
                return self
            time.sleep(0.5)
        self.stop()
        raise ServerError(f"mlflow server on {self.url} not healthy after {timeout:.0f}s: "
                          f"{self._last_line()}")

    def wait(self) -> int:
        """Block until the server process ends; return its exit code."""
        assert self.process is not None
        return self.process.wait()

    def stop(self, timeout: float = 15.0) -> None:
        """Terminate the server's process group (wrapper, uvicorn, workers) and wait."""
        if self.process is None or self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(5)

    def _signal(self, sig: int) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, sig)  # the group this class created, nothing else
        except ProcessLookupError:
            pass

    def _last_line(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "see its output above"
        lines = [line.strip() for line in self.log_path.read_text(errors="replace").splitlines()
                 if line.strip()]
        return lines[-1][:300] if lines else "no output"

    def __enter__(self) -> TrackingServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
