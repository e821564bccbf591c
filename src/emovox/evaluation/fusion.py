"""Late fusion: one result from the class probabilities of several runs on the same clips.

Each member is a result dict (as :func:`emovox.evaluation.experiment.run_experiment`
returns and ``result.json`` stores) whose predictions carry per-class
``scores`` (the workbench classifiers store probabilities). The fused score
of a clip is the weighted mean of the members' scores; the fused prediction
is its arg-max. The members must have tested the same clips under the same
folds with the same classes, so the fused run is as speaker-independent as
its members.

Weights are given, never learned here: a weight chosen by looking at the test
folds' figures would leak the test speakers into the fused figure. Equal
weights (``method="mean"``) are the honest default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

import numpy as np

from emovox._version import __version__
from emovox.errors import ConfigError
from emovox.evaluation.metrics import compute_metrics, summarize_folds
from emovox.evaluation.uncertainty import result_intervals

__all__ = ["FUSION_METHODS", "fuse_results"]

#: ``mean``: equal weights; ``weighted``: the given weights, normalised to sum 1.
FUSION_METHODS: tuple[str, ...] = ("mean", "weighted")


def _clip_key(entry: Mapping, position: int) -> tuple:
    """A clip's identity in a result: its fold and path (position when there is no path)."""
    return (entry["fold"], entry.get("path", position))


def _member_scores(result: Mapping, name: str, order: list[tuple], classes: list[str]) -> np.ndarray:
    """Scores ``(n_clips, n_classes)`` of one member, rows in ``order``."""
    rows: dict[tuple, np.ndarray] = {}
    for position, entry in enumerate(result["predictions"]):
        scores = entry.get("scores")
        if scores is None:
            raise ConfigError(
                f"run {name!r} stored no class scores, so it cannot be fused; "
                "use a model that gives probabilities (every workbench classifier does)"
            )
        rows[_clip_key(entry, position)] = np.array([float(scores[c]) for c in classes])
    missing = [key for key in order if key not in rows]
    if missing or len(rows) != len(order):
        raise ConfigError(
            f"run {name!r} tested other clips than the first member "
            f"({len(missing)} of {len(order)} missing); fuse runs of the same data and protocol"
        )
    return np.stack([rows[key] for key in order])


def fuse_results(
    results: Sequence[Mapping],
    *,
    names: Sequence[str] | None = None,
    method: str = "mean",
    weights: Sequence[float] | None = None,
) -> dict:
    """Fuse runs by the weighted mean of their class scores.

    Parameters
    ----------
    results : sequence of dict
        Two or more result dicts on the same clips, folds and classes.
    names : sequence of str, optional
        Member names recorded in the fused result (default ``run1``, ``run2``…).
    method : {"mean", "weighted"}
    weights : sequence of float, optional
        One non-negative weight per member, for ``"weighted"``.

    Returns
    -------
    dict
        A result dict of the same shape (``folds`` with metrics, ``summary``,
        ``pooled``, ``predictions`` with the fused ``scores``), its ``config``
        naming the members, method and weights; ``model`` is ``"fusion"``.
    """
    if len(results) < 2:
        raise ConfigError(f"fusion needs at least 2 runs, got {len(results)}")
    names = list(names) if names is not None else [f"run{i + 1}" for i in range(len(results))]
    if len(names) != len(results):
        raise ConfigError("give one name per fused run")
    if method not in FUSION_METHODS:
        raise ConfigError(f"unknown fusion method {method!r}: expected one of {', '.join(FUSION_METHODS)}")
    if method == "mean":
        if weights is not None:
            raise ConfigError("fusion method 'mean' takes no weights; use method 'weighted'")
        weights = [1.0] * len(results)
    elif weights is None or len(weights) != len(results):
        raise ConfigError(f"fusion method 'weighted' needs one weight per run ({len(results)})")
    w = np.asarray(weights, dtype=np.float64)
    if not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise ConfigError(f"fusion weights must be non-negative with a positive sum, got {list(weights)}")
    w = w / w.sum()

    for name, result in zip(names, results):
        if result.get("task") == "regression" or "classes" not in result:
            raise ConfigError(
                f"run {name!r} is not a classification result: fusion averages class "
                "probabilities, so it fuses classification runs only"
            )
    first = results[0]
    classes = list(first["classes"])
    for name, result in zip(names, results):
        if list(result["classes"]) != classes:
            raise ConfigError(
                f"run {name!r} has classes {list(result['classes'])}, the first run {classes}; "
                "fuse runs with the same label scheme"
            )
    order = [_clip_key(entry, i) for i, entry in enumerate(first["predictions"])]
    fused = sum(wi * _member_scores(r, n, order, classes) for wi, r, n in zip(w, results, names))
    predicted = fused.argmax(axis=1)
    index = {c: i for i, c in enumerate(classes)}
    truth = np.array([index[e["true"]] for e in first["predictions"]], dtype=np.int64)
    folds_of = np.array([e["fold"] for e in first["predictions"]], dtype=object)

    predictions = []
    for row, entry in enumerate(first["predictions"]):
        kept = {k: v for k, v in entry.items() if k not in ("predicted", "scores")}
        predictions.append(
            {**kept, "predicted": classes[predicted[row]], "scores": {c: float(s) for c, s in zip(classes, fused[row])}}
        )
    folds = []
    for fold in first["folds"]:
        mask = folds_of == fold["name"]
        folds.append(
            {
                **{k: fold[k] for k in ("name", "n_train", "n_test", "test_speakers", "speaker_overlap") if k in fold},
                "model": {"fusion_of": names},
                "metrics": compute_metrics(truth[mask], predicted[mask], classes=classes),
            }
        )
    config = {
        **{k: v for k, v in first.get("config", {}).items() if k not in ("model", "model_config", "features")},
        "model": "fusion",
        "fusion": {"members": names, "method": method, "weights": [round(float(x), 6) for x in w]},
    }
    result = {
        "emovox_version": __version__,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": config,
        "protocol": first.get("protocol", "custom"),
        "speaker_independent": all(bool(r.get("speaker_independent", False)) for r in results),
        "classes": classes,
        "n_samples": first.get("n_samples", len(predictions)),
        "folds": folds,
        "summary": summarize_folds([f["metrics"] for f in folds]),
        "pooled": compute_metrics(truth, predicted, classes=classes),
        "predictions": predictions,
    }
    result["intervals"] = result_intervals(result)
    return result
