"""Which trial ``tuning best`` and ``tuning export`` show: the job's best, or one picked by a
limit (``--max-fpr``, ``--max-model-size``, ``--max-scoring-ms``) without re-running.

Everything is read from the job's child runs (metrics and tags), so it works on any job.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from tuning.errors import JobError
from tuning.report.data import best_under_fpr, operating_points
from tuning.tracking.store import load_spec_text
from tuning.tracking.tags import INFEASIBLE_TAG, PARETO_TAG

__all__ = ["LIMITS", "MODEL_SIZE_KEY", "SCORING_MS_KEY", "Choice", "Limit", "choose", "pareto_pick", "pick"]

#: The model size and scoring time of each trial at its best round.
MODEL_SIZE_KEY = "val_model_size_at_best"
SCORING_MS_KEY = "val_scoring_ms_at_best"


@dataclass(frozen=True)
class Limit:
    """An upper bound on a model metric a trial is picked under.

    Attributes:
        option: The command-line flag.
        metric: The registry name (``trainables.objectives.MODEL_METRICS``).
        key: The child-run metric: its value at the trial's best round.
        unit: How the value reads in messages.
        fit: What "within the limit" reads as (``that small``).
        least: The word for the lowest value (``smallest``).
        pareto_only: Only a multi-objective job with this metric among its objectives reports
            it (model size); else every trial reports it, and a job without it among its
            objectives is picked from all its trials (scoring time).
    """

    option: str
    metric: str
    key: str
    unit: str
    fit: str
    least: str
    pareto_only: bool


#: argparse dest -> limit.
LIMITS: dict[str, Limit] = {
    "max_model_size": Limit("--max-model-size", "model_size", MODEL_SIZE_KEY, "tree nodes",
                            "that small", "smallest", True),
    "max_scoring_ms": Limit("--max-scoring-ms", "scoring_ms", SCORING_MS_KEY, "ms per 1,000 rows",
                            "that fast", "fastest", False),
}


@dataclass(frozen=True)
class Choice:
    """The chosen trial, its validation figures at its best round and how it was chosen."""

    trial: Any
    figures: dict[str, float]
    selected_by: str


def pick(job: Any, max_fpr: float | None = None, max_model_size: float | None = None,
         max_scoring_ms: float | None = None,
         objectives: Callable[[Any], Sequence[str]] | None = None) -> Choice:
    """The trial to show or export.

    Args:
        job: A :class:`tuning.tracking.store.Job`.
        max_fpr: Pick the best validation recall with an FPR at most this.
        max_model_size: Pick the Pareto member best on the first metric with at most this many
            tree nodes.
        max_scoring_ms: Pick the trial best on the first metric that scores 1,000 rows in at
            most this many milliseconds: from the Pareto set when ``scoring_ms`` is one of the
            job's objectives, else from every trial (not failed, not infeasible). With
            ``max_model_size`` too, the Pareto member within both.
        objectives: ``job -> objective.metrics`` (default: read from the job's logged spec,
            only when the job has a Pareto set and ``max_scoring_ms`` is given).

    Raises:
        JobError: A one-line reason when nothing fits or the options do not go together.
    """
    limits = {LIMITS[name]: value for name, value in
              (("max_model_size", max_model_size), ("max_scoring_ms", max_scoring_ms)) if value is not None}
    if limits:
        if max_fpr is not None:
            raise JobError(f"give --max-fpr or {' / '.join(l.option for l in limits)}, not both")
        trial, where = _pick_within(job, limits, objectives or _spec_objectives)
        within = " and ".join(f"<= {v:g} {l.unit}" for l, v in limits.items())
        return Choice(trial, {job.metric: trial.best_value,
                              **{l.key: trial.metrics[l.key] for l in limits}, **trial.point},
                      f"best {job.metric} ({job.mode}) {where} with {within}")
    if max_fpr is None:
        trial = job.best
        if trial is None:
            raise JobError(f"job {job.name} ({job.run_id}) has no trial with a "
                           f"{job.metric} value")
        return Choice(trial, {job.metric: trial.best_value, **trial.point}, f"{job.metric} ({job.mode})")
    if not 0 < max_fpr < 1:
        raise JobError(f"--max-fpr must be between 0 and 1, got {max_fpr}")
    points = operating_points(job)
    chosen = best_under_fpr(points, max_fpr)
    if chosen is None:
        lowest = min((p["fpr"] for p in points), default=math.nan)
        raise JobError(f"--max-fpr {max_fpr}: no finished trial has a validation FPR that low "
                       f"(lowest: {lowest:.4g}); see the Pareto front in `tuning report`")
    trial = next(t for t in job.trials if t.trial_id == chosen["trial_id"])
    return Choice(trial, {job.metric: trial.best_value, **trial.point},
                  f"best validation recall with FPR <= {max_fpr}")


def choose(job: Any, max_fpr: float | None, max_model_size: float | None = None,
           max_scoring_ms: float | None = None,
           objectives: Callable[[Any], Sequence[str]] | None = None) -> tuple[Any, dict[str, float]]:
    """``(trial, figures)`` of :func:`pick`."""
    chosen = pick(job, max_fpr, max_model_size, max_scoring_ms, objectives)
    return chosen.trial, chosen.figures


def pareto_pick(job: Any, max_model_size: float) -> Any:
    """The Pareto member (tag ``tuning.pareto=true``) best on the job's first metric whose
    model size at its best round is at most ``max_model_size`` tree nodes."""
    return pick(job, max_model_size=max_model_size).trial


def _pick_within(job: Any, limits: dict[Limit, float],
                 objectives: Callable[[Any], Sequence[str]]) -> tuple[Any, str]:
    """The trial best on the first metric within every limit, and where it was picked from."""
    for limit, value in limits.items():
        if math.isnan(value) or value <= 0:
            raise JobError(f"{limit.option} must be a number > 0, got {value:g}")
    members = [t for t in job.trials if t.tags.get(PARETO_TAG) == "true"]
    needs_pareto = [l for l in limits if l.pareto_only]
    if needs_pareto and not members:
        raise JobError(f"job {job.name} ({job.run_id}) has no Pareto set: {needs_pareto[0].option} "
                       f"needs a multi-objective job (objective.metrics with {needs_pareto[0].metric})")
    if needs_pareto or (members and any(l.metric in objectives(job) for l in limits)):
        pool, where = members, "Pareto member"
    else:
        pool = [t for t in job.trials if t.status != "FAILED" and t.tags.get(INFEASIBLE_TAG) != "true"]
        where = "trial"
    for limit, value in limits.items():
        measured = [t for t in pool if not math.isnan(t.metrics.get(limit.key, math.nan))]
        if not measured:
            why = (f"its objectives do not include {limit.metric}" if limit.pareto_only
                   else f"no {where} reports {limit.key}: a job from before it was measured")
            raise JobError(f"job {job.name}: {why}")
        fits = [t for t in measured if t.metrics[limit.key] <= value]
        if not fits:
            least = min(t.metrics[limit.key] for t in measured)
            raise JobError(f"{limit.option} {value:g}: no {where} is {limit.fit} "
                           f"({limit.least}: {least:.4g} {limit.unit})")
        pool = fits
    scored = [t for t in pool if t.best_value is not None]
    if not scored:
        raise JobError(f"job {job.name}: no {where} within the limits has a {job.metric} value")
    best = (max if job.mode == "max" else min)(scored, key=lambda t: t.best_value)
    return best, "in the Pareto set" if where == "Pareto member" else "of all trials"


def _spec_objectives(job: Any) -> list[str]:
    """``objective.metrics`` of the job's logged spec (empty for a single-objective job)."""
    spec = yaml.safe_load(load_spec_text(job)) or {}
    return [str(m).removeprefix("val_") for m in ((spec.get("objective") or {}).get("metrics") or [])]
