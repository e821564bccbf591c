"""A result dict as strict JSON, and the one line that names it: shared by every report writer."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping

import numpy as np

__all__ = ["interval_text", "intervals_line", "json_ready", "run_title", "to_json"]


def interval_text(interval: Mapping | None, *, missing: str = "n/a") -> str:
    """``[0.581, 0.668]`` (3 decimals) of an interval dict with ``low`` and ``high``; ``missing`` without one."""
    if not interval or interval.get("low") is None or interval.get("high") is None:
        return missing
    return f"[{interval['low']:.3f}, {interval['high']:.3f}]"


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


def intervals_line(intervals: Mapping, first: tuple[str, str], second: tuple[str, str]) -> str:
    """``UAR 0.627 [0.581, 0.668], accuracy … (95 % CI, speaker bootstrap; N speakers, B resamples)``.

    ``first`` and ``second`` are (key in ``intervals``, label), e.g. ``("uar", "UAR")``;
    below :data:`~emovox.evaluation.uncertainty.FEW_SPEAKERS` speakers the line says the interval is rough.
    """
    from emovox.evaluation.uncertainty import FEW_SPEAKERS

    a, b = intervals[first[0]], intervals[second[0]]
    rough = "; few speakers, so the interval is rough" if a["n_clusters"] < FEW_SPEAKERS else ""
    return (
        f"{first[1]} {a['estimate']:.3f} {interval_text(a)}, {second[1]} {b['estimate']:.3f} {interval_text(b)} "
        f"({100 * a['level']:g} % CI, speaker bootstrap; {a['n_clusters']} speakers, {a['n_boot']} resamples"
        f"{rough})"
    )
