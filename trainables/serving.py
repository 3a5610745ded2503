"""The deployable fraud model: raw rows in; score, decision (and reasons) out.

:class:`FraudModel` is an MLflow pyfunc ``PythonModel``. It holds no state of its
own: ``load_context`` reads two artifacts, the booster (UBJSON) and
``serving.json`` (the fitted :class:`~trainables.preprocess.Preprocessor`, the
decision threshold and an optional calibrator). Its code travels with the model
(``code_paths``): this module, :mod:`trainables.preprocess` and
:mod:`trainables.calibration`, which import only mlflow, xgboost, numpy and pandas,
so the model loads wherever those four are installed. It never talks to a
tracking server.

Output columns, one row per input row (same index):

- ``score``: the booster's output. Training weights the classes, so it ranks
  transactions but is no calibrated probability.
- ``decision``: 1 when ``score >= threshold`` (the job's operating point), else 0.
- ``probability``: only with a calibrator (``evaluation.calibrate``).
- ``reason_1 .. reason_K`` and ``contribution_1 .. contribution_K`` with the
  param ``explain: K``: the raw columns with the largest absolute contributions
  to the row's margin (log-odds; positive pushes towards fraud), from XGBoost's
  own ``pred_contribs``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from trainables.calibration import apply_calibrator
from trainables.preprocess import Preprocessor

BOOSTER_ARTIFACT = "booster"
SERVING_ARTIFACT = "serving"
SERVING_FILE = "serving.json"
FORMAT = 1
EXPLAIN_PARAM = "explain"


def serving_config(pre: Preprocessor, threshold: float | None, calibrator: dict[str, Any] | None = None,
                   target: str | None = None) -> dict[str, Any]:
    """The JSON description ``serving.json`` holds (threshold None: 0.5, as the verdict)."""
    return {
        "format": FORMAT,
        "preprocessor": pre.to_dict(),
        "threshold": 0.5 if threshold is None else float(threshold),
        "calibrator": calibrator if calibrator and calibrator.get("method", "none") != "none" else None,
        "target": target,
    }


class FraudModel(mlflow.pyfunc.PythonModel):
    """Raw rows to ``score`` / ``decision`` (/ ``probability``, reasons); see the module docstring."""

    def load_context(self, context: Any) -> None:
        """Read the booster and ``serving.json`` from the model's artifacts."""
        self.load(context.artifacts[BOOSTER_ARTIFACT], context.artifacts[SERVING_ARTIFACT])

    def load(self, booster_path: str | Path, serving_path: str | Path) -> FraudModel:
        """Load from the two files directly (what ``load_context`` does); return self."""
        import xgboost as xgb  # heavy: imported when the model loads, not with this module

        config = json.loads(Path(serving_path).read_text())
        if config.get("format") != FORMAT:
            raise ValueError(f"{serving_path}: serving format {config.get('format')!r} is not {FORMAT}")
        self.preprocessor = Preprocessor.from_dict(config["preprocessor"])
        self.threshold = float(config["threshold"])
        self.calibrator = config.get("calibrator")
        self.booster = xgb.Booster(model_file=str(booster_path))
        self.booster.set_param({"nthread": 1})  # a request is small; a server runs many side by side
        return self

    # model_input is hinted as a DataFrame: MLflow infers no schema from that hint (the
    # logged signature is the schema) and warns about any other hint, or none.
    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
                ) -> pd.DataFrame:
        """Score raw rows; return a DataFrame with the input's index.

        Args:
            context: MLflow's model context (unused once loaded).
            model_input: Raw rows (extra columns are ignored); a dict of columns or a
                list of records is turned into a DataFrame.
            params: ``{"explain": K}`` adds the top-K reasons of every row.

        Raises:
            DataError: One line naming a required column the rows lack.
            ValueError: On a negative ``explain``.
        """
        import xgboost as xgb  # heavy: xgboost

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        k = int((params or {}).get(EXPLAIN_PARAM) or 0)
        if k < 0:
            raise ValueError(f"params.{EXPLAIN_PARAM} must be >= 0, got {k}")
        X = self.preprocessor.transform(frame)
        matrix = xgb.DMatrix(X, enable_categorical=True)
        score = self.booster.predict(matrix).astype(np.float64)
        out = pd.DataFrame({"score": score, "decision": (score >= self.threshold).astype(np.int64)},
                           index=frame.index)
        if self.calibrator:
            out["probability"] = apply_calibrator(self.calibrator, score)
        if k:
            contribs = self.booster.predict(matrix, pred_contribs=True)[:, :-1]  # last column: the bias
            for name, values in reasons(contribs, self.preprocessor.required_columns, k).items():
                out[name] = values
        return out


def reasons(contribs: np.ndarray, names: list[str], k: int) -> dict[str, np.ndarray]:
    """The ``k`` largest absolute contributions per row: ``reason_i`` (names), ``contribution_i``."""
    k = min(k, contribs.shape[1])
    # argsort of -|c| is stable: ties go to the earlier feature.
    order = np.argsort(-np.abs(contribs), axis=1, kind="stable")[:, :k]
    labels = np.asarray(names, dtype=object)
    out: dict[str, np.ndarray] = {}
    for i in range(k):
        out[f"reason_{i + 1}"] = labels[order[:, i]]
        out[f"contribution_{i + 1}"] = np.take_along_axis(contribs, order[:, i:i + 1], axis=1)[:, 0].astype(
            np.float64)
    return out
