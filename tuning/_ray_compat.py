"""The private Ray Tune attributes this project reads, in one place.

Checked against ray 2.60. Each function says which private name it reads and why
no public API gives the same; when Ray changes one, only this module changes.
"""

from __future__ import annotations

from typing import Any


def run_config(tuner: Any) -> Any:
    """The ``RunConfig`` a ``Tuner`` was built (or restored) with.

    ``Tuner`` has no public accessor; after ``Tuner.restore`` the run config (with
    our callbacks and stopper, unpickled) lives on ``tuner._local_tuner``.
    """
    local = getattr(tuner, "_local_tuner", None)
    return None if local is None else local.get_run_config()


def grid_trials(results: Any) -> list[Any]:
    """Tune's ``Trial`` objects behind a ``ResultGrid``, also trials that never reported.

    A ``ResultGrid`` only lists results; the trials (with their status and ids) are
    on the private ``_experiment_analysis``. An object of ours that combines grids
    (the two-stage job) provides ``tune_trials`` itself.
    """
    own = getattr(results, "tune_trials", None)
    if own is not None:
        return list(own)
    analysis = getattr(results, "_experiment_analysis", None)
    return list(getattr(analysis, "trials", None) or [])


def asha_rungs(scheduler: Any) -> list[list[list[Any]]]:
    """ASHA's rungs as plain lists: per bracket, ``[milestone, {trial_id: value}]`` pairs.

    ``ASHAScheduler`` keeps them in ``_brackets[i]._rungs``; other schedulers have none.
    """
    brackets = getattr(scheduler, "_brackets", None) or []
    return [[[milestone, dict(recorded)] for milestone, recorded in getattr(bracket, "_rungs", [])]
            for bracket in brackets]
