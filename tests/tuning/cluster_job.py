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
        }
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
