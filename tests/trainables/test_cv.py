"""K-fold CV inside a trial: the lockstep core, out-of-fold scores, early stopping, restore."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from trainables.cv import fold_parts, oof_scores, parts_for, score_round
from trainables.data import load_dataset
from trainables.lockstep import Progress, load_checkpoint, save_checkpoint, train_lockstep
from trainables.objectives import ObjectiveSettings, evaluate
from trainables.settings import TrainSettings
from trainables.xgboost_fraud import fit_final, xgb_params

CONFIG = {"eta": 0.3, "max_depth": 3}


@pytest.fixture(scope="module")
def data():
    return load_dataset(rows=3000, fraud_rate=0.05, n_features=6, seed=2)


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    rng = np.random.default_rng(0)
    rows, customers = 3000, 300
    customer = rng.integers(0, customers, rows)
    bad = rng.random(customers) < 0.25
    y = (bad[customer] & (rng.random(rows) < 0.5)).astype(int)
    frame = pd.DataFrame({"customer_id": [f"C{c}" for c in customer], "f1": rng.normal(size=rows) + y,
                          "f2": rng.normal(size=rows), "ts": rng.permutation(rows) * 60.0, "Class": y})
    path = tmp_path_factory.mktemp("cv") / "tx.csv"
    frame.to_csv(path, index=False)
    return load_dataset(path=str(path), group_column="customer_id", time_column="ts", split="time")


def _run(data, settings, config=CONFIG, total=None, **kw):
    parts = parts_for(data, settings, settings.max_bin, "cpu")
    params = [xgb_params(config, settings, data, 1, "cpu", y_train=p.y_train) for p in parts]
    return parts, params, train_lockstep(params, parts, total or settings.num_boost_round, settings, **kw)


def test_fold_mean_is_the_mean_of_per_fold_metrics_at_the_oof_threshold(data):
    st = TrainSettings(num_boost_round=20, report_every=10, cv_folds=3, objective="recall_at_fpr",
                       objective_settings=ObjectiveSettings(max_fpr=0.02))
    parts, _, reports = _run(data, st)
    last = list(reports)[-1]
    scores = [b.predict(p.dval) for b, p in zip(last.boosters, parts)]
    assert score_round(parts, scores, st) | last.result == last.result
    y = np.concatenate([p.y_val for p in parts])
    t = evaluate(y, np.concatenate(scores), "recall_at_fpr", st.objective_settings)["threshold"]
    folds = [evaluate(p.y_val, s, "recall_at_fpr", st.objective_settings, threshold=t,
                      amounts=p.amount_val) for p, s in zip(parts, scores)]
    for key in folds[0]:
        assert last.result[f"val_{key}"] == pytest.approx(np.mean([f[key] for f in folds])), key
    assert last.result["val_threshold"] == t
    assert last.result["val_recall_at_fpr_sd"] == pytest.approx(
        np.std([f["recall_at_fpr"] for f in folds], ddof=1))
    assert last.result["cv_folds"] == 3 and last.result["training_done"]


def test_oof_scores_cover_every_dev_row_once(data):
    parts = fold_parts(data, 4, 256, "cpu", seed=0, time_folds=False)
    rows = np.concatenate([p.val_rows for p in parts])
    n = len(data.dev().y)
    assert np.array_equal(np.sort(rows), np.arange(n))
    oof = oof_scores(parts, [np.full(len(p.y_val), i, float) for i, p in enumerate(parts)], n)
    assert not np.isnan(oof).any()
    assert np.array_equal(data.dev().y[parts[2].val_rows], parts[2].y_val)


@pytest.fixture(scope="module")
def timed():
    return load_dataset(rows=3000, fraud_rate=0.05, n_features=6, seed=3, time_column="Time", split="time")


def test_time_folds_validate_only_on_later_rows(timed):
    dev = timed.dev()
    parts = fold_parts(timed, 3, 256, "cpu", seed=0, time_folds=True)
    n = len(dev.y)
    for p in parts:
        train = np.setdiff1d(np.arange(n), p.val_rows)
        train = train[dev.times[train] < dev.times[p.val_rows].min()]  # the fold's training rows
        assert len(train) == len(p.y_train)  # everything earlier, nothing later
        assert dev.times[train].max() < dev.times[p.val_rows].min()
    firsts = [dev.times[p.val_rows].min() for p in parts]
    assert firsts == sorted(firsts)
    # The first block is never validated: those rows have no out-of-fold score.
    oof = oof_scores(parts, [np.zeros(len(p.y_val)) for p in parts], n)
    assert np.isnan(oof).sum() == n - sum(len(p.y_val) for p in parts) > 0
    st = TrainSettings(num_boost_round=10, report_every=10, cv_folds=3, time_folds=True)
    assert list(_run(timed, st)[2])[-1].result["rounds"] == 10
    with pytest.raises(Exception, match="time_column"):
        fold_parts(load_dataset(rows=3000, fraud_rate=0.05, n_features=6, seed=4), 3, 256, "cpu",
                   seed=0, time_folds=True)


def test_group_folds_keep_each_entity_in_one_fold(grouped):
    dev = grouped.dev()
    parts = fold_parts(grouped, 3, 256, "cpu", seed=1, time_folds=False)
    owner = {}
    for i, p in enumerate(parts):
        for g in set(dev.groups[p.val_rows].tolist()):
            assert owner.setdefault(g, i) == i
    assert len(np.concatenate([p.val_rows for p in parts])) == len(dev.y)


def test_early_stopping_after_n_flat_reports_with_best_so_far(data):
    # eta 0.9 and deep trees overfit quickly: logloss bottoms out and rises.
    st = TrainSettings(num_boost_round=200, report_every=2, cv_folds=2, objective="logloss",
                       early_stopping_reports=3)
    _, _, reports = _run(data, st, config={"eta": 0.9, "max_depth": 8})
    results = [r.result for r in reports]
    last = results[-1]
    assert last["training_done"] and last["rounds"] < 200
    values = [r["val_logloss"] for r in results]
    best = int(np.argmin(values))
    assert len(values) - 1 - best == 3  # stopped at the third report without improvement
    assert last["best_round"] == results[best]["rounds"]
    assert last["val_logloss_best"] == values[best] == min(values)
    assert last["best_threshold"] == results[best]["val_threshold"]
    assert [r["val_logloss_best"] for r in results] == list(np.minimum.accumulate(values))
    assert not any(r["training_done"] for r in results[:-1])


@pytest.mark.parametrize("k", [1, 3])
def test_restore_continues_to_the_same_results(data, tmp_path, k):
    st = TrainSettings(num_boost_round=30, report_every=5, cv_folds=k, early_stopping_reports=4)
    _, _, reports = _run(data, st)
    full = [r.result for r in reports]
    _, _, reports = _run(data, st)
    first = []
    for r in reports:
        first.append(r.result)
        if r.rounds == 15:
            save_checkpoint(tmp_path, r.boosters, r.progress)
            break
    boosters, progress = load_checkpoint(tmp_path, k)
    assert len(boosters) == k and boosters[0].num_boosted_rounds() == 15
    _, _, rest = _run(data, st, boosters=boosters, progress=progress)
    resumed = first + [r.result for r in rest]
    drop = ("train_time_s", "val_scoring_ms", "val_scoring_ms_at_best")  # measured times
    strip = [{a: b for a, b in r.items() if a not in drop} for r in full]
    assert strip == [{a: b for a, b in r.items() if a not in drop} for r in resumed]
    with pytest.raises(ValueError, match="another number of folds"):
        load_checkpoint(tmp_path, 2 if k != 2 else 3)


def test_holdout_matches_plain_xgb_train(data):
    st = TrainSettings(num_boost_round=20, report_every=10)
    parts, params, reports = _run(data, st, config={**CONFIG, "subsample": 0.8})
    last = list(reports)[-1].result
    booster = xgb.train(params[0], parts[0].dtrain, num_boost_round=20)
    metrics = evaluate(data.val.y, booster.predict(parts[0].dval), "aucpr", st.objective_settings)
    assert {f"val_{k}": v for k, v in metrics.items()} | last == last
    assert "val_aucpr_sd" not in last and last["cv_folds"] == 1


def test_folds_in_lockstep_equal_each_fold_trained_alone(data):
    st = TrainSettings(num_boost_round=10, report_every=10, cv_folds=2)
    parts, params, reports = _run(data, st, config={**CONFIG, "subsample": 0.7, "colsample_bynode": 0.7})
    together = list(reports)[-1].boosters
    alone = xgb.Booster(params[1], [parts[1].dtrain])
    for i in range(10):
        alone.update(parts[1].dtrain, i)
    assert np.array_equal(alone.predict(parts[1].dval), together[1].predict(parts[1].dval))


def test_fit_final_on_dev_rows(data):
    st = TrainSettings(cv_folds=3)
    booster = fit_final(data, {**CONFIG, "class_weight": "sqrt"}, st, rounds=7, dev=True, nthread=1)
    assert booster.num_boosted_rounds() == 7
    cfg = __import__("json").loads(booster.save_config())
    spw = float(cfg["learner"]["objective"]["reg_loss_param"]["scale_pos_weight"])
    y = data.dev().y
    assert spw == pytest.approx(np.sqrt((len(y) - y.sum()) / y.sum()), rel=1e-5)
    old = fit_final(data, CONFIG, TrainSettings(), 5, True, 1)  # the old call still works
    assert old.num_boosted_rounds() == 5


def test_settings_validate_and_keep_old_defaults():
    st = TrainSettings()
    assert (st.cv_folds, st.time_folds, st.early_stopping_reports, st.threshold_rule) == (1, False, None, None)
    assert st.rule() == ("f1", None)
    with pytest.raises(ValueError, match="needs a value"):
        TrainSettings(threshold_rule="alerts")
    with pytest.raises(ValueError, match="evaluation.cv"):
        TrainSettings(cv_folds=0)
    assert Progress().keys("aucpr")["best_round"] == 0
