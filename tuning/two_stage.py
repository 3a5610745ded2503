"""The two-stage job (``search.algorithm: two_stage``): explore wide, then refine narrow.

Stage 1 samples ``search.stage1_samples`` configurations at random over the full
space. Stage 2 narrows every numeric range to the span of stage 1's top
``search.top_fraction`` trials, widened on each side by ``search.margin`` of the
original range and clipped to it (on the log scale for log parameters; choices
keep all their values), and runs ``search.refine_with`` (tpe or gp) there for the
rest of the budget, warm-started with ALL stage-1 results. Stage-1 points outside
the narrowed box are projected onto its edge, so the model still learns that the
region beyond that edge scored as they did.

Both stages run under the job's one MLflow parent run and in the job's one folder;
each child run carries tag ``tuning.stage`` (1 or 2), and the narrowed ranges are
logged on the parent (params ``stage2.<name>`` and artifact ``two_stage.json``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tuning.codec import clip, from_unit, is_tuned, to_unit
from tuning.config import ChoiceParam, RandIntParam, Spec
from tuning.warm_start import Observation

logger = logging.getLogger(__name__)

STAGE_TAG = "tuning.stage"
REPORT_FILE = "two_stage.json"


def narrow_space(space: dict[str, Any], observations: list[Observation], mode: str,
                 top_fraction: float, margin: float) -> dict[str, dict[str, Any]]:
    """The narrowed ranges: ``{name: {low, high, original_low, original_high}}``.

    Only numeric ranges appear; choices and constants stay as they are.
    """
    if not observations:
        return {}
    ranked = sorted(observations, key=lambda o: o.value, reverse=mode == "max")
    top = ranked[:max(1, math.ceil(top_fraction * len(ranked)))]
    out: dict[str, dict[str, Any]] = {}
    for name, param in space.items():
        if not is_tuned(param) or isinstance(param, ChoiceParam):
            continue
        units = [to_unit(param, o.config[name]) for o in top if name in o.config]
        if not units:
            continue
        lo_u, hi_u = max(0.0, min(units) - margin), min(1.0, max(units) + margin)
        low, high = from_unit(param, lo_u), from_unit(param, hi_u)
        if isinstance(param, RandIntParam):
            high = high + 1  # randint excludes its upper bound
            # Keep two integers at least: HyperOpt cannot sample a one-value range.
            if high - low < 2:
                high, low = (high + 1, low) if high < param.high else (high, max(param.low,
                                                                                 low - 1))
        if not low < high:  # a quantised range collapsed to one value: keep it whole
            low, high = param.low, param.high
        out[name] = {"low": low, "high": high, "original_low": param.low,
                     "original_high": param.high}
    return out


def stage2_space(spec: Spec, ranges: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The spec's ``search_space`` (as plain data) with the narrowed ranges put in."""
    raw = {}
    for name, param in spec.search_space.items():
        if hasattr(param, "model_dump"):
            raw[name] = param.model_dump(exclude_none=True)
            if name in ranges:
                raw[name].update(low=ranges[name]["low"], high=ranges[name]["high"])
        else:
            raw[name] = param
    return raw


def observations_of(results: Any, spec: Spec) -> list[Observation]:
    """(tuned config, last objective value) of every trial in a Tune result grid.

    The last value is what the searcher itself is told when a trial completes.
    """
    key = spec.objective.result_key
    tuned = [n for n, p in spec.search_space.items() if is_tuned(p)]
    out = []
    for result in results:
        value = (result.metrics or {}).get(key)
        if result.error is not None or not isinstance(value, (int, float)) or math.isnan(value):
            continue
        out.append(Observation({n: result.config[n] for n in tuned}, float(value)))
    return out


class CombinedResults:
    """Both stages' result grids read as one (what ``tuning.final.summarise`` iterates)."""

    def __init__(self, grids: list[Any]) -> None:
        self._results = [r for grid in grids for r in grid]
        self._experiment_analysis = SimpleNamespace(
            trials=[t for grid in grids for t in grid._experiment_analysis.trials])

    def __iter__(self) -> Any:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def __getitem__(self, i: int) -> Any:
        return self._results[i]


class TwoStageTuner:
    """Runs stage 1 and stage 2 as two Ray Tune runs; ``fit`` returns both stages' results."""

    def __init__(self, spec: Spec, data: Any, experiment_dir: Path, callbacks: list) -> None:
        from tuning.search import stage1_samples
        from tuning.stoppers import build_stopper

        self.spec = spec
        self.data = data
        self.experiment_dir = experiment_dir
        self.callbacks = callbacks
        self.stopper = build_stopper(spec)  # shared: a target reached in stage 1 ends the job
        self.n1 = stage1_samples(spec)
        self.ranges: dict[str, dict[str, Any]] = {}

    def fit(self) -> CombinedResults:
        from tuning.run import build_tuner

        started = time.monotonic()
        stage1 = self.spec.with_overrides(**{"search.algorithm": "random",
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
        from tuning.tracking import MlflowTrackingCallback

        return next((c for c in self.callbacks if isinstance(c, MlflowTrackingCallback)), None)

    def _tag_stage(self, stage: int) -> None:
        tracker = self._tracker()
        if tracker is not None:
            tracker.extra_tags = {**tracker.extra_tags, STAGE_TAG: str(stage)}

    def _log_ranges(self, stage2: Spec) -> None:
        report = {"stage1_samples": self.n1, "stage2_samples": stage2.budget.num_samples,
                  "refine_with": self.spec.search.refine_with,
                  "top_fraction": self.spec.search.top_fraction,
                  "margin": self.spec.search.margin, "ranges": self.ranges}
        (self.experiment_dir / REPORT_FILE).write_text(json.dumps(report, indent=2))
        tracker = self._tracker()
        if tracker is None:  # an offline job: the file in the job folder is the record
            return
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracker.tracking_uri)
        params = [Param(f"stage2.{n}", f"[{r['low']!r}, {r['high']!r}]")
                  for n, r in self.ranges.items()]
        params.append(Param("stage2.num_samples", str(stage2.budget.num_samples)))
        client.log_batch(tracker.parent_run_id, params=params)
        client.log_dict(tracker.parent_run_id, report, REPORT_FILE)
