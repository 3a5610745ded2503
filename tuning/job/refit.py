"""After the search: summarise trials, pick the best, refit it once and test it."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from trainables.calibration import fit_calibrator
from trainables.folds import make_folds
from trainables.xgboost_fraud import fit_final, xgb_params
from tuning._ray_compat import grid_trials
from tuning.job.results import TrialSummary
from tuning.job.tuner import train_settings
from tuning.job.sync import BEST_MODEL_FILE, CALIBRATOR_FILE
from tuning.job.verdict import build_verdict, paired_difference, verdict_warnings, write_verdict
from tuning.search.baseline import baseline_point, is_baseline
from tuning.spec import Spec
from tuning.tracking.tags import trial_status

logger = logging.getLogger(__name__)


def summarise(results: Any, spec: Spec) -> list[TrialSummary]:
    """One :class:`~tuning.job.results.TrialSummary` per trial, from Tune's result grid."""
    key, mode = spec.objective.result_key, spec.objective.resolved_mode
    out = []
    # Results come in the order of Tune's trials; a trial that never reported has no
    # trial_id in its metrics, so the id is taken from the trial itself.
    ids = [t.trial_id for t in grid_trials(results)]
    for i, result in enumerate(results):
        history = result.metrics_dataframe
        last = result.metrics or {}
        trial_id = last.get("trial_id") or (ids[i] if i < len(ids) else "?")
        config = {k: v for k, v in (result.config or {}).items()}
        status = trial_status(last, errored=result.error is not None)
        best_value = best_round = threshold = None
        best_row: dict[str, Any] = {}
        if history is not None and key in history and history[key].notna().any():
            idx = history[key].idxmax() if mode == "max" else history[key].idxmin()
            best_row = history.loc[idx].to_dict()
            best_value = float(best_row[key])
            best_round = int(best_row.get("rounds", 0))
            threshold = _float(best_row.get("val_threshold"))
        metrics = {k: float(v) for k, v in best_row.items()
                   if k.startswith("val_") and isinstance(v, (int, float)) and not isinstance(v, bool)}
        out.append(TrialSummary(trial_id=trial_id, status=status, config=config,
                                best_value=best_value, best_round=best_round,
                                rounds=int(last.get("rounds", 0) or 0), threshold=threshold,
                                metrics=metrics))
    return out


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def pick_best(trials: list[TrialSummary], mode: str) -> TrialSummary | None:
    # A constrained job's infeasible trials (objective.constraints) are never the best.
    scored = [t for t in trials if t.best_value is not None and not math.isnan(t.best_value)
              and not t.metrics.get("val_constraint_violation", 0.0) > 0]
    if not scored:
        return None
    return (max if mode == "max" else min)(scored, key=lambda t: t.best_value)


def evaluate_best(spec: Spec, data: Any, best: TrialSummary) -> tuple[Any, np.ndarray]:
    """Refit a trial's configuration and score the test set once; return (booster, scores).

    With cross-validation (``evaluation.cv`` > 1) the refit trains on all non-test
    rows for the round count the folds chose. Otherwise ``evaluation.refit:
    train_val`` (default) refits on train+validation with the trial's best rounds, and
    ``train`` rebuilds the trial's own model.
    """
    settings = train_settings(spec, data)
    rounds = max(1, best.best_round or 1)
    if settings.cv_folds > 1:
        booster = fit_final(data, best.config, settings, rounds=rounds, dev=True)
    else:
        booster = fit_final(data, best.config, settings, rounds=rounds,
                            include_val=spec.evaluation.refit == "train_val")
    scores = booster.predict(xgb.DMatrix(data.test.X, enable_categorical=True))
    return booster, scores


def calibration_scores(spec: Spec, data: Any, best: TrialSummary) -> tuple[np.ndarray, np.ndarray]:
    """Held-out (labels, scores) of the chosen configuration, for ``evaluation.calibrate``.

    The refit model has seen every non-test row, so its own scores of them are
    optimistic: a train-only refit scores the validation rows, or, with CV, K fold
    refits score each non-test row once (out-of-fold).
    """
    settings = train_settings(spec, data)
    rounds = max(1, best.best_round or 1)
    if settings.cv_folds == 1:
        booster = fit_final(data, best.config, settings, rounds=rounds, include_val=False)
        return data.val.y, booster.predict(xgb.DMatrix(data.val.X, enable_categorical=True))
    dev = data.dev()
    folds = make_folds(dev.y, settings.cv_folds, seed=settings.seed, groups=dev.groups,
                       times=dev.times if settings.time_folds else None)
    oof = np.full(len(dev.y), np.nan)
    threads = os.cpu_count() or 1
    for train_idx, val_idx in folds:
        dtrain = xgb.QuantileDMatrix(dev.X.iloc[train_idx], label=dev.y[train_idx],
                                     max_bin=settings.max_bin, enable_categorical=True)
        params = xgb_params(best.config, settings, data, threads, "cpu", y_train=dev.y[train_idx])
        booster = xgb.train(params, dtrain, num_boost_round=rounds, verbose_eval=False)
        oof[val_idx] = booster.predict(xgb.DMatrix(dev.X.iloc[val_idx], enable_categorical=True))
    scored = ~np.isnan(oof)  # forward-chaining folds never validate on the first block
    return dev.y[scored], oof[scored]


def streamed_refit(spec: Spec, data: Any, best: TrialSummary, baseline: TrialSummary | None,
                   experiment_dir: Path) -> tuple[Any, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """The refit of a job on sharded input (:mod:`trainables.shards`), data-parallel as its trials.

    One Ray Train run over ``resources.workers`` fits the best configuration (and the
    baseline's, and the train-only model ``evaluation.calibrate`` scores the validation
    rows with); the test split is then read from the shards batch by batch and scored
    on the driver, which never holds the table. Returns the refit booster, its test
    scores, the baseline's test scores and the held-out (labels, scores) or None.
    """
    from trainables.data_parallel import Workers
    from trainables.shard_train import refit_streamed
    from trainables.shards import predict_split
    from tuning.job.shipping import tune_storage

    settings = train_settings(spec, data)
    include_val = spec.evaluation.refit == "train_val"
    items = [(best.config, max(1, best.best_round or 1), include_val)]
    other = baseline is not None and baseline.trial_id != best.trial_id
    if other:
        items.append((baseline.config, max(1, baseline.best_round or 1), include_val))
    calibrate = spec.evaluation.calibrate != "none"
    if calibrate:
        items.append((best.config, max(1, best.best_round or 1), False))
    storage = f"{tune_storage(spec.storage.path, experiment_dir).rstrip('/')}/{experiment_dir.name}/train"
    workers = Workers(spec.resources.workers, spec.resources.cpu, spec.resources.gpu, storage)
    boosters = refit_streamed(data, items, settings, workers, f"{experiment_dir.name}-refit")
    test_scores = predict_split(data, "test", boosters[: 2 if other else 1])
    held = None
    if calibrate:
        held = data.val.y, predict_split(data, "val", [boosters[-1]])[0]
    return boosters[0], test_scores[0], test_scores[1] if other else test_scores[0], held


def find_baseline(trials: list[TrialSummary], point: dict[str, Any] | None) -> TrialSummary | None:
    """The baseline trial among ``trials`` (the first whose config is the baseline point)."""
    return next((t for t in trials if is_baseline(t.config, point)), None)


def verdict_of(spec: Spec, data: Any, best: TrialSummary, scores: np.ndarray,
               baseline: TrialSummary | None = None,
               baseline_scores: np.ndarray | None = None) -> dict[str, Any]:
    """The test-set verdict at the threshold the best trial chose on validation,
    with the baseline trial's model scored on the same rows when there is one."""
    settings = train_settings(spec, data)
    rule, value = settings.rule()
    verdict = build_verdict(data.test.y, scores, data.test.amount, settings.objective,
                            settings.objective_settings, best.threshold,
                            spec.evaluation.bootstrap, spec.evaluation.seed,
                            "all non-test rows" if settings.cv_folds > 1 else spec.evaluation.refit)
    verdict.update(rule=rule, rule_value=value, cv_folds=settings.cv_folds)
    if baseline is not None and baseline_scores is not None:
        verdict["baseline"] = {
            "trial_id": baseline.trial_id, "chosen": baseline.trial_id == best.trial_id,
            "config": baseline.config, "best_round": baseline.best_round,
            **paired_difference(data.test.y, scores, baseline_scores,
                                spec.evaluation.bootstrap, spec.evaluation.seed)}
    verdict["warnings"] = verdict_warnings(verdict, settings.objective_settings.max_fpr, best)
    return verdict


def refit_and_judge(spec: Spec, data: Any, trials: list[TrialSummary], best: TrialSummary,
                    experiment_dir: Path) -> tuple[dict[str, Any], dict[str, float]]:
    """Refit the chosen trial, score the test rows once, compare with the baseline trial.

    Writes the refit booster, the calibrator (``evaluation.calibrate``) and the verdict
    into the job folder, from where the parent run gets them (also via ``tuning sync``).
    Returns the verdict and the test metrics for the parent run (``test_<name>``).
    """
    baseline = find_baseline(trials, baseline_point(spec, data))
    if getattr(data, "streamed", False):
        booster, scores, baseline_scores, held = streamed_refit(spec, data, best, baseline, experiment_dir)
    else:
        booster, scores = evaluate_best(spec, data, best)
        held = calibration_scores(spec, data, best) if spec.evaluation.calibrate != "none" else None
        baseline_scores = (scores if baseline is None or baseline.trial_id == best.trial_id
                           else evaluate_best(spec, data, baseline)[1])
    booster.save_model(str(experiment_dir / BEST_MODEL_FILE))
    if held is not None:
        calibrator = fit_calibrator(held[0], held[1], spec.evaluation.calibrate)
        (experiment_dir / CALIBRATOR_FILE).write_text(json.dumps(calibrator))
    verdict = verdict_of(spec, data, best, scores, baseline, baseline_scores)
    write_verdict(experiment_dir, verdict, data.test.y, scores, data.test.rows)
    test_metrics = dict(verdict["metrics"])
    if "baseline" in verdict:  # on the parent run as test_baseline_aucpr, ...
        test_metrics.update(baseline_aucpr=verdict["baseline"]["baseline_aucpr"],
                            aucpr_minus_baseline=verdict["baseline"]["aucpr_minus_baseline"])
        verdict["intervals"]["aucpr_minus_baseline"] = verdict["baseline"]["interval"]
    for warning in verdict["warnings"]:
        logger.warning("%s", warning)
    return verdict, test_metrics
