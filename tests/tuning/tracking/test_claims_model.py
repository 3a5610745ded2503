"""The model a job hands over, end to end on a real file: ../shared/data/insurance_claims.csv.

One real job (Ray Tune, MLflow on SQLite) from a spec of name, data path, target and
budget; then the logged pyfunc scores ``pd.read_csv(file)`` rows untouched, as the
verdict scored the test rows, from this process, from ``tuning predict``, from
``mlflow models predict`` and from an interpreter where neither tuning nor Ray exists.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import new_store

CLAIMS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "insurance_claims.csv"
REPO = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CLAIMS.is_file(), reason=f"{CLAIMS} not available")]


@pytest.fixture(scope="module")
def claims_job(ray_session, tmp_path_factory):
    """The claims job: (JobResult, MLflow log records and warnings of the model logging)."""
    from tuning.job.lifecycle import run_job
    from tuning.spec import parse_spec

    tmp = tmp_path_factory.mktemp("claims-job")
    spec = parse_spec({"name": "claims", "data": {"path": str(CLAIMS), "target": "fraud_reported"},
                       "budget": {"num_samples": 2},
                       "tracking": {"tracking_uri": new_store(tmp)},
                       "storage": {"path": str(tmp / "runs")}})
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("mlflow").addHandler(handler)
    try:
        with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mp.chdir(tmp)
            result = run_job(spec, progress=False)
    finally:
        logging.getLogger("mlflow").removeHandler(handler)
    return result, records, caught, tmp


def _test_scores(result) -> pd.DataFrame:
    """The verdict's test scores by input row: its file, else the logged booster on the test split."""
    path = Path(result.experiment_dir) / "verdict" / "test_scores.csv"
    if path.exists():
        frame = pd.read_csv(path)
        return frame.rename(columns={"rows": "row"})[["row", "score"]]
    import mlflow.xgboost
    import xgboost as xgb

    from trainables.data import load_dataset
    from tuning._mlflow_compat import use_tracking_uri

    data = load_dataset(path=str(CLAIMS), target="fraud_reported")
    with use_tracking_uri(result.tracking_uri):
        booster = mlflow.xgboost.load_model(f"runs:/{result.parent_run_id}/booster")
    scores = booster.predict(xgb.DMatrix(data.test.X, enable_categorical=True))
    return pd.DataFrame({"row": data.test.rows, "score": scores})


def _pyfunc(result):
    import mlflow.pyfunc

    from tuning._mlflow_compat import use_tracking_uri

    with use_tracking_uri(result.tracking_uri):
        return mlflow.pyfunc.load_model(f"runs:/{result.parent_run_id}/model")


def test_flags_dates_and_missing_tokens_reach_the_parent_run(claims_job):
    from mlflow.tracking import MlflowClient

    result, *_ = claims_job
    tags = MlflowClient(result.tracking_uri).get_run(result.parent_run_id).data.tags
    leaks = {k.removeprefix("tuning.leak."): v for k, v in tags.items() if k.startswith("tuning.leak.")}
    assert set(leaks) == {"policy_number", "incident_location", "_c39"}
    assert leaks["policy_number"].startswith("id: 1000 distinct integers")
    assert leaks["incident_location"].startswith("id: 1000 distinct strings")
    assert leaks["_c39"].startswith("constant: empty")


def test_the_pyfunc_scores_raw_file_rows_as_the_verdict_did(claims_job):
    result, *_ = claims_job
    raw = pd.read_csv(CLAIMS)  # untouched: target, ids, '?' and date strings included
    out = _pyfunc(result).predict(raw)
    assert list(out.columns) == ["score", "decision"] and len(out) == len(raw)
    expected = _test_scores(result)
    np.testing.assert_allclose(out["score"].to_numpy()[expected["row"]], expected["score"], atol=1e-6)
    threshold = result.best.threshold
    assert (out["decision"] == (out["score"] >= threshold).astype(int)).all()


def test_the_model_knows_the_training_conversions(claims_job):
    import mlflow.artifacts

    from tuning._mlflow_compat import use_tracking_uri

    result, *_ = claims_job
    with use_tracking_uri(result.tracking_uri):
        folder = Path(mlflow.artifacts.download_artifacts(f"runs:/{result.parent_run_id}/model"))
    config = json.loads((folder / "artifacts" / "serving.json").read_text())
    kinds = {c["name"]: c["kind"] for c in config["preprocessor"]["columns"]}
    assert kinds["policy_bind_date"] == kinds["incident_date"] == "date"
    assert "?" in config["preprocessor"]["na_values"]
    levels = {c["name"]: c["levels"] for c in config["preprocessor"]["columns"]}
    assert "?" not in levels["collision_type"]
    assert {"policy_number", "incident_location", "_c39", "fraud_reported"} <= set(
        config["preprocessor"]["ignored"])
    assert sorted(p.name for p in (folder / "code" / "trainables").glob("*.py")) == [
        "__init__.py", "calibration.py", "preprocess.py", "serving.py"]


def test_signature_accepts_the_file_as_read_and_nothing_warned(claims_job):
    result, records, caught, _ = claims_job
    model = _pyfunc(result)
    inputs = {c.name: c for c in model.metadata.get_input_schema().inputs}
    assert list(inputs) == list(pd.read_csv(CLAIMS, nrows=1).columns)
    assert inputs["age"].type.name == "long" and inputs["policy_state"].type.name == "string"
    for optional in ("fraud_reported", "policy_number", "incident_location", "_c39"):
        assert not inputs[optional].required
    assert inputs["age"].required
    assert model.metadata.get_params_schema().to_dict() == [
        {"name": "explain", "type": "long", "default": 0, "shape": None}]
    mlflow_warned = [r.getMessage()[:200] for r in records if r.name.startswith("mlflow")]
    assert mlflow_warned == []
    user_warnings = [str(w.message)[:200] for w in caught
                     if issubclass(w.category, UserWarning) and "mlflow" in w.filename]
    assert user_warnings == []


def test_target_and_dropped_columns_may_be_absent(claims_job):
    result, *_ = claims_job
    raw = pd.read_csv(CLAIMS).head(20)
    full = _pyfunc(result).predict(raw)
    lean = _pyfunc(result).predict(raw.drop(columns=["fraud_reported", "policy_number", "_c39"]))
    pd.testing.assert_frame_equal(full, lean)


def test_booster_loads_with_the_xgboost_flavour(claims_job):
    import mlflow.xgboost

    from tuning._mlflow_compat import use_tracking_uri

    result, *_ = claims_job
    with use_tracking_uri(result.tracking_uri):
        booster = mlflow.xgboost.load_model(f"runs:/{result.parent_run_id}/booster")
    assert "policy_number" not in booster.feature_names and "age" in booster.feature_names


def test_the_data_set_is_logged_with_split_sizes(claims_job):
    from mlflow.tracking import MlflowClient

    result, *_ = claims_job
    inputs = MlflowClient(result.tracking_uri).get_run(result.parent_run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    dataset, tags = inputs[0].dataset, {t.key: t.value for t in inputs[0].tags}
    assert dataset.name == "insurance_claims.csv" and str(CLAIMS) in dataset.source
    assert json.loads(dataset.profile)["num_rows"] == 1000 and dataset.digest
    assert "fraud_reported" in dataset.schema
    assert tags["mlflow.data.context"] == "training"
    assert int(tags["train_rows"]) + int(tags["val_rows"]) + int(tags["test_rows"]) == 1000
    assert int(tags["test_positives"]) > 0


def _fresh_python(tmp: Path, code: str, tracking_uri: str) -> subprocess.CompletedProcess:
    """Run ``code`` where neither tuning nor trainables nor ray can be imported."""
    blocker = tmp / "blocker" / "sitecustomize.py"
    blocker.parent.mkdir(exist_ok=True)
    blocker.write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('ray', 'tuning'):\n"
        "            raise ImportError(f'{name} is blocked in this test')\n"
        "        return None\n"
        "sys.meta_path[:] = [_Block()] + [f for f in sys.meta_path if '__editable__' not in "
        "getattr(f, '__module__', '') and '__editable__' not in str(f)]\n"
        f"sys.path[:] = [p for p in sys.path if p not in ('', {str(REPO)!r})]\n")
    env = {**os.environ, "PYTHONPATH": str(blocker.parent), "MLFLOW_TRACKING_URI": tracking_uri}
    return subprocess.run([sys.executable, "-c", code], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_model_loads_where_neither_tuning_nor_ray_is_installed(claims_job):
    result, _, _, tmp = claims_job
    out = tmp / "fresh.csv"
    code = (
        "import sys, pandas as pd, mlflow.pyfunc\n"
        "for name in ('ray', 'tuning', 'trainables'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ImportError:\n"
        "        pass\n"
        "    else:\n"
        "        sys.exit(f'{name} is importable')\n"
        f"m = mlflow.pyfunc.load_model('runs:/{result.parent_run_id}/model')\n"
        f"m.predict(pd.read_csv({str(CLAIMS)!r}), params={{'explain': 2}}).to_csv({str(out)!r}, index=False)\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('ray', 'tuning', 'trainables')))\n"
    )
    done = _fresh_python(tmp, code, result.tracking_uri)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "'trainables.serving'" in done.stdout and "ray" not in done.stdout and "'tuning" not in done.stdout
    fresh = pd.read_csv(out)
    here = _pyfunc(result).predict(pd.read_csv(CLAIMS), params={"explain": 2})
    np.testing.assert_allclose(fresh["score"], here["score"], atol=1e-9)
    assert list(fresh.columns) == ["score", "decision", "reason_1", "contribution_1", "reason_2",
                                   "contribution_2"]


def test_mlflow_models_predict_and_tuning_predict_agree(claims_job):
    from tuning.cli import main

    result, _, _, tmp = claims_job
    mlflow_out, ours = tmp / "mlflow_scores.json", tmp / "tuning_scores.csv"
    env = {**os.environ, "MLFLOW_TRACKING_URI": result.tracking_uri}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mlflow"), "models", "predict", "-m",
         f"runs:/{result.parent_run_id}/model", "-i", str(CLAIMS), "-t", "csv", "--env-manager", "local",
         "-o", str(mlflow_out)], cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    served = pd.DataFrame(json.loads(mlflow_out.read_text())["predictions"])
    assert main(["predict", result.parent_run_id, "--input", str(CLAIMS), "--output", str(ours),
                 "--tracking-uri", result.tracking_uri]) == 0
    scored = pd.read_csv(ours)
    assert len(served) == len(scored) == 1000
    np.testing.assert_allclose(scored["score"], served["score"], atol=1e-9)
    np.testing.assert_array_equal(scored["decision"], served["decision"])
    expected = _test_scores(result)
    np.testing.assert_allclose(scored["score"].to_numpy()[expected["row"]], expected["score"], atol=1e-6)
