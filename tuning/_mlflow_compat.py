"""The private MLflow API this project uses, in one place (checked against mlflow 3.17)."""

from __future__ import annotations

from contextlib import AbstractContextManager


def use_tracking_uri(uri: str) -> AbstractContextManager:
    """Point MLflow's global tracking URI at ``uri`` for a ``with`` block only.

    ``runs:/`` model URIs resolve through the global tracking URI even when a
    client for another store is at hand; MLflow's own context manager for this is
    private (``mlflow.tracking._tracking_service.utils._use_tracking_uri``).
    """
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri  # heavy: mlflow

    return _use_tracking_uri(uri)
