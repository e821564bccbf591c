"""A result dict as strict JSON, and the one line that names it: shared by every report writer."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping

import numpy as np

__all__ = ["json_ready", "run_title", "to_json"]


def json_ready(value: object) -> object:
    """Make ``value`` strict-JSON-serialisable (NumPy scalars, arrays, NaN -> None)."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def to_json(result: Mapping) -> str:
    """The result as strict JSON text (NaN and infinities become ``null``)."""
    return json.dumps(json_ready(result), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def run_title(result: Mapping) -> str:
    """One line naming a result: model, feature set, target, corpora and protocol."""
    config = result.get("config", {})
    corpora = "+".join(config.get("corpora", [])) or "?"
    if config.get("test_corpus"):
        corpora += " -> " + "+".join(config["test_corpus"])
    model = config.get("model", "model")
    features = config.get("features") or (config.get("model_config") or {}).get("feature_set")
    if features:
        model += f" on {features}"
    target = result.get("target") or config.get("target") or "emotion"
    what = "" if target == "emotion" else f" predicting {target}"
    if result.get("task") == "regression":
        what += " (regression)"
    return f"{model}{what}, {corpora}, protocol {result.get('protocol', '?')}"
