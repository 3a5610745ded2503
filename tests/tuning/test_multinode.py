"""A job on a real multi-node Ray cluster (head + 2 workers on this machine)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cluster_job import child_runs, run_on_cluster
from conftest import new_store, record_fault
from trainables.data import make_synthetic
from tuning.job.state import read_job_state


@pytest.mark.slow
def test_trials_spread_over_worker_nodes_and_all_results_reach_mlflow(tmp_path):
    # The data is read by each worker node from a URI (data.ship: path), and Tune's
    # storage is a URI too: both must pass through unresolved.
    data_file = tmp_path / "transactions.parquet"
    make_synthetic(rows=10_000, fraud_rate=0.02, seed=3).to_parquet(data_file)
    storage = tmp_path / "shared"
    uri = new_store(tmp_path)
    spec = {
        "name": "multinode",
        "data": {"path": f"file://{data_file}", "ship": "path", "min_positives": 5},
        "search_space": {"eta": {"type": "loguniform", "low": 0.05, "high": 0.3},
                         "max_depth": 6},
        "search": {"algorithm": "random", "seed": 0},
        "scheduler": {"type": "fifo"},
        "training": {"num_boost_round": 200, "report_every": 100},
        "evaluation": {"cv": 1},  # CV is not this test's subject
        "budget": {"num_samples": 4, "max_concurrent": 4},
        "resources": {"cpu": 1},
        "tracking": {"tracking_uri": uri, "log_model": False},
        "storage": {"path": f"file://{storage}"},
    }
    # Head without CPUs, workers with one each: two trials at a time, one per worker.
    # Trials are held at round 150 until two are held at once, so the second worker
    # gets a trial however fast the first one's reused actor could have run them all.
    summary = run_on_cluster({"spec": spec, "head": {"num_cpus": 0},
                              "workers": [{"num_cpus": 1}, {"num_cpus": 1}],
                              "hold": {"when": {"round": 150}, "release_at": 2}}, tmp_path)
    assert set(summary["held_at_once"].values()) == set(summary["worker_node_ids"])

    assert summary["unlogged_records"] == 0
    assert [t["status"] for t in summary["trials"]] == ["FINISHED"] * 4
    runs = child_runs(uri, summary)
    assert len(runs) == 4
    per_node = Counter(run.data.tags["ray.node_id"] for run in runs)
    # Both workers, never the 0-CPU head.
    assert set(per_node) == set(summary["worker_node_ids"]), per_node
    client = MlflowClient(uri)
    rounds = {t["trial_id"]: t["rounds"] for t in summary["trials"]}
    for run in runs:
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "val_aucpr")
        assert sorted(m.step for m in history) == [100, 200]
        assert rounds[run.data.tags["ray.trial_id"]] == 200

    # Tune wrote the experiment under the storage URI; the resume file stayed local.
    job = Path(summary["experiment_dir"])
    assert job.parent == tmp_path / "tuning_runs"
    state = read_job_state(job)
    assert state["tune_path"] == f"file://{storage}/{job.name}"
    assert list((storage / job.name).glob("experiment_state*.json"))


@pytest.mark.slow
def test_lost_node_trials_resume_elsewhere_logged_once(tmp_path):
    """A worker node dies mid-job: its trials move to the other node, from checkpoints."""
    uri = new_store(tmp_path)
    spec = {
        "name": "lostnode",
        "data": {"rows": 10_000, "fraud_rate": 0.02, "seed": 6, "min_positives": 5},
        "search_space": {"eta": {"type": "loguniform", "low": 0.05, "high": 0.3},
                         "max_depth": 6},
        "search": {"algorithm": "random", "seed": 0},
        "scheduler": {"type": "fifo"},
        "training": {"num_boost_round": 400, "report_every": 50, "checkpoint_every": 1},
        "evaluation": {"cv": 1},  # CV is not this test's subject
        "budget": {"num_samples": 4, "max_concurrent": 2, "max_failures": 3},
        "resources": {"cpu": 1},
        "tracking": {"tracking_uri": uri, "log_model": False},
        # Checkpoints in a folder every node reaches, so a moved trial finds them.
        "storage": {"path": f"file://{tmp_path / 'shared'}"},
    }
    # Every trial is held at round 125 (its round-100 checkpoint written) until one
    # runs on each worker; then one worker is killed under its held trial.
    summary = run_on_cluster({"spec": spec, "head": {"num_cpus": 0},
                              "workers": [{"num_cpus": 1}, {"num_cpus": 1}],
                              "hold": {"when": {"round": 125}, "release_at": 2,
                                       "remove_node_of_held": True}}, tmp_path, timeout=600)

    assert summary["removed_node_id"], "a worker node was removed mid-job"
    assert summary["held_at_once"][summary["removed_while_running"]] == summary["removed_node_id"]
    survivor = next(n for n in summary["worker_node_ids"] if n != summary["removed_node_id"])
    assert [t["status"] for t in summary["trials"]] == ["FINISHED"] * 4
    assert summary["unlogged_records"] == 0
    runs = child_runs(uri, summary)
    assert len(runs) == 4, "every trial logged once"
    client = MlflowClient(uri)
    for run in runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_aucpr")]
        assert sorted(steps) == [50 * i for i in range(1, 9)], "no step lost or duplicated"
        assert run.info.status == "FINISHED"
    moved = next(r for r in runs if r.data.tags["ray.trial_id"] == summary["removed_while_running"])
    assert int(moved.data.tags["tuning.retries"]) >= 1
    assert moved.data.tags["ray.node_id"] == survivor, "it finished on the surviving node"
    assert moved.data.tags.get("tuning.restored_from_round") == "100", \
        "it resumed from its round-100 checkpoint, not from scratch"
    record_fault("worker node removed mid-job (3-node cluster)", trials=4, child_runs=len(runs),
                 points=sum(len(client.get_metric_history(r.info.run_id, "val_aucpr"))
                            for r in runs), duplicated=0,
                 event="2 trials held at trial.round=125, then a node killed",
                 outcome=f"trial moved to the surviving node, resumed from round "
                         f"{moved.data.tags.get('tuning.restored_from_round')}")
