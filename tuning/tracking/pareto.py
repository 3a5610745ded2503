"""The Pareto set of a multi-objective job: the trials no other trial beats on every objective.

Each trial's objectives are its values at its best round (the round where the first metric
was best): ``val_<first>_best`` and ``val_<m>_at_best``, the last values of a trial's reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tuning.tracking.tags import PARETO_TAG, infeasible

__all__ = ["PARETO_ARTIFACT", "PARETO_TAG", "dominates", "pareto_record", "pareto_set"]

#: The artifact on the parent run.
PARETO_ARTIFACT = "pareto.json"


def dominates(a: Sequence[float], b: Sequence[float], modes: Sequence[str]) -> bool:
    """True when ``a`` is at least as good as ``b`` on every objective and better on one."""
    better = False
    for x, y, mode in zip(a, b, modes):
        if mode == "min":
            x, y = -x, -y
        if x < y:
            return False
        better = better or x > y
    return better


def pareto_set(rows: Mapping[str, Mapping[str, Any]], objectives: Mapping[str, str]) -> list[str]:
    """Ids of the non-dominated rows.

    Args:
        rows: id -> values (a trial's last result); a row missing an objective, or with a nan
            or non-numeric one, takes no part.
        objectives: result key -> ``"max"`` or ``"min"``, in the job's order.

    Returns:
        The ids of the rows no other row dominates, in the order of ``rows``. Rows with
        equal values are all kept.
    """
    keys, modes = list(objectives), list(objectives.values())
    points = {}
    for rid, row in rows.items():
        values = [row.get(k) for k in keys]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)
               for v in values):
            points[rid] = [float(v) for v in values]
    return [rid for rid, p in points.items()
            if not any(dominates(q, p, modes) for other, q in points.items() if other != rid)]


def pareto_record(rows: Mapping[str, Mapping[str, Any]], objectives: Mapping[str, str],
                  run_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``pareto.json`` of a job: its objectives and each member's values at its best round."""
    members = pareto_set(rows, objectives)
    run_ids = run_ids or {}
    return {
        "objectives": [{"key": k, "mode": m} for k, m in objectives.items()],
        "members": [{"trial_id": rid, "child_run_id": run_ids.get(rid),
                     "best_round": rows[rid].get("best_round"),
                     "stopped_early": not rows[rid].get("training_done", False),
                     **{k: float(rows[rid][k]) for k in objectives}} for rid in members],
    }


def pareto_tags(rows: Mapping[str, Mapping[str, Any]], objectives: Mapping[str, str],
                run_ids: Mapping[str, str] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """``pareto.json`` over the feasible ``rows`` and the ``tuning.pareto`` tag of every row.

    ``rows``: each trial (not failed) -> its last result, which holds every objective at
    the trial's best round. Infeasible trials are tagged false and never members.
    """
    feasible = {k: v for k, v in rows.items() if not infeasible(v)}
    record = pareto_record(feasible, objectives, run_ids)
    members = {m["trial_id"] for m in record["members"]}
    return record, {rid: "true" if rid in members else "false" for rid in rows}
