"""The trainable's Tune wiring (report, checkpoint, restore, retry) with Tune's calls stubbed.

No Ray session: ``tune.report`` / ``tune.get_checkpoint`` are replaced by a recorder,
so the checkpoint a report carries is restored exactly as a retried trial would.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from trainables import xgboost_fraud as xf
from trainables.data import load_dataset
from trainables.settings import TrainSettings

tune = pytest.importorskip("ray.tune")


class _Tune:
    """Records reports; keeps the latest checkpoint as a folder of its own."""

    def __init__(self, root: Path, fail_after: int | None = None) -> None:
        self.root, self.fail_after = root, fail_after
        self.results: list[dict] = []
        self.checkpoint: Path | None = None

    def report(self, result, checkpoint=None):  # noqa: ANN001 - tune.report's signature
        self.results.append(dict(result))
        if checkpoint is not None:
            target = self.root / f"ckpt_{len(self.results)}"
            shutil.copytree(checkpoint.path, target)
            self.checkpoint = target
        if self.fail_after is not None and len(self.results) == self.fail_after:
            raise RuntimeError("worker lost")

    def get_checkpoint(self):  # noqa: ANN201
        return None if self.checkpoint is None else tune.Checkpoint.from_directory(str(self.checkpoint))


@pytest.fixture(scope="module")
def data():
    return load_dataset(rows=3000, fraud_rate=0.05, n_features=6, seed=5)


def _trial(monkeypatch, recorder: _Tune, data, settings: TrainSettings) -> None:
    monkeypatch.setattr(tune, "report", recorder.report)
    monkeypatch.setattr(tune, "get_checkpoint", recorder.get_checkpoint)
    monkeypatch.setattr(xf, "trial_resources", lambda: (1, "cpu"))
    xf.train_xgboost_fraud({"eta": 0.3, "max_depth": 3}, data, settings)


@pytest.mark.parametrize("k", [1, 3])
def test_retry_resumes_from_the_last_checkpoint_to_the_same_results(monkeypatch, tmp_path, data, k):
    st = TrainSettings(num_boost_round=40, report_every=5, checkpoint_every=2, cv_folds=k)
    whole = _Tune(tmp_path / "whole")
    _trial(monkeypatch, whole, data, st)
    flaky = _Tune(tmp_path / "flaky", fail_after=3)  # checkpoint at report 2, lost at report 3
    with pytest.raises(RuntimeError):
        _trial(monkeypatch, flaky, data, st)
    flaky.fail_after = None
    _trial(monkeypatch, flaky, data, st)
    assert flaky.results[3]["restored_from_round"] == 10 and flaky.results[3]["rounds"] == 15
    keep = ("val_aucpr", "val_threshold", "rounds", "best_round", "val_aucpr_best", "training_done")
    resumed = flaky.results[:2] + flaky.results[3:]
    assert [{x: r[x] for x in keep} for r in resumed] == [{x: r[x] for x in keep} for r in whole.results]
    assert whole.results[-1]["training_done"] and whole.results[-1]["rounds"] == 40
    files = sorted(p.name for p in whole.checkpoint.iterdir())
    assert files == (["model.ubj", "progress.json"] if k == 1 else
                     ["fold_0.ubj", "fold_1.ubj", "fold_2.ubj", "progress.json"])


def test_an_early_stopped_trial_is_not_restarted(monkeypatch, tmp_path, data):
    st = TrainSettings(num_boost_round=400, report_every=2, cv_folds=2, objective="logloss",
                       early_stopping_reports=2)
    rec = _Tune(tmp_path)
    monkeypatch.setattr(tune, "report", rec.report)
    monkeypatch.setattr(tune, "get_checkpoint", rec.get_checkpoint)
    monkeypatch.setattr(xf, "trial_resources", lambda: (1, "cpu"))
    xf.train_xgboost_fraud({"eta": 0.9, "max_depth": 8}, data, st)
    n = len(rec.results)
    assert rec.results[-1]["training_done"] and rec.results[-1]["rounds"] < 400
    xf.train_xgboost_fraud({"eta": 0.9, "max_depth": 8}, data, st)  # a retry after the end
    assert len(rec.results) == n
