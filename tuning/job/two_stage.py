"""Run a two-stage job (``search.algorithm: two_stage``): stage 1 ``search.stage1_with``
(random, or qmc) over the full space, stage 2 ``search.refine_with`` on the ranges
:mod:`tuning.search.two_stage` narrows, warm-started with every stage-1 result.

Both stages run under the job's one MLflow parent run and in the job's one folder;
each child run carries tag ``tuning.stage`` (1 or 2), and the narrowed ranges are
logged on the parent (params ``stage2.<name>`` and artifact ``two_stage.json``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Param
from mlflow.tracking import MlflowClient

from tuning._ray_compat import grid_trials
from tuning.job.tuner import build_tuner
from tuning.schedule.stoppers import build_stopper
from tuning.search.codec import clip
from tuning.search.registry import stage1_samples
from tuning.search.two_stage import narrow_space, observations_of, stage2_space
from tuning.search.warm_start import Observation
from tuning.spec import Spec
from tuning.tracking.callback import MlflowTrackingCallback
from tuning.tracking.tags import STAGE_TAG

logger = logging.getLogger(__name__)

REPORT_FILE = "two_stage.json"


class CombinedResults:
    """Both stages' result grids read as one (what ``tuning.job.refit.summarise`` iterates)."""

    def __init__(self, grids: list[Any]) -> None:
        self._results = [r for grid in grids for r in grid]
        # Tune's trials of both stages (read by tuning._ray_compat.grid_trials).
        self.tune_trials = [t for grid in grids for t in grid_trials(grid)]

    def __iter__(self) -> Any:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def __getitem__(self, i: int) -> Any:
        return self._results[i]


class TwoStageTuner:
    """Runs stage 1 and stage 2 as two Ray Tune runs; ``fit`` returns both stages' results."""

    def __init__(self, spec: Spec, data: Any, experiment_dir: Path, callbacks: list) -> None:
        self.spec = spec
        self.data = data
        self.experiment_dir = experiment_dir
        self.callbacks = callbacks
        self.stopper = build_stopper(spec)  # shared: a target reached in stage 1 ends the job
        self.n1 = stage1_samples(spec)
        self.ranges: dict[str, dict[str, Any]] = {}

    def fit(self) -> CombinedResults:
        started = time.monotonic()
        stage1 = self.spec.with_overrides(**{"search.algorithm": self.spec.search.stage1_with,
                                             "budget.num_samples": self.n1})
        self._tag_stage(1)
        grids = [build_tuner(stage1, self.data, self.experiment_dir, self.callbacks,
                             stopper=self.stopper).fit()]
        observations = observations_of(grids[0], self.spec)
        remaining = None
        if self.spec.budget.time_budget_s:
            remaining = self.spec.budget.time_budget_s - (time.monotonic() - started)
        if self._stopped(remaining) or not observations:
            return CombinedResults(grids)
        stage2 = self._stage2_spec(observations, remaining)
        self._log_ranges(stage2)
        self._tag_stage(2)
        # Stage-2 replays every stage-1 result; points outside the box sit on its edge.
        fitted = [Observation({n: clip(stage2.search_space[n], v) for n, v in o.config.items()},
                              o.value) for o in observations]
        grids.append(build_tuner(stage2, self.data, self.experiment_dir, self.callbacks,
                                 observations=fitted, stopper=self.stopper).fit())
        return CombinedResults(grids)

    def _stopped(self, remaining: float | None) -> bool:
        if self.stopper is not None and self.stopper.reason:
            logger.info("two-stage: %s after stage 1; stage 2 not run", self.stopper.reason)
            return True
        if remaining is not None and remaining <= 0:
            logger.info("two-stage: time budget spent in stage 1; stage 2 not run")
            return True
        return False

    def _stage2_spec(self, observations: list[Observation], remaining: float | None) -> Spec:
        search = self.spec.search
        self.ranges = narrow_space(self.spec.search_space, observations,
                                   self.spec.objective.resolved_mode, search.top_fraction,
                                   search.margin)
        for name, r in self.ranges.items():
            logger.info("two-stage: %s narrowed to [%s, %s] (was [%s, %s])", name, r["low"],
                        r["high"], r["original_low"], r["original_high"])
        return self.spec.with_overrides(**{
            "search.algorithm": search.refine_with,
            "search_space": stage2_space(self.spec, self.ranges),
            "budget.num_samples": self.spec.budget.num_samples - self.n1,
            "budget.time_budget_s": remaining,
        })

    def _tracker(self) -> Any:
        return next((c for c in self.callbacks if isinstance(c, MlflowTrackingCallback)), None)

    def _tag_stage(self, stage: int) -> None:
        tracker = self._tracker()
        if tracker is not None:
            tracker.extra_tags = {**tracker.extra_tags, STAGE_TAG: str(stage)}

    def _log_ranges(self, stage2: Spec) -> None:
        report = {"stage1_samples": self.n1, "stage2_samples": stage2.budget.num_samples,
                  "stage1_with": self.spec.search.stage1_with,
                  "refine_with": self.spec.search.refine_with,
                  "top_fraction": self.spec.search.top_fraction,
                  "margin": self.spec.search.margin, "ranges": self.ranges}
        (self.experiment_dir / REPORT_FILE).write_text(json.dumps(report, indent=2))
        tracker = self._tracker()
        if tracker is None:  # an offline job: the file in the job folder is the record
            return
        client = MlflowClient(tracker.tracking_uri)
        params = [Param(f"stage2.{n}", f"[{r['low']!r}, {r['high']!r}]")
                  for n, r in self.ranges.items()]
        params.append(Param("stage2.num_samples", str(stage2.budget.num_samples)))
        client.log_batch(tracker.parent_run_id, params=params)
        client.log_dict(tracker.parent_run_id, report, REPORT_FILE)
