"""tuning.report: the report's files, their content, and the copy logged on the parent run."""

from __future__ import annotations

import logging
import math

import pytest

from tuning.report.build import build_report, report_on_finish
from tuning.report.data import best_under_fpr, importance_rows
from tuning.report.plots import best_so_far

PNGS = {"optimization_history", "parallel_coordinates", "importance", "learning_curves",
        "pr_roc", "pareto"}


@pytest.fixture(scope="module")
def finished(finished_tiny_job):
    return finished_tiny_job  # tests/tuning/conftest.py


@pytest.fixture(scope="module")
def report(finished, tmp_path_factory):
    return build_report(finished.tracking_uri, finished.name,
                        out_dir=tmp_path_factory.mktemp("out") / "rep")


def test_best_so_far_follows_the_mode():
    assert best_so_far([0.2, 0.5, 0.3, 0.6], "max") == [0.2, 0.5, 0.5, 0.6]
    assert best_so_far([0.2, 0.5, 0.1], "min") == [0.2, 0.2, 0.1]


def test_best_under_fpr_picks_the_highest_recall_within_budget():
    points = [{"trial_id": "a", "fpr": 0.001, "recall": 0.5},
              {"trial_id": "b", "fpr": 0.004, "recall": 0.7},
              {"trial_id": "c", "fpr": 0.005, "recall": 0.6},  # dominated by b
              {"trial_id": "d", "fpr": 0.02, "recall": 0.9},
              {"trial_id": "e", "fpr": math.nan, "recall": 1.0}]  # no operating point
    assert best_under_fpr(points, 0.005)["trial_id"] == "b"
    assert best_under_fpr(points, 0.004)["trial_id"] == "b"  # the bound is inclusive
    assert best_under_fpr(points, 0.0039)["trial_id"] == "a"
    assert best_under_fpr(points, 0.5)["trial_id"] == "d"
    assert best_under_fpr(points, 0.0005) is None


@pytest.mark.slow
def test_report_writes_every_figure_and_a_self_contained_page(report):
    assert report.skipped == {}
    names = {p.name for p in report.files}
    assert {f"{k}.png" for k in PNGS} <= names
    assert {"report.html", "trials.csv", "pareto.csv", "importance.csv"} <= names
    for key in PNGS:
        assert (report.out_dir / f"{key}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = report.html.read_text()
    # plotly.js is inlined once; nothing is fetched from the network.
    assert page.count("class=\"plotly-graph-div\"") == len(PNGS)
    assert "<script src=" not in page and "<link " not in page
    assert len(page) > 1_000_000
    assert "Skipped sections" not in page


@pytest.mark.slow
def test_report_is_logged_on_the_parent_run(report, finished, tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(finished.tracking_uri)
    logged = {a.path for a in client.list_artifacts(finished.parent_run_id, "report")}
    assert {f"report/{p.name}" for p in report.files} == logged
    copy = client.download_artifacts(finished.parent_run_id, "report/pareto.csv", str(tmp_path))
    assert open(copy).read() == (report.out_dir / "pareto.csv").read_text()


@pytest.mark.slow
def test_test_curve_reproduces_the_jobs_test_metrics(report, finished):
    """Rescored from the store (data and logged model read again), the test AP is the job's."""
    from tuning.report.data import rescored_test_curve
    from tuning.tracking.store import load_job

    job = load_job(finished.tracking_uri, finished.parent_run_id)
    curve, threshold = rescored_test_curve(job)
    assert curve.average_precision() == pytest.approx(finished.test_metrics["aucpr"], abs=1e-6)
    assert threshold == pytest.approx(finished.best.threshold)
    assert curve.confusion_at(threshold).recall == pytest.approx(finished.test_metrics["recall"])


@pytest.mark.slow
def test_the_report_draws_the_test_curve_from_the_verdicts_logged_scores(finished, monkeypatch):
    """No second read of the data nor scoring: the verdict's labels and scores, which are
    the rescored curve's exactly."""
    import numpy as np

    from tuning.report import data as report_data
    from tuning.tracking.store import load_job

    job = load_job(finished.tracking_uri, finished.parent_run_id)
    rescored, _ = report_data.rescored_test_curve(job)
    labels, scores = report_data.logged_test_scores(job)
    assert labels.size == rescored.n and set(np.unique(labels)) == {0, 1}

    def no_rescoring(job):
        raise AssertionError("the report scored the test split again")

    monkeypatch.setattr(report_data, "rescored_test_curve", no_rescoring)
    curve, threshold = report_data.test_curve(job)
    assert threshold == pytest.approx(finished.best.threshold)
    assert curve.average_precision() == pytest.approx(rescored.average_precision(), abs=1e-12)
    assert curve.confusion_at(threshold) == rescored.confusion_at(threshold)


@pytest.mark.slow
def test_importance_covers_the_search_space(finished):
    from tuning.tracking.store import load_job

    rows = importance_rows(load_job(finished.tracking_uri, finished.parent_run_id))
    assert {name for name, _ in rows} == set(finished.trials[0].config)
    assert sum(v for _, v in rows) == pytest.approx(1.0) or all(v == 0 for _, v in rows)


@pytest.mark.slow
def test_report_on_finish_never_raises(finished, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="tuning.report.build"):
        assert report_on_finish(finished.tracking_uri, "f" * 32, tmp_path / "r") is None
    assert "job report failed" in caplog.text
