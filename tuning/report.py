"""A job report from the tracking store: PNGs, one self-contained HTML page, logged
on the parent run under ``report/``.

Every section is built from what MLflow holds (plus the logged spec and model for
the test-set curves), so ``tuning report`` works on any finished job. A section
that cannot be built (e.g. a data file that moved) is listed as skipped with the
reason; the rest of the report is still written.
"""

from __future__ import annotations

import csv
import html
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tuning.store import Job, load_job, model_uri

logger = logging.getLogger(__name__)

ARTIFACT_DIR = "report"
HTML_NAME = "report.html"
# Statuses whose reports are complete: a stopped-early trial is a finished, shorter model.
DONE = ("FINISHED", "KILLED")


@dataclass
class Section:
    key: str  # file stem of the PNG
    title: str
    figures: tuple[Any, Any]  # (matplotlib Figure, plotly Figure)
    table: list[dict] = field(default_factory=list)
    note: str = ""


@dataclass
class ReportResult:
    out_dir: Path
    html: Path
    files: list[Path]
    skipped: dict[str, str]
    logged: bool


# ------------------------------------------------------------ data pieces
def operating_points(job: Job) -> list[dict]:
    """Each done trial's validation recall/FPR at its own threshold, at its best step."""
    out = []
    for t in job.trials:
        if t.status in DONE and "val_recall" in t.point and "val_fpr" in t.point:
            out.append({"trial_id": t.trial_id, "run_id": t.run_id, "status": t.status,
                        "recall": t.point["val_recall"], "fpr": t.point["val_fpr"],
                        "precision": t.point.get("val_precision", math.nan),
                        "threshold": t.point.get("val_threshold", math.nan),
                        "objective": t.best_value, "round": t.best_step})
    return out


def best_under_fpr(points: list[dict], max_fpr: float) -> dict | None:
    """The Pareto-front point with the highest recall whose FPR is at most ``max_fpr``."""
    from trainables.metrics import pareto_front

    eligible = [p for p in pareto_front(points) if p["fpr"] <= max_fpr]
    return max(eligible, key=lambda p: (p["recall"], -p["fpr"])) if eligible else None


def importance_rows(job: Job) -> list[tuple[str, float]]:
    """Hyperparameter importance from a random-forest surrogate of objective ~ params.

    scikit-learn's impurity importances (normalised to sum to 1), as Optuna's
    fANOVA evaluator does with its own forest; needs at least 3 scored trials.
    """
    from sklearn.ensemble import RandomForestRegressor

    from tuning.report_plots import _encoded

    scored = [t for t in job.trials if t.best_value is not None]
    names = sorted({k for t in scored for k in t.params})
    if len(scored) < 3 or not names:
        raise ValueError(f"needs at least 3 scored trials with params, got {len(scored)}")
    X, _ = _encoded(scored, names)
    y = [t.best_value for t in scored]
    forest = RandomForestRegressor(n_estimators=256, random_state=0).fit(X, y)
    return sorted(zip(names, (float(v) for v in forest.feature_importances_)),
                  key=lambda r: r[1], reverse=True)


def test_curve(job: Job) -> tuple[Any, float | None]:
    """Score the test split with the job's logged model: (ThresholdCurve, threshold)."""
    import xgboost as xgb
    import yaml

    from trainables.metrics import threshold_curve
    from tuning.config import parse_spec
    from tuning.run import load_data
    from tuning.store import load_spec_text

    spec = parse_spec(yaml.safe_load(load_spec_text(job)), source=f"run {job.run_id} spec.yaml")
    data = load_data(spec)
    booster = load_model(job)
    scores = booster.predict(xgb.DMatrix(data.test.X, enable_categorical=True))
    threshold = job.params.get("best.threshold")
    return threshold_curve(data.test.y, scores), (
        float(threshold) if isinstance(threshold, (int, float)) else None)


def load_model(job: Job) -> Any:
    """The refit best booster logged on the parent run."""
    import mlflow.xgboost
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    # runs:/ URIs resolve through the global tracking URI even when one is passed in:
    # point it at the job's store for this call only.
    with _use_tracking_uri(job.tracking_uri):
        return mlflow.xgboost.load_model(model_uri(job))


# --------------------------------------------------------------- sections
def _history(job: Job) -> Section:
    from tuning import report_plots

    return Section("optimization_history", "Optimisation history",
                   report_plots.history(job.trials, job.metric, job.mode))


def _parallel(job: Job) -> Section:
    from tuning import report_plots

    return Section("parallel_coordinates", "Hyperparameters (parallel coordinates)",
                   report_plots.parallel(job.trials, job.metric))


def _importance(job: Job) -> Section:
    from tuning import report_plots

    rows = importance_rows(job)
    return Section("importance", "Hyperparameter importance",
                   report_plots.importance(rows, job.metric),
                   table=[{"param": n, "importance": round(v, 4)} for n, v in rows],
                   note="Random-forest surrogate (scikit-learn) of the best objective value "
                        "per trial against its hyperparameters; importances sum to 1.")


def _learning(job: Job) -> Section:
    from tuning import report_plots

    stopped = sum(t.stopped_early for t in job.trials)
    return Section("learning_curves", "Learning curves",
                   report_plots.learning_curves(job.trials, job.metric),
                   note=f"{stopped} of {len(job.trials)} trials were stopped early by the "
                        "scheduler (red X at their last report).")


def _curves(job: Job) -> Section:
    from tuning import report_plots

    if job.best is None:
        raise ValueError("the job has no scored trial")
    curve, threshold = test_curve(job)
    conf = curve.confusion_at(threshold) if threshold is not None else None
    table = [] if conf is None else [{"threshold": threshold, **conf.as_dict()}]
    return Section("pr_roc", "Best model on the test split",
                   report_plots.pr_roc(curve, threshold, "Best model (refit) on the test split"),
                   table=table, note=f"Model {model_uri(job)}; the threshold was chosen on "
                                     "the validation split.")


def _pareto(job: Job) -> Section:
    from trainables.metrics import pareto_front
    from tuning import report_plots

    points = operating_points(job)
    if not points:
        raise ValueError("no finished trial reported val_recall and val_fpr")
    front = pareto_front(points)
    table = [{k: p[k] for k in ("trial_id", "status", "recall", "fpr", "precision",
                                "threshold", "objective", "round")} for p in front]
    return Section("pareto", "Recall vs FPR: Pareto front", report_plots.pareto(points, front),
                   table=table, note="Validation recall and FPR of each finished trial at its "
                                     "own threshold, at its best round. `tuning best NAME "
                                     "--max-fpr X` picks from this front.")


SECTIONS: dict[str, Callable[[Job], Section]] = {
    "optimization_history": _history, "parallel_coordinates": _parallel,
    "importance": _importance, "learning_curves": _learning, "pr_roc": _curves,
    "pareto": _pareto,
}


# ------------------------------------------------------------------ build
def build_report(tracking_uri: str, name_or_run_id: str, out_dir: str | Path | None = None,
                 log: bool = True, job: Job | None = None) -> ReportResult:
    """Write the report of a job and (by default) log it on the parent run.

    Args:
        tracking_uri: The MLflow store.
        name_or_run_id: Parent run id, job name or experiment name (newest job).
        out_dir: Local folder; default ``reports/<job>-<run id[:8]>``.
        log: Also log the folder as artifacts ``report/`` on the parent run.
        job: An already loaded job (skips the store query).
    """
    from mlflow.tracking import MlflowClient

    from tuning.report_html import render

    job = job or load_job(tracking_uri, name_or_run_id)
    out = Path(out_dir or Path("reports") / f"{job.name}-{job.run_id[:8]}")
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    sections: list[Section] = []
    skipped: dict[str, str] = {}
    for key, builder in SECTIONS.items():
        try:
            section = builder(job)
        except Exception as err:  # noqa: BLE001 - one broken section must not sink the report
            skipped[key] = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            logger.warning("report section %s skipped: %s", key, skipped[key])
            continue
        path = out / f"{key}.png"
        section.figures[0].savefig(path, dpi=110)
        files.append(path)
        if section.table:
            files.append(_write_csv(out / f"{key}.csv", section.table))
        sections.append(section)
    files.append(_write_csv(out / "trials.csv", trials_table(job)))
    page = out / HTML_NAME
    page.write_text(render(job, sections, skipped, trials_table(job)))
    files.append(page)
    if log:
        MlflowClient(tracking_uri).log_artifacts(job.run_id, str(out), ARTIFACT_DIR)
    return ReportResult(out_dir=out, html=page, files=files, skipped=skipped, logged=log)


def trials_table(job: Job) -> list[dict]:
    names = sorted({k for t in job.trials for k in t.params})
    return [{"number": t.number, "trial_id": t.trial_id, "status": t.status,
             job.metric: t.best_value, "best_round": t.best_step, "last_round": t.last_step,
             "threshold": t.point.get("val_threshold"), **{n: t.params.get(n) for n in names},
             "run_id": t.run_id} for t in job.trials]


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["empty"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def report_on_finish(tracking_uri: str, parent_run_id: str,
                     out_dir: str | Path | None = None) -> ReportResult | None:
    """Build and log the report at the end of a job; never raises (logs a warning).

    Returns:
        The report, or None when it failed.
    """
    started = time.monotonic()
    try:
        result = build_report(tracking_uri, parent_run_id, out_dir=out_dir)
    except Exception as err:  # noqa: BLE001 - a report must never fail the job it describes
        logger.warning("job report failed (the job itself is fine; retry with `tuning report "
                       "%s`): %s", parent_run_id, str(err).splitlines()[0] if str(err) else err)
        return None
    logger.info("report written to %s and logged on run %s (%.1fs)", result.html, parent_run_id,
                time.monotonic() - started)
    return result


def escape(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return html.escape("" if value is None else str(value))
