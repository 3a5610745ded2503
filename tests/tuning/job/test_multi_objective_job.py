"""A tiny constrained multi-objective job: the Pareto set on the parent run and its child
runs, ``tuning best --max-model-size`` picking from it, infeasible trials tagged and never best."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tuning.cli import main
from tuning.job.lifecycle import run_job
from tuning.spec import parse_spec
from tuning.tracking.pareto import PARETO_ARTIFACT, dominates
from tuning.tracking.tags import INFEASIBLE_TAG, PARENT_TAG, PARETO_TAG

from conftest import new_store

pytestmark = pytest.mark.slow

KEYS = ("val_recall_at_fpr_best", "val_model_size_at_best")
MODES = ("max", "min")


SPEC = {
    "name": "multi",
    "data": {"source": "synthetic", "rows": 4000, "fraud_rate": 0.04, "seed": 2},
    # The baseline trial (depth 5, eta 0.3) grows ~330 nodes by its best round: infeasible.
    "objective": {"metrics": ["recall_at_fpr", "model_size"], "max_fpr": 0.02,
                  "constraints": [{"metric": "val_model_size", "max": 150}]},
    "search_space": {"eta": {"type": "loguniform", "low": 0.05, "high": 0.5},
                     "max_depth": {"type": "randint", "low": 1, "high": 6}},
    "search": {"algorithm": "nsga2", "seed": 0},
    # FIFO: every trial runs its 20 rounds, so each one's best round, and whether the
    # baseline is infeasible, do not hang on which trial reached a rung first (ASHA's
    # pruned trials are told to the sampler as pruned: tests/tuning/search/test_multi_objective.py).
    "scheduler": {"type": "fifo"},
    "training": {"num_boost_round": 20, "report_every": 5},
    "evaluation": {"cv": 1, "bootstrap": 20},
    "budget": {"num_samples": 6, "max_concurrent": 2},
}


@pytest.fixture(scope="module")
def job(ray_session, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multi")
    spec = parse_spec({**SPEC, "tracking": {"tracking_uri": new_store(tmp),
                                            "log_model": False},
                       "storage": {"path": str(tmp / "runs")}})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)  # a SQLite store keeps artifacts under ./mlruns
        result = run_job(spec, progress=False)
    client = MlflowClient(result.tracking_uri)
    children = client.search_runs([result.experiment_id],
                                  f"tags.`{PARENT_TAG}` = '{result.parent_run_id}'")
    return result, client, children, tmp


def test_pareto_artifact_and_tags_are_the_non_dominated_trials(job):
    result, client, children, tmp = job
    assert len(children) == 6
    path = client.download_artifacts(result.parent_run_id, PARETO_ARTIFACT, str(tmp))
    record = json.loads(open(path).read())
    members = {m["trial_id"] for m in record["members"]}
    tagged = {c.data.tags["ray.trial_id"] for c in children if c.data.tags.get(PARETO_TAG) == "true"}
    assert tagged and tagged == members
    assert all(c.data.tags.get(PARETO_TAG) in ("true", "false") for c in children)
    # Objectives at each trial's best round, as the child runs hold them; the infeasible
    # take no part.
    infeasible = [c for c in children if c.data.metrics["val_constraint_violation"] > 0]
    assert infeasible
    for c in infeasible:
        assert c.data.metrics["val_model_size_at_best"] > 150
        assert c.data.tags[INFEASIBLE_TAG] == "true" and c.data.tags[PARETO_TAG] == "false"
    feasible = [c for c in children if c not in infeasible]
    assert all(INFEASIBLE_TAG not in c.data.tags for c in feasible)
    points = {c.data.tags["ray.trial_id"]: [c.data.metrics[k] for k in KEYS] for c in feasible}
    for trial_id in members:
        assert not any(dominates(q, points[trial_id], MODES) for q in points.values())
    for trial_id in set(points) - members:  # and each one left out is beaten
        assert any(dominates(q, points[trial_id], MODES) for q in points.values())
    # The refit is the feasible Pareto member best on the first metric.
    assert result.best.trial_id in members
    assert result.best.best_value == max(p[0] for p in points.values())


def test_best_with_max_model_size_returns_a_pareto_member(job, capsys):
    result, _, children, _ = job
    sizes = sorted(c.data.metrics["val_model_size_at_best"] for c in children
                   if c.data.tags.get(PARETO_TAG) == "true")
    limit = sizes[0]
    code = main(["best", result.name, "--tracking-uri", result.tracking_uri,
                 "--max-model-size", str(limit), "--json"])
    rec = json.loads(capsys.readouterr().out)
    assert code == 0
    chosen = next(c for c in children if c.info.run_id == rec["child_run_id"])
    assert chosen.data.tags[PARETO_TAG] == "true"
    assert chosen.data.metrics["val_model_size_at_best"] <= limit
    assert rec["validation"]["val_model_size_at_best"] <= limit
    code = main(["best", result.name, "--tracking-uri", result.tracking_uri,
                 "--max-model-size", str(limit - 1)])
    assert code != 0 and "no Pareto member is that small" in capsys.readouterr().err


def test_report_draws_the_pareto_set(job):
    from tuning.report.build import build_report

    result, _, children, tmp = job
    report = build_report(result.tracking_uri, result.parent_run_id, out_dir=tmp / "report",
                          log=False)
    assert "objectives_pareto" not in report.skipped  # (pr_roc is: the job logs no model)
    assert (tmp / "report" / "objectives_pareto.png").exists()
    rows = (tmp / "report" / "objectives_pareto.csv").read_text().splitlines()
    members = sum(c.data.tags.get(PARETO_TAG) == "true" for c in children)
    assert len(rows) == 1 + members
    assert "Objectives: Pareto set" in report.html.read_text()


def test_sync_rebuilds_the_pareto_tags_and_artifact(job, capsys):
    # What a store that was down at the job's end lacks: no pareto.json, stale tags.
    result, client, children, tmp = job
    before = {c.info.run_id: c.data.tags[PARETO_TAG] for c in children}
    for c in children:
        client.set_tag(c.info.run_id, PARETO_TAG, "stale")
    artifacts = client.get_run(result.parent_run_id).info.artifact_uri.removeprefix("file://")
    (Path(artifacts) / PARETO_ARTIFACT).unlink()

    assert main(["sync", result.experiment_dir, "--tracking-uri", result.tracking_uri]) == 0
    after = {r.info.run_id: r.data.tags[PARETO_TAG] for r in client.search_runs(
        [result.experiment_id], f"tags.`{PARENT_TAG}` = '{result.parent_run_id}'")}
    assert after == before
    record = json.loads((Path(artifacts) / PARETO_ARTIFACT).read_text())
    assert {m["trial_id"] for m in record["members"]} == {
        c.data.tags["ray.trial_id"] for c in children if before[c.info.run_id] == "true"}
