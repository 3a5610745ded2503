"""Reach the tracking store: a quick check before anything is written, and a client."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tuning.errors import TrackingError
from tuning.spec import resolve_tracking_uri


def check_tracking(uri: str) -> None:
    """Fail fast, before any trial, when the tracking store cannot be reached."""
    from mlflow.tracking import MlflowClient  # heavy: mlflow (the CLI imports this module)

    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                                            "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    # A refused connection or an unknown host fails at once whatever this says; it bounds
    # only a server that took the connection and is slow to answer. A healthy server's
    # first API call opens its store, which took over 5 s (the old value) on a loaded
    # 2-core machine and refused a job against a server that was up.
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "30"
    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as err:  # noqa: BLE001 - any failure means unreachable
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TrackingError(f"tracking URI {uri}: cannot reach the MLflow store ({first[:200]})") from None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def client_for(tracking_uri: str) -> Any:
    """An MlflowClient for ``tracking_uri``; a one-line TrackingError when it is unreachable."""
    # Opening a SQLite URI creates the file: a typo must not leave an empty store behind.
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///").split("?")[0])
        if str(path) and not path.exists():
            raise TrackingError(f"tracking URI {tracking_uri}: no such database file ({path})")
    check_tracking(tracking_uri)
    from mlflow.tracking import MlflowClient  # heavy: mlflow

    return MlflowClient(tracking_uri)


def default_uri(tracking_uri: str | None) -> str:
    """``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the default store."""
    return resolve_tracking_uri(tracking_uri)
