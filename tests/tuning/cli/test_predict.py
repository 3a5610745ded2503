"""``tuning predict``: a job's model scores a CSV or Parquet file (no Ray: the model is
logged with ``tuning.tracking.model.hand_over`` from a booster trained here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from tuning.cli import main

from conftest import new_store


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """(tracking uri, parent run id, the training file, its frame, the booster, the data)."""
    from mlflow.tracking import MlflowClient

    from tuning.job.preflight import load_data
    from tuning.spec import parse_spec
    from tuning.tracking.model import hand_over

    tmp = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    n = 3000
    y = (rng.random(n) < 0.1).astype(int)
    frame = pd.DataFrame({"amount": rng.gamma(2, 30, n).round(2) + 25 * y, "age": rng.integers(18, 90, n),
                          "channel": rng.choice(["web", "pos", "?"], n), "label": y})
    path = tmp / "txns.csv"
    frame.to_csv(path, index=False)
    uri = new_store(tmp)
    spec = parse_spec({"name": "scorer", "search_space": {"eta": 0.1},
                       "data": {"path": str(path), "target": "label"}, "tracking": {"tracking_uri": uri}})
    data = load_data(spec)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
                        xgb.DMatrix(data.train.X, label=data.train.y, enable_categorical=True), 10)
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("scorer"), tags={"tuning.role": "parent"},
                               run_name="scorer").info.run_id
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)  # a SQLite store keeps artifacts under ./mlruns
        hand_over(uri, run_id, spec, data, booster, 0.2, {})
    return uri, run_id, path, frame, booster, data


def test_scores_a_file_by_job_name_with_reasons_and_a_progress_line(logged, tmp_path, capsys):
    uri, run_id, path, frame, booster, data = logged
    out = tmp_path / "scores.csv"
    code = main(["predict", "scorer", "--input", str(path), "--output", str(out), "--explain", "2",
                 "--chunk-rows", "1000", "--tracking-uri", uri])
    err = capsys.readouterr().err
    assert code == 0
    assert "scored 3,000 / 3,000 rows (100%" in err and "scored 1,000 / 3,000 rows" in err
    assert f"3000 rows scored with the model of run {run_id}" in err
    scores = pd.read_csv(out)
    assert list(scores.columns) == ["row", "score", "decision", "reason_1", "contribution_1", "reason_2",
                                    "contribution_2"]
    expected = booster.predict(xgb.DMatrix(data.test.X, enable_categorical=True))
    np.testing.assert_allclose(scores["score"].to_numpy()[data.test.rows], expected, atol=1e-6)
    assert set(scores["reason_1"]) <= {"amount", "age", "channel"}


def test_parquet_out_and_csv_on_stdout(logged, tmp_path, capsys):
    uri, run_id, path, frame, *_ = logged
    parquet_in, parquet_out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    frame.head(100).to_parquet(parquet_in)
    assert main(["predict", run_id, "--input", str(parquet_in), "--output", str(parquet_out), "-q",
                 "--tracking-uri", uri]) == 0
    capsys.readouterr()
    assert main(["predict", run_id, "--input", str(parquet_in), "--tracking-uri", uri]) == 0
    printed = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    pd.testing.assert_frame_equal(printed, pd.read_parquet(parquet_out), check_dtype=False)
    assert len(printed) == 100 and "progress" not in printed.columns


def test_an_integer_column_with_a_missing_value_scores_as_missing(logged, tmp_path, capsys):
    uri, run_id, _, frame, *_ = logged
    rows = frame.head(10).astype({"age": float})
    rows.loc[0, "age"] = np.nan  # pandas now reads "age" as float: MLflow's signature would refuse it
    source = tmp_path / "gappy.csv"
    rows.to_csv(source, index=False)
    assert main(["predict", run_id, "--input", str(source), "--tracking-uri", uri]) == 0
    scores = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert scores["score"].notna().all() and len(scores) == 10


def test_a_missing_column_is_one_line(logged, tmp_path, capsys):
    uri, run_id, _, frame, *_ = logged
    source = tmp_path / "no_channel.csv"
    frame.drop(columns=["channel"]).head(5).to_csv(source, index=False)
    assert main(["predict", run_id, "--input", str(source), "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: rows lack required column(s) ['channel']; the model needs 3 columns"]


def test_an_unknown_job_or_negative_explain_is_refused(logged, tmp_path, capsys):
    uri, _, path, *_ = logged
    assert main(["predict", "nope", "--input", str(path), "--tracking-uri", uri]) == 1
    assert "no tuning job named 'nope'" in capsys.readouterr().err
    assert main(["predict", "scorer", "--input", str(path), "--explain", "-1", "--tracking-uri", uri]) == 2
    assert "--explain must be >= 0" in capsys.readouterr().err
