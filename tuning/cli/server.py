"""``tuning server``: run an MLflow tracking server for the jobs of a cluster or a team."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from tuning.errors import JobError, ServerError
from tuning.server import (
    DEFAULT_ARTIFACTS,
    DEFAULT_BACKEND,
    DEFAULT_HOST,
    DEFAULT_PORT,
    ServerSettings,
    TrackingServer,
    artifacts_location,
    shown_uri,
)


def register(sub: Any) -> None:
    """Add the ``server`` subcommand to the ``tuning`` parser."""
    parser = sub.add_parser(
        "server", help="run an MLflow tracking server (UI + REST API) for tuning jobs",
        description="Start `mlflow server` with a database store and proxied artifacts. "
        "Jobs then log to it with tracking.tracking_uri (or --tracking-uri) "
        "http://HOST:PORT. Stop it with Ctrl-C.")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"interface to bind (default {DEFAULT_HOST}; the server has no "
                        "authentication: reach it through an SSH tunnel)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--backend-store-uri", default=DEFAULT_BACKEND,
                        help=f"runs database: sqlite:///FILE or postgresql://USER@HOST/DB "
                        f"(default {DEFAULT_BACKEND})")
    parser.add_argument("--artifacts-destination", default=DEFAULT_ARTIFACTS,
                        help=f"where artifacts go: a folder or s3://bucket/prefix "
                        f"(default ./{DEFAULT_ARTIFACTS})")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--log-file", type=Path,
                        help="write the server's output here instead of the terminal")
    parser.set_defaults(func=cmd_server)


def cmd_server(args: argparse.Namespace) -> int:
    """Start the server, print how to use it, and serve until interrupted."""
    settings = ServerSettings(host=args.host, port=args.port,
                              backend_store_uri=args.backend_store_uri,
                              artifacts_destination=args.artifacts_destination,
                              workers=args.workers)
    server = TrackingServer(settings, log_path=args.log_file)
    try:
        server.start()
    except ServerError as err:
        raise JobError(str(err)) from None
    print(f"MLflow tracking server on {server.url} (store "
          f"{shown_uri(settings.backend_store_uri)}, artifacts "
          f"{artifacts_location(settings.artifacts_destination)})", flush=True)
    print(f"Log jobs to it: tuning run SPEC --tracking-uri {server.url}   "
          f"(or tracking.tracking_uri: {server.url})", flush=True)
    # `kill` (SIGTERM) must stop the server too, not leave it running on its own.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = server.wait()
    except KeyboardInterrupt:
        server.stop()
        return 0
    if code:
        raise JobError(f"mlflow server stopped with exit code {code}")
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
