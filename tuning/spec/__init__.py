"""The spec: one YAML file, validated into one typed :class:`Spec`.

``sections`` holds one pydantic model per YAML section, ``model`` the whole
:class:`Spec`, ``format`` the one error formatter, ``loading`` the YAML entry
points and ``sagemaker`` the translation of a SageMaker ``tuner:`` section.
Importing this package is cheap (pydantic, PyYAML, pandas; no Ray, no MLflow).
"""

from tuning.errors import SpecError
from tuning.spec.loading import load_spec, parse_spec
from tuning.spec.model import Spec, resolve_tracking_uri
from tuning.spec.sections import DEFAULT_STORAGE, DEFAULT_TRACKING_URI

__all__ = ["DEFAULT_STORAGE", "DEFAULT_TRACKING_URI", "Spec", "SpecError", "load_spec",
           "parse_spec", "resolve_tracking_uri"]
