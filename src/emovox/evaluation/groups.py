"""Per-group breakdown of a result, for bias checks: UAR per gender, per corpus, per speaker.

A model that reads women's anger well and men's badly can still post a good
pooled UAR. :func:`group_metrics` splits a result's pooled predictions by a
grouping (gender, corpus, speaker) and gives each group its clip and speaker
counts, UAR and accuracy (from :func:`emovox.evaluation.metrics.compute_metrics`
via :mod:`emovox.evaluation.uncertainty`) and a speaker-level bootstrap interval.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from emovox.errors import ConfigError
from emovox.evaluation.uncertainty import _intervals_of, _prediction_arrays
from emovox.registry import Registry

__all__ = ["GROUPINGS", "group_metrics"]

_GROUPINGS: dict[str, Callable[[Mapping], str]] = {}

#: Groupings: name -> ``key(prediction) -> group name``.
GROUPINGS = Registry("grouping", lookup_error=ConfigError, modules=(), entries=lambda: _GROUPINGS)


@GROUPINGS.register("gender")
def _gender(prediction: Mapping) -> str:
    return str(prediction.get("gender") or "unknown")


@GROUPINGS.register("corpus")
def _corpus(prediction: Mapping) -> str:
    corpus = prediction.get("corpus")
    if corpus:
        return str(corpus)
    speaker = str(prediction.get("speaker", ""))  # speaker keys are "corpus/speaker"
    return speaker.split("/", 1)[0] if "/" in speaker else "unknown"


@GROUPINGS.register("speaker")
def _speaker(prediction: Mapping) -> str:
    return str(prediction.get("speaker", "unknown"))


def group_metrics(
    result: Mapping[str, Any], by: str, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> list[dict]:
    """UAR and accuracy of each group of a result's pooled predictions, with intervals.

    Parameters
    ----------
    result : dict
        A classification result (``predictions`` with ``speaker``, ``true``,
        ``predicted``; ``gender`` / ``corpus`` where known).
    by : str
        ``"gender"``, ``"corpus"`` or ``"speaker"`` (:data:`GROUPINGS`). Clips
        without the attribute fall into the group ``"unknown"``.
    n_boot, level, seed
        Of the speaker-level bootstrap (:func:`emovox.evaluation.uncertainty.bootstrap_interval`).
        A group of one speaker (every group under ``"speaker"``) has no interval
        (``low``/``high`` are ``None``).

    Returns
    -------
    list of dict
        One per group, sorted by name: ``group``, ``n_clips``, ``n_speakers``,
        ``uar``, ``accuracy`` (floats), ``intervals`` (``{"uar": …, "accuracy": …}``).
    """
    key = GROUPINGS.get(by)
    predictions = result.get("predictions")
    if not predictions:
        raise ConfigError("the result has no 'predictions': pass a result written by emovox evaluate")
    truth, pred, speakers = _prediction_arrays(predictions)
    groups = np.array([key(p) for p in predictions], dtype=object)
    rows = []
    for name in sorted(set(groups.tolist())):
        mask = groups == name
        intervals = _intervals_of(truth[mask], pred[mask], speakers[mask], n_boot=n_boot, level=level, seed=seed)
        rows.append(
            {
                "group": name,
                "n_clips": int(mask.sum()),
                "n_speakers": len(set(speakers[mask].tolist())),
                "uar": intervals["uar"]["estimate"],
                "accuracy": intervals["accuracy"]["estimate"],
                "intervals": intervals,
            }
        )
    return rows
