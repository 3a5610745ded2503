"""The sections of a job report: each builder turns a job into figures, a table and a note."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from trainables.metrics import pareto_front
from tuning.report import plots
from tuning.report.data import importance_rows, operating_points, test_curve
from tuning.tracking.store import Job, load_spec_text, model_uri
from tuning.tracking.tags import INFEASIBLE_TAG, PARETO_TAG


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
                   table=table, note=f"The refit model's scores of the test rows (the model is "
                                     f"{model_uri(job)} when the job logs it); the threshold was "
                                     "chosen on the validation split.")


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


def _objectives(job: Job) -> Section | None:
    """A multi-objective job's first two objectives and its Pareto set (None: not one)."""
    import yaml

    if not any(PARETO_TAG in t.tags for t in job.trials):
        return None
    metrics = (yaml.safe_load(load_spec_text(job)) or {}).get("objective", {}).get("metrics") or []
    if len(metrics) < 2:
        raise ValueError("the logged spec names no objective.metrics")
    x, y = f"val_{metrics[0]}_best", f"val_{metrics[1]}_at_best"
    rows = [{"trial_id": t.trial_id, x: t.metrics[x], y: t.metrics[y],
             "member": t.tags.get(PARETO_TAG) == "true",
             "infeasible": t.tags.get(INFEASIBLE_TAG) == "true", "round": t.best_round}
            for t in job.trials if x in t.metrics and y in t.metrics]
    table = [r for r in rows if r["member"]]
    return Section("objectives_pareto", "Objectives: Pareto set", plots.objectives_pareto(rows, x, y),
                   table=table, note="Each trial's objectives at its best round (the round where "
                                     "the first was best); red: the Pareto set on the parent run "
                                     "(pareto.json). `tuning best NAME --max-model-size N` picks "
                                     "from it.")


SECTIONS: dict[str, Callable[[Job], Section | None]] = {
    "optimization_history": _history, "parallel_coordinates": _parallel,
    "importance": _importance, "learning_curves": _learning, "pr_roc": _curves,
    "pareto": _pareto, "objectives_pareto": _objectives,
}
