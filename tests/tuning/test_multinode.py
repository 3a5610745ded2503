"""A job on a real multi-node Ray cluster (head + 2 workers on this machine)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cluster_job import child_runs, run_on_cluster
from trainables.data import make_synthetic
from tuning.state import read_job_state


@pytest.mark.slow
def test_trials_spread_over_worker_nodes_and_all_results_reach_mlflow(tmp_path):
    # The data is read by each worker node from a URI (data.ship: path), and Tune's
    # storage is a URI too: both must pass through unresolved.
    data_file = tmp_path / "transactions.parquet"
    make_synthetic(rows=20_000, fraud_rate=0.01, seed=3).to_parquet(data_file)
    storage = tmp_path / "shared"
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    spec = {
        "name": "multinode",
        "data": {"path": f"file://{data_file}", "ship": "path", "min_positives": 5},
        "search_space": {"eta": {"type": "loguniform", "low": 0.05, "high": 0.3},
                         "max_depth": 6},
        "search": {"algorithm": "random", "seed": 0},
        "scheduler": {"type": "fifo"},
        # Trials long enough (~1.5 s: fixed depth, 300 rounds) that the second worker's
        # actor is up before the first worker's reused actor could have run them all.
        "training": {"num_boost_round": 300, "report_every": 100},
        "budget": {"num_samples": 8, "max_concurrent": 4},
        "resources": {"cpu": 1},
        "tracking": {"tracking_uri": uri, "log_model": False},
        "storage": {"path": f"file://{storage}"},
    }
    # Head without CPUs, workers with one each: two trials at a time, one per worker.
    summary = run_on_cluster({"spec": spec, "head": {"num_cpus": 0},
                              "workers": [{"num_cpus": 1}, {"num_cpus": 1}]}, tmp_path)

    assert summary["unlogged_records"] == 0
    assert [t["status"] for t in summary["trials"]] == ["FINISHED"] * 8
    runs = child_runs(uri, summary)
    assert len(runs) == 8
    per_node = Counter(run.data.tags["ray.node_id"] for run in runs)
    # Both workers, never the 0-CPU head.
    assert set(per_node) == set(summary["worker_node_ids"]), per_node
    client = MlflowClient(uri)
    rounds = {t["trial_id"]: t["rounds"] for t in summary["trials"]}
    for run in runs:
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "val_aucpr")
        assert sorted(m.step for m in history) == [100, 200, 300]
        assert rounds[run.data.tags["ray.trial_id"]] == 300

    # Tune wrote the experiment under the storage URI; the resume file stayed local.
    job = Path(summary["experiment_dir"])
    assert job.parent == tmp_path / "tuning_runs"
    state = read_job_state(job)
    assert state["tune_path"] == f"file://{storage}/{job.name}"
    assert list((storage / job.name).glob("experiment_state*.json"))
