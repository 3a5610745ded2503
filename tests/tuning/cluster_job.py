"""Run one tuning job on a multi-node Ray cluster started on this machine.

The multi-node tests run this file in a subprocess, so the ``ray.cluster_utils.Cluster``
it starts never meets the session-wide local Ray of ``tests/conftest.py``; it shuts
down only the cluster it started.

Usage: ``python cluster_job.py REQUEST.json`` where the request holds ``spec`` (a
spec mapping), ``head`` and ``workers`` (``Cluster.add_node`` arguments). The last
line of stdout is JSON: the job's summary plus the worker node ids.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

HELPER = Path(__file__).resolve()
ROOT = Path(__file__).resolve().parents[2]


def run_on_cluster(request: dict, cwd: Path, extra_env: dict[str, str] | None = None,
                   timeout: float = 240) -> dict:
    """Run ``cluster_job.py`` in a subprocess; return its JSON summary."""
    request_path = cwd / "request.json"
    request_path.write_text(json.dumps(request))
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(extra_env or {})}
    proc = subprocess.run([sys.executable, str(HELPER), str(request_path)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_runs(uri: str, summary: dict) -> list[Any]:
    """The job's child runs (one per trial) in the MLflow store at ``uri``."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri).search_runs(
        [summary["experiment_id"]],
        filter_string=f"tags.`mlflow.parentRunId` = '{summary['parent_run_id']}'",
    )


def main(request_path: str) -> int:
    import ray
    from ray.cluster_utils import Cluster

    from tuning.config import parse_spec
    from tuning.run import run_job

    request = json.loads(open(request_path).read())
    spec = parse_spec(request["spec"], source=request_path)
    cluster = Cluster(initialize_head=True, head_node_args={
        "include_dashboard": False, **request.get("head", {"num_cpus": 0})})
    try:
        workers = [cluster.add_node(**node) for node in request["workers"]]
        cluster.wait_for_nodes()
        removed: dict[str, str] = {}
        if request.get("remove_busy_worker"):
            threading.Thread(target=_remove_busy_worker, daemon=True,
                             args=(cluster, workers, spec, removed)).start()
        result = run_job(spec, address=cluster.address, progress=False)
        summary = {
            "parent_run_id": result.parent_run_id,
            "experiment_id": result.experiment_id,
            "experiment_dir": result.experiment_dir,
            "trials": [{"trial_id": t.trial_id, "status": t.status, "rounds": t.rounds}
                       for t in result.trials],
            "unlogged_records": result.unlogged_records,
            "worker_node_ids": [node.node_id for node in workers],
            "head_node_id": cluster.head_node.node_id,
            "removed_node_id": removed.get("node_id"),
            "removed_while_running": removed.get("trial_id"),
        }
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps(summary))
    return 0


def _remove_busy_worker(cluster: Any, workers: list, spec: Any, removed: dict) -> None:
    """Kill a worker node (no graceful drain) once a trial on it has logged a result."""
    import time

    from mlflow.tracking import MlflowClient

    client = MlflowClient(spec.tracking_uri())
    by_id = {node.node_id: node for node in workers}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not removed:
        time.sleep(0.3)
        experiment = client.get_experiment_by_name(spec.experiment_name)
        if experiment is None:
            continue
        for run in client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'"):
            node_id = run.data.tags.get("ray.node_id")
            # A trial that has reported but still has rounds to go.
            rounds_left = run.data.metrics.get("val_aucpr") is not None and \
                max(m.step for m in client.get_metric_history(run.info.run_id, "val_aucpr")) \
                < spec.training.num_boost_round
            if node_id in by_id and rounds_left:
                cluster.remove_node(by_id[node_id], allow_graceful=False)
                removed.update(node_id=node_id, trial_id=run.data.tags["ray.trial_id"])
                break


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
