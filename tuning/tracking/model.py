"""What a finished job hands over, on its parent run: the servable model and its lineage.

- ``model``: an MLflow pyfunc (:class:`trainables.serving.FraudModel`) that takes raw
  rows as the input file holds them and returns score, decision (and a calibrated
  probability, and reasons). Its signature is built from the raw file's columns:
  the features are required, the target and every other known column optional.
- ``booster``: the same booster as an MLflow XGBoost model, for
  ``mlflow.xgboost.load_model`` (features in, as the trials saw them).
- the data set (``mlflow.log_input``: source, digest, schema, split sizes) and a
  tag per leak / id flag; with ``tracking.register_as``, a registry version.

Checked against mlflow 3.17.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuning._mlflow_compat import use_tracking_uri
from tuning.errors import TrackingError
from tuning.spec import Spec
from tuning.tracking.tags import LEAK_TAG_PREFIX

logger = logging.getLogger(__name__)

MODEL_NAME = "model"
BOOSTER_NAME = "booster"
EXAMPLE_ROWS = 5
# The files the pyfunc's code needs, copied as a package of their own (code_paths):
# the model must load where neither `tuning` nor Ray is installed.
SERVING_MODULES = ("serving.py", "preprocess.py", "calibration.py")
# MLflow's "model from code": the file it runs when the model loads (a pickled
# instance would make MLflow warn about CloudPickle, and tie the model to this code).
MODEL_SCRIPT = """\
import mlflow.models

from trainables.serving import FraudModel

mlflow.models.set_model(FraudModel())
"""
_TAG_KEY_BAD = re.compile(r"[^\w\-. /]")


#: Rows of the input the MLflow data set record (schema, digest, profile) is built from.
DATASET_PROFILE_ROWS = 10_000
#: Raw rows read for a streamed (sharded, data-parallel) job's hand-over: the data set
#: record and the model's input example never need the whole table on the driver.
STREAMED_HEAD_ROWS = 10_000


def raw_frame(spec: Spec, data: Any = None) -> pd.DataFrame:
    """The job's input rows as read (file order): what ``Split.rows`` positions refer to.

    For a streamed job (``data.streamed``) only the head of the shards: enough rows for
    the input example (the first test rows) and the schema, never the whole table.
    """
    from trainables.data import make_synthetic, read_table

    if getattr(data, "streamed", False):
        from trainables.shards import head_rows

        example = data.test.rows[:EXAMPLE_ROWS] if data.test.rows is not None else []
        return head_rows(data, max(STREAMED_HEAD_ROWS, int(max(example, default=0)) + 1))
    d = spec.data
    if d.source == "file":
        return read_table(str(d.path), d.format)
    return make_synthetic(d.rows, d.fraud_rate, d.n_features, d.seed)


def flag_tags(flags: Any) -> dict[str, str]:
    """One parent-run tag per leak / id flag: ``tuning.leak.<column>`` = ``<kind>: <detail>``."""
    return {LEAK_TAG_PREFIX + _TAG_KEY_BAD.sub("_", f.column): f"{f.kind}: {f.detail}"[:5000] for f in flags}


def input_schema(raw: pd.DataFrame, required: list[str]) -> Any:
    """The pyfunc's input schema: every raw column, the ``required`` ones required.

    Types follow the file as read (``pd.read_csv(file)`` validates unchanged):
    integers ``long``, floats ``double``, text ``string``. MLflow converts int to
    long and float to double losslessly, but never float to long: a new file whose
    integer column holds a missing value is refused by signature enforcement
    (``tuning predict`` applies the model's own conversions and accepts it).
    """
    from mlflow.types.schema import ColSpec, Schema  # heavy: mlflow

    keep = set(required)
    return Schema([ColSpec(_mlflow_type(raw[c]), str(c), required=c in keep) for c in raw.columns])


def _mlflow_type(col: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(col):
        return "boolean"
    if pd.api.types.is_integer_dtype(col):
        return "long"
    if pd.api.types.is_float_dtype(col):
        return "double"
    if pd.api.types.is_datetime64_any_dtype(col):
        return "datetime"
    return "string"


def serving_code(folder: Path) -> Path:
    """Copy the pyfunc's modules into ``folder/trainables`` (a package of three modules)."""
    import trainables.serving

    package = folder / "trainables"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""The parts of trainables a deployed fraud model needs."""\n')
    source = Path(trainables.serving.__file__).parent
    for name in SERVING_MODULES:
        shutil.copy2(source / name, package / name)
    return package


def log_job_model(booster: Any, data: Any, raw: pd.DataFrame, threshold: float | None,
                  calibrator: dict[str, Any] | None = None, target: str | None = None) -> dict[str, str]:
    """Log the pyfunc ``model`` and the native ``booster`` in the active run.

    Returns:
        ``{"model": uri, "booster": uri}`` (``models:/`` URIs of the logged models).
    """
    import mlflow.pyfunc
    import mlflow.xgboost  # heavy: xgboost
    import xgboost as xgb
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import ParamSchema, ParamSpec

    from trainables.serving import (
        BOOSTER_ARTIFACT,
        EXPLAIN_PARAM,
        SERVING_ARTIFACT,
        SERVING_FILE,
        FraudModel,
        serving_config,
    )

    pre = data.preprocessor
    rows = data.test.rows[:EXAMPLE_ROWS] if data.test.rows is not None else np.arange(EXAMPLE_ROWS)
    example = raw.iloc[rows].reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        booster_file, serving_file = folder / "booster.ubj", folder / SERVING_FILE
        booster.save_model(str(booster_file))
        serving_file.write_text(json.dumps(serving_config(pre, threshold, calibrator, target), indent=1))
        model = FraudModel().load(booster_file, serving_file)
        output = model.predict(None, example)
        signature = ModelSignature(inputs=input_schema(raw, pre.required_columns),
                                   outputs=input_schema(output, list(output.columns)),
                                   params=ParamSchema([ParamSpec(EXPLAIN_PARAM, "long", 0)]))
        script = folder / "fraud_model.py"
        script.write_text(MODEL_SCRIPT)
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME, python_model=str(script),
            artifacts={BOOSTER_ARTIFACT: str(booster_file), SERVING_ARTIFACT: str(serving_file)},
            code_paths=[str(serving_code(folder / "code"))], signature=signature, input_example=example,
            pip_requirements=_requirements(), metadata={"threshold": threshold},
        )
        X = data.test.X.head(EXAMPLE_ROWS)
        # No input example: MLflow would validate it through the flavour's pyfunc, which
        # builds its DMatrix without enable_categorical and fails on category columns.
        native = mlflow.xgboost.log_model(
            booster, name=BOOSTER_NAME, model_format="ubj", metadata={"threshold": threshold},
            signature=infer_signature(X, booster.predict(xgb.DMatrix(X, enable_categorical=True))),
            # Inferring requirements loads the model in a subprocess (7-12 s a job);
            # the flavour's own list is what inference would find.
            pip_requirements=mlflow.xgboost.get_default_pip_requirements(),
        )
    return {MODEL_NAME: info.model_uri, BOOSTER_NAME: native.model_uri}


def _requirements() -> list[str]:
    """What the pyfunc imports, pinned to the versions it was logged with."""
    import mlflow
    import xgboost

    return [f"mlflow=={mlflow.__version__}", f"xgboost=={xgboost.__version__}",
            f"pandas=={pd.__version__}", f"numpy=={np.__version__}"]


def log_dataset(spec: Spec, data: Any, raw: pd.DataFrame) -> None:
    """``mlflow.log_input`` of the job's data on the active run, split sizes as input tags."""
    import mlflow.data  # heavy: mlflow

    d = spec.data
    if d.source == "file":
        name, source = Path(str(d.path)).name, str(d.path)
    else:
        name, source = f"synthetic-rows{d.rows}-seed{d.seed}", None  # None: the code is the source
    with warnings.catch_warnings():
        # Known and harmless with mlflow 3.17: it registers the local file source twice
        # and warns that a path matches both; its schema hint about integer columns is
        # for model signatures (input_schema handles that), not a data set's description.
        warnings.filterwarnings("ignore", "The specified dataset source can be interpreted", UserWarning)
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer", UserWarning)
        # MLflow's schema and digest walk every value in Python (79 s at 1M rows, measured):
        # the record describes the first rows; the fingerprint tag covers all of them.
        profiled = raw.iloc[:DATASET_PROFILE_ROWS]
        dataset = mlflow.data.from_pandas(profiled, source=source, targets=d.target, name=name)
        dataset.schema  # noqa: B018 - computed (and its hint silenced) here, not in log_input
    tags = {f"{split}_{what}": str(value) for split, part in (("train", data.train), ("val", data.val),
                                                             ("test", data.test))
            for what, value in (("rows", len(part.y)), ("positives", int(part.y.sum())))}
    tags.update(features=str(len(data.feature_names)), fingerprint=data.fingerprint)
    if len(profiled) < len(raw) or getattr(data, "streamed", False):
        tags.update(profiled_rows=str(len(profiled)))  # the record describes these first rows
    mlflow.log_input(dataset, context="training", tags=tags)


def register(client: Any, model_uri: str, name: str, alias: str, test_metrics: dict[str, float]) -> Any:
    """A new version of registered model ``name`` from ``model_uri``, with ``alias`` and test metrics as tags.

    Call it with the job's store as MLflow's tracking URI (``register_model`` reads it).
    """
    import mlflow  # heavy: mlflow

    tags = {f"test_{k}": repr(float(v)) for k, v in test_metrics.items()}
    version = mlflow.register_model(model_uri, name, tags=tags)
    client.set_registered_model_alias(name, alias, version.version)
    logger.info("registered model %s version %s (alias %s)", name, version.version, alias)
    return version


def hand_over(uri: str, run_id: str, spec: Spec, data: Any, booster: Any | None, threshold: float | None,
              test_metrics: dict[str, float], calibrator: dict[str, Any] | None = None) -> dict[str, str]:
    """Everything above on the parent run ``run_id``: flags, data set, model and booster, registry.

    ``booster`` None logs the lineage only (``tracking.log_model: false``).
    """
    import mlflow  # heavy: mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    for key, value in flag_tags(data.flags).items():
        client.set_tag(run_id, key, value)
    raw = raw_frame(spec, data)
    uris: dict[str, str] = {}
    with use_tracking_uri(uri):
        with mlflow.start_run(run_id=run_id):
            log_dataset(spec, data, raw)
            if booster is not None:
                uris = log_job_model(booster, data, raw, threshold, calibrator, spec.data.target)
        if booster is not None and spec.tracking.register_as:
            register(client, uris[MODEL_NAME], spec.tracking.register_as, spec.tracking.register_alias,
                     test_metrics)
    return uris


def load_model(uri: str, name_or_run_id: str) -> tuple[Any, str]:
    """The :class:`~trainables.serving.FraudModel` of a job (a name or a run id) and its parent run id.

    Raises:
        TrackingError: No such job, or a job without a model.
    """
    import mlflow.pyfunc  # heavy: mlflow
    from mlflow.exceptions import MlflowException

    from tuning.tracking.client import client_for
    from tuning.tracking.store import find_parent

    run_id = find_parent(client_for(uri), name_or_run_id).info.run_id
    try:
        with use_tracking_uri(uri):
            model = mlflow.pyfunc.load_model(f"runs:/{run_id}/{MODEL_NAME}")
    except MlflowException as err:
        raise TrackingError(f"run {run_id} has no loadable model (run with tracking.log_model: false, or "
                            f"still running?): {str(err).splitlines()[0][:200]}") from None
    return model.unwrap_python_model(), run_id
