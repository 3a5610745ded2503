"""The sections of a job report: each builder turns a job into figures, a table and a note."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from trainables.metrics import pareto_front
from tuning.report import plots
from tuning.report.data import importance_rows, operating_points, test_curve
from tuning.tracking.store import Job, model_uri


@dataclass
class Section:
    key: str  # file stem of the PNG
    title: str
    figures: tuple[Any, Any]  # (matplotlib Figure, plotly Figure)
    table: list[dict] = field(default_factory=list)
    note: str = ""


def _history(job: Job) -> Section:
    return Section("optimization_history", "Optimisation history",
                   plots.history(job.trials, job.metric, job.mode))


def _parallel(job: Job) -> Section:
    return Section("parallel_coordinates", "Hyperparameters (parallel coordinates)",
                   plots.parallel(job.trials, job.metric))


def _importance(job: Job) -> Section:
    rows = importance_rows(job)
    return Section("importance", "Hyperparameter importance",
                   plots.importance(rows, job.metric),
                   table=[{"param": n, "importance": round(v, 4)} for n, v in rows],
                   note="Random-forest surrogate (scikit-learn) of the best objective value "
                        "per trial against its hyperparameters; importances sum to 1.")


def _learning(job: Job) -> Section:
    stopped = sum(t.stopped_early for t in job.trials)
    return Section("learning_curves", "Learning curves",
                   plots.learning_curves(job.trials, job.metric),
                   note=f"{stopped} of {len(job.trials)} trials were stopped early by the "
                        "scheduler (red X at their last report).")


def _curves(job: Job) -> Section:
    if job.best is None:
        raise ValueError("the job has no scored trial")
    curve, threshold = test_curve(job)
    conf = curve.confusion_at(threshold) if threshold is not None else None
    table = [] if conf is None else [{"threshold": threshold, **conf.as_dict()}]
    return Section("pr_roc", "Best model on the test split",
                   plots.pr_roc(curve, threshold, "Best model (refit) on the test split"),
                   table=table, note=f"Model {model_uri(job)}; the threshold was chosen on "
                                     "the validation split.")


def _pareto(job: Job) -> Section:
    points = operating_points(job)
    if not points:
        raise ValueError("no finished trial reported val_recall and val_fpr")
    front = pareto_front(points)
    table = [{k: p[k] for k in ("trial_id", "status", "recall", "fpr", "precision",
                                "threshold", "objective", "round")} for p in front]
    return Section("pareto", "Recall vs FPR: Pareto front", plots.pareto(points, front),
                   table=table, note="Validation recall and FPR of each finished trial at its "
                                     "own threshold, at its best round. `tuning best NAME "
                                     "--max-fpr X` picks from this front.")


SECTIONS: dict[str, Callable[[Job], Section]] = {
    "optimization_history": _history, "parallel_coordinates": _parallel,
    "importance": _importance, "learning_curves": _learning, "pr_roc": _curves,
    "pareto": _pareto,
}
