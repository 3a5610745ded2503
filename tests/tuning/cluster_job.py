"""Run one tuning job on a multi-node Ray cluster started on this machine.

The multi-node tests run this file in a subprocess, so the ``ray.cluster_utils.Cluster``
it starts never meets the session-wide local Ray of ``tests/conftest.py``; it shuts
down only the cluster it started.

Usage: ``python cluster_job.py REQUEST.json`` where the request holds ``spec`` (a
spec mapping), ``head`` and ``workers`` (``Cluster.add_node`` arguments), and
optionally ``hold``: ``{"when": {"round": R}, "release_at": N, "remove_node_of_held":
bool}`` holds every trial at round R until N trials are held at once (then kills the
node of one of them, if asked) and releases them. The last line of stdout is JSON:
the job's summary plus the worker node ids and the trials held at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from trainables.events import EVENTS_ENV

HELPER = Path(__file__).resolve()
ROOT = Path(__file__).resolve().parents[2]


def run_on_cluster(request: dict, cwd: Path, extra_env: dict[str, str] | None = None,
                   timeout: float = 240) -> dict:
    """Run ``cluster_job.py`` in a subprocess; return its JSON summary."""
    request_path = cwd / "request.json"
    request_path.write_text(json.dumps(request))
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(extra_env or {})}
    if request.get("hold"):  # the job's event folder (trainables.events), new per test
        (cwd / "events").mkdir(exist_ok=True)
        env[EVENTS_ENV] = str(cwd / "events")
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

    from tuning.spec import parse_spec
    from tuning.job.lifecycle import run_job

    request = json.loads(open(request_path).read())
    spec = parse_spec(request["spec"], source=request_path)
    cluster = Cluster(initialize_head=True, head_node_args={
        "include_dashboard": False, **request.get("head", {"num_cpus": 0})})
    try:
        workers = [cluster.add_node(**node) for node in request["workers"]]
        cluster.wait_for_nodes()
        removed: dict[str, str] = {}
        held_at_once: dict[str, str] = {}
        if request.get("hold"):
            _hold_trials(request["hold"])
            threading.Thread(target=_act_on_holds, daemon=True,
                             args=(cluster, workers, request, held_at_once, removed)).start()
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
            "held_at_once": held_at_once,
        }
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps(summary))
    return 0


def _hold_trials(hold: dict) -> None:
    """Hold every trial at ``hold["when"]`` (trainables.events), before the job starts."""
    from trainables.events import events_dir

    gate = events_dir() / "hold-trial.round.json"
    gate.write_text(json.dumps({"pass": 0, "when": hold["when"]}))


def _act_on_holds(cluster: Any, workers: list, request: dict, held_at_once: dict,
                  removed: dict) -> None:
    """Once ``release_at`` trials are held: optionally kill the node of one, then release.

    Held trials cannot finish, so what the test needs at once (several trials
    running together, a node dying under a running trial) is certain, not a race.
    """
    import time

    from trainables.events import events_dir, read_events

    hold, folder = request["hold"], events_dir()
    deadline = time.monotonic() + 300  # bounds a hang only
    while time.monotonic() < deadline:
        now = {e["key"]: e for e in read_events(folder) if e["event"] == "trial.round.held"}
        if len(now) >= hold["release_at"]:
            held_at_once.update({key: e.get("node") for key, e in now.items()})
            break
        time.sleep(0.1)
    if hold.get("remove_node_of_held") and held_at_once:
        by_id = {node.node_id: node for node in workers}
        trial_id, node_id = next((t, n) for t, n in held_at_once.items() if n in by_id)
        cluster.remove_node(by_id[node_id], allow_graceful=False)  # no drain: a crash
        removed.update(node_id=node_id, trial_id=trial_id)
        # Release only once the held trial's process is gone, so it cannot train on.
        while _alive(now[trial_id]["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
    (folder / "hold-trial.round.json").unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
