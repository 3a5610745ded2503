"""Warm-start observations read back from MLflow: an earlier job's finished trials."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from tuning.errors import TrackingError
from tuning.search.warm_start import Observation, fit_to_space
from tuning.spec import Spec
from tuning.tracking.tags import PARENT_TAG, ROLE_PARENT, ROLE_TAG


def load_observations(spec: Spec) -> list[Observation]:
    """The finished trials of the job(s) named by ``search.warm_start``, fitted to this space.

    Raises:
        TrackingError: the earlier experiment or parent run cannot be found.
    """
    ws = spec.search.warm_start
    if ws is None:
        return []
    uri = ws.tracking_uri or spec.tracking_uri()
    client = MlflowClient(uri)
    if ws.run_id:
        try:
            parent = client.get_run(ws.run_id)
        except Exception:  # noqa: BLE001 - MLflow raises several types for a missing run
            raise TrackingError(f"search.warm_start.run_id: no MLflow run {ws.run_id!r} "
                           f"at {uri}") from None
        experiment_ids, parent_ids = [parent.info.experiment_id], [ws.run_id]
    else:
        experiment = client.get_experiment_by_name(ws.experiment)
        if experiment is None:
            raise TrackingError(f"search.warm_start.experiment: no MLflow experiment "
                           f"{ws.experiment!r} at {uri}")
        experiment_ids = [experiment.experiment_id]
        parents = client.search_runs(experiment_ids, f"tags.`{ROLE_TAG}` = '{ROLE_PARENT}'",
                                     max_results=10_000)
        parent_ids = [p.info.run_id for p in parents]
    runs = []
    for parent_id in parent_ids:
        runs += client.search_runs(
            experiment_ids,
            f"tags.`{PARENT_TAG}` = '{parent_id}' and attributes.status = 'FINISHED'",
            max_results=50_000,
        )
    return fit_to_space(spec, [(r.data.params, r.data.metrics) for r in runs], source=uri)
