"""Read a spec from YAML (or an already parsed mapping) into a :class:`Spec`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from tuning.errors import SpecError
from tuning.spec.format import validated
from tuning.spec.model import Spec
from tuning.spec.sagemaker import translate


def parse_spec(raw: Any, source: str = "<spec>") -> Spec:
    """Validate a mapping (already parsed YAML) into a :class:`Spec`.

    Raises:
        SpecError: one line naming ``source``, each YAML path, value and what is allowed.
    """
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: the spec must be a mapping of sections, got {type(raw).__name__}")
    if "tuner" in raw:  # the SageMaker tuning-job vocabulary, translated onto the same Spec
        raw = translate(raw, source)
    return validated(Spec, raw, source)


def load_spec(path: str | os.PathLike) -> Spec:
    """Read and validate a YAML spec file (safe loader: nothing in a spec is executed).

    Raises:
        SpecError: the file is missing, unreadable, not YAML, empty or not a valid spec.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found") from None
    except OSError as err:
        raise SpecError(f"{path}: cannot read spec ({err.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"{path}: not valid YAML{where}") from None
    if raw is None:
        raise SpecError(f"{path}: the spec is empty")
    return parse_spec(raw, source=str(path))
