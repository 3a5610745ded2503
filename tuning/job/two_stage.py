"""Run a two-stage job (``search.algorithm: two_stage``): stage 1 ``search.stage1_with``
(random, or qmc) over the full space, stage 2 ``search.refine_with`` on the ranges
:mod:`tuning.search.two_stage` narrows, warm-started with every stage-1 result.

Both stages run under the job's one MLflow parent run; each is a Ray Tune experiment
of its own in the job folder (``<job>/stage1``, ``<job>/stage2``), and the job state
records the stage running and each stage's Tune path, so ``tuning resume`` restores
the stage the driver died in: stage 1 is finished and stage 2 run as usual, or stage
1's results are read from its folder and stage 2 is restored. Each child run carries
tag ``tuning.stage`` (1 or 2), and the narrowed ranges are logged on the parent once
(params ``stage2.<name>`` and artifact ``two_stage.json``), when stage 2 is built.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Param
from mlflow.tracking import MlflowClient
from ray import tune

from tuning._ray_compat import grid_trials, run_config
from tuning.job.progress import ProgressCallback
from tuning.job.shipping import is_uri, tune_experiment_path
from tuning.job.state import JobState
from tuning.job.tuner import build_tuner, fit_noting_interrupts, trainable_with_data
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
STAGES = (1, 2)


def stage_folder(stage: int) -> str:
    """The folder (Tune experiment name) of a stage inside the job folder."""
    return f"stage{stage}"


def stage_tune_path(spec: Spec, experiment_dir: Path, stage: int) -> str:
    """Where Ray Tune keeps a stage's experiment (what ``Tuner.restore`` reads)."""
    return f"{tune_experiment_path(spec.storage.path, experiment_dir).rstrip('/')}/" \
        f"{stage_folder(stage)}"


def stage_spec(spec: Spec, experiment_dir: Path, **overrides: Any) -> Spec:
    """The spec of one stage (``overrides`` applied). With a URI ``storage.path`` the
    stage's experiment goes under the job's own prefix: ``build_tuner`` (and the
    trainable's Train storage) put a folder ``<storage>/<folder name>``."""
    if is_uri(spec.storage.path):
        overrides["storage.path"] = tune_experiment_path(spec.storage.path, experiment_dir)
    return spec.with_overrides(**overrides) if overrides else spec


def stage_trainable(spec: Spec, data: Any, experiment_dir: Path, stage: int) -> Any:
    """The trainable of ``stage`` as its Tuner was built with it (what a restore needs)."""
    return trainable_with_data(stage_spec(spec, experiment_dir), data,
                               experiment_dir / stage_folder(stage))


def enter_stage(state: JobState, spec: Spec, experiment_dir: Path, stage: int) -> None:
    """Record in the job state (and write) that ``stage`` is the one running."""
    state.set_stage(stage, stage_tune_path(spec, experiment_dir, stage))
    state.write(experiment_dir)


def restorable_stage(state: JobState, experiment_dir: Path) -> int | None:
    """Make ``state`` name a stage ``Tuner.restore`` can read; return that stage.

    A stage 2 that never saved Tune's experiment state (the driver died as it began)
    has nothing to restore: its folder is set aside (``stage2-abandoned-<time>``, which no
    reader lists) and the job goes on from stage 1, finished, so stage 2 is built again.
    """
    if state.stage != 2 or is_uri(state.tune_path):
        return state.stage
    folder = experiment_dir / stage_folder(2)
    if any(folder.glob("experiment_state-*.json")):
        return 2
    if folder.exists():
        aside = experiment_dir / f"{stage_folder(2)}-abandoned-{time.strftime('%Y%m%d-%H%M%S')}"
        folder.rename(aside)
        logger.warning("two-stage: stage 2 saved no Tune state before its driver died; set "
                       "aside in %s, stage 2 runs again", aside)
    state.set_stage(1)
    state.write(experiment_dir)
    return 1


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
    """Runs stage 1 and stage 2 as two Ray Tune experiments; ``fit`` returns both stages'
    results. :meth:`resumed` builds one that goes on from the stage a dead driver left."""

    def __init__(self, spec: Spec, data: Any, experiment_dir: Path, callbacks: list,
                 state: JobState | None = None) -> None:
        self.spec = spec
        self.data = data
        self.experiment_dir = experiment_dir
        self.callbacks = callbacks
        self.state = state
        self.stopper = build_stopper(spec)  # shared: a target reached in stage 1 ends the job
        self.n1 = stage1_samples(spec)
        self.ranges: dict[str, dict[str, Any]] = {}
        self._restored: dict[int, Any] = {}  # stage -> the Tuner restored from its folder
        self._stage1_results: Any = None  # read from stage 1's folder (resumed in stage 2)

    @classmethod
    def resumed(cls, spec: Spec, data: Any, experiment_dir: Path, state: JobState,
                tuner: Any, trainable: Any) -> TwoStageTuner:
        """The job going on from ``tuner``: the Tune experiment of ``state.stage``, restored.

        Its unpickled driver callbacks (tracker, progress) and stopper carry on; in stage
        2, stage 1's results are read from its folder, not run again.
        """
        config = run_config(tuner)
        callbacks = [c for c in (config.callbacks if config is not None else None) or []
                     if isinstance(c, (MlflowTrackingCallback, ProgressCallback))]
        self = cls(spec, data, experiment_dir, callbacks, state)
        self.stopper = config.stop if config is not None else self.stopper
        self._restored[state.stage or 1] = tuner
        if state.stage == 2:
            self._stage1_results = tune.Tuner.restore(state.stage_paths[0],
                                                      trainable=trainable).get_results()
        return self

    def fit(self) -> CombinedResults:
        started = time.monotonic()
        grids = [self._stage1_results]
        if grids[0] is None:
            grids[0], interrupted = self._run_stage(1, self._stage1_tuner)
            if interrupted:  # Ctrl-C: Tune saved stage 1; `tuning resume` goes on from there
                return CombinedResults(grids)
        observations = observations_of(grids[0], self.spec)
        remaining = None
        if self.spec.budget.time_budget_s:
            remaining = self.spec.budget.time_budget_s - (time.monotonic() - started)
        if 2 not in self._restored and (self._stopped(remaining) or not observations):
            return CombinedResults(grids)
        grids.append(self._run_stage(2, lambda: self._stage2_tuner(observations, remaining))[0])
        return CombinedResults(grids)

    def _run_stage(self, stage: int, build: Any) -> tuple[Any, bool]:
        """Fit ``stage`` (restored, or built by ``build``), recorded as running in the state."""
        tuner = self._restored.get(stage)
        if tuner is None:
            tuner = build()
            if self.state is not None:  # after the Tuner wrote its tuner.pkl: restorable
                enter_stage(self.state, self.spec, self.experiment_dir, stage)
        return fit_noting_interrupts(tuner)

    def _stage_spec(self, **overrides: Any) -> Spec:
        return stage_spec(self.spec, self.experiment_dir, **overrides)

    def _stage1_tuner(self) -> Any:
        stage1 = self._stage_spec(**{"search.algorithm": self.spec.search.stage1_with,
                                     "budget.num_samples": self.n1})
        self._tag_stage(1)
        return build_tuner(stage1, self.data, self.experiment_dir / stage_folder(1),
                           self.callbacks, stopper=self.stopper)

    def _stage2_tuner(self, observations: list[Observation], remaining: float | None) -> Any:
        stage2 = self._stage2_spec(observations, remaining)
        self._log_ranges(stage2)
        self._tag_stage(2)
        # Stage-2 replays every stage-1 result; points outside the box sit on its edge.
        fitted = [Observation({n: clip(stage2.search_space[n], v) for n, v in o.config.items()},
                              o.value) for o in observations]
        return build_tuner(stage2, self.data, self.experiment_dir / stage_folder(2),
                           self.callbacks, observations=fitted, stopper=self.stopper)

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
        return self._stage_spec(**{
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
        try:
            log_ranges(MlflowClient(tracker.tracking_uri), tracker.parent_run_id, report)
        except Exception as err:  # noqa: BLE001 - the store may be down: the job goes on
            logger.warning("could not log the stage-2 ranges on the parent run (%s); `tuning "
                           "sync %s` logs them from %s", str(err).splitlines()[0][:200],
                           self.experiment_dir, REPORT_FILE)


def log_ranges(client: Any, parent_run_id: str, report: dict[str, Any]) -> None:
    """Log the narrowed ranges on the parent run: params ``stage2.<name>`` and
    ``stage2.num_samples``, and the artifact ``two_stage.json``."""
    params = [Param(f"stage2.{n}", f"[{r['low']!r}, {r['high']!r}]")
              for n, r in report["ranges"].items()]
    params.append(Param("stage2.num_samples", str(report["stage2_samples"])))
    client.log_batch(parent_run_id, params=params)
    client.log_dict(parent_run_id, report, REPORT_FILE)


def sync_ranges(client: Any, parent_run_id: str, experiment_dir: Path) -> bool:
    """Log the job folder's ``two_stage.json`` on the parent run unless it has the ranges
    already (an offline job, or a store that was down when stage 2 began)."""
    path = experiment_dir / REPORT_FILE
    if not path.is_file():
        return False
    if "stage2.num_samples" in client.get_run(parent_run_id).data.params:
        return False
    log_ranges(client, parent_run_id, json.loads(path.read_text()))
    return True
