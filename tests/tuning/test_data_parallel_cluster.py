"""The issue #16 Done-when job: data-parallel trials on a 3-node cluster, shards in, ASHA on.

The driver plans the shards and the workers read their rows with Ray Data
(trainables.shards); the refit is a data-parallel run too. Head with 1 CPU (the
trials' coordinators, 0.1 each), two worker nodes with 1 CPU
each: no node holds two of a trial's 1-CPU Ray Train workers, so every trial trains
across two nodes, and one trial runs at a time. The baseline trial
(XGBoost's defaults) goes first, then a deliberately bad point (a tiny learning rate
on stumps) reaches ASHA's first rung below it and is stopped: a decision taken at an
event (the rung), not in a time window.
"""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from cluster_job import child_runs, run_on_cluster
from conftest import new_store
from trainables.data import make_synthetic

BAD = {"eta": 1e-4, "max_depth": 2}


@pytest.mark.slow
def test_data_parallel_trials_on_three_nodes_from_parquet_shards(tmp_path):
    frame = make_synthetic(rows=6000, fraud_rate=0.04, seed=5)
    shards = tmp_path / "shards"
    shards.mkdir()
    for i in range(4):
        frame.iloc[i::4].to_parquet(shards / f"part-{i}.parquet")
    uri = new_store(tmp_path)
    spec = {
        "name": "dp-cluster",
        "data": {"path": str(shards), "min_positives": 5},
        "search_space": {"eta": {"type": "loguniform", "low": 1e-4, "high": 0.4},
                         "max_depth": {"type": "randint", "low": 2, "high": 8}},
        "search": {"algorithm": "random", "seed": 1, "points_to_evaluate": [BAD]},
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        "training": {"num_boost_round": 20, "report_every": 5},
        "evaluation": {"cv": 1},
        "budget": {"num_samples": 4},
        "resources": {"workers": 2, "cpu": 1},
        "tracking": {"tracking_uri": uri},
        "storage": {"path": str(tmp_path / "runs")},
    }
    summary = run_on_cluster({"spec": spec, "head": {"num_cpus": 1},
                              "workers": [{"num_cpus": 1}, {"num_cpus": 1}]}, tmp_path, timeout=900)
    assert summary["unlogged_records"] == 0
    runs = child_runs(uri, summary)
    assert len(runs) == 4 == len(summary["trials"])
    client = MlflowClient(uri)
    status = {t["trial_id"]: t["status"] for t in summary["trials"]}
    for run in runs:
        nodes = run.data.tags["ray.node_id"].split(",")
        # No node holds two 1-CPU workers (the coordinator's 0.1 CPU may sit on any).
        assert len(nodes) == 2 and len(set(nodes)) == 2, nodes
        history = [m.step for m in client.get_metric_history(run.info.run_id, "val_aucpr")]
        assert history and history == sorted(history) and history[0] == 5
        bad = float(run.data.params["eta"]) == pytest.approx(BAD["eta"])
        if bad:
            assert status[run.data.tags["ray.trial_id"]] == "KILLED"
            assert run.data.tags["tuning.stopped_early"] == "true"
            assert max(history) < 20
    assert sum(float(r.data.params["eta"]) == pytest.approx(BAD["eta"]) for r in runs) == 1

    import mlflow
    import xgboost as xgb

    mlflow.set_tracking_uri(uri)
    model = mlflow.xgboost.load_model(f"runs:/{summary['parent_run_id']}/booster")
    from tuning.job.preflight import load_data
    from tuning.spec import parse_spec

    from trainables.shards import split_frame
    from tuning.job.preflight import STREAMED_TAG

    # The driver planned the shards (never read them whole); the test split comes from them.
    assert client.get_run(summary["parent_run_id"]).data.tags[STREAMED_TAG] == "true"
    test_X, test_y = split_frame(load_data(parse_spec(spec)), "test")
    scores = model.predict(xgb.DMatrix(test_X, enable_categorical=True))
    assert scores.shape == (len(test_y),) and np.all((scores >= 0) & (scores <= 1))
