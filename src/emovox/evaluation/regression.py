"""The fold runner for numeric targets: splits -> fit/predict per fold -> CCC-first result.

:func:`run_regression` is the regression twin of
:func:`emovox.evaluation.experiment.run_experiment`: the same splits (from
:mod:`emovox.evaluation.protocols`), the same ``fit_predict(train, test)``
contract on :class:`~emovox.evaluation.experiment.FoldData` (``y`` holds the
numeric target in its own unit; the model returns a float array or a
:class:`~emovox.evaluation.experiment.FoldOutput` of floats), and a result
dict of the same shape with ``task: "regression"``, regression metrics
(:mod:`emovox.evaluation.regression_metrics`, CCC first, MAE beside it) and
speaker-level bootstrap intervals of CCC and MAE.

:func:`target_bins` turns a continuous target into a few quantile bins, so
label-stratified protocols (speaker k-fold) can keep each fold's target
distribution close to the whole without treating every value as a class.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np

from emovox import __version__
from emovox.errors import ConfigError
from emovox.evaluation.protocols import Split, check_speaker_disjoint
from emovox.evaluation.regression_metrics import (
    ccc,
    compute_regression_metrics,
    mae,
    summarize_regression_folds,
)

__all__ = ["regression_intervals", "run_regression", "target_bins"]


def target_bins(y: Sequence[float] | np.ndarray, n_bins: int = 4) -> np.ndarray:
    """Integer bins of a numeric target, for stratified splitting.

    Parameters
    ----------
    y : array-like [shape=(n,)]
        Numeric target.
    n_bins : int
        At most this many bins.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=int64]
        A target with at most ``n_bins`` distinct values (an ordinal scale such as
        intensity 1/2/3) keeps one bin per value; otherwise bins are split at
        the target's quantiles.
    """
    target = np.asarray(y, dtype=np.float64)
    values, inverse = np.unique(target, return_inverse=True)
    if len(values) <= n_bins:
        return inverse.astype(np.int64)
    edges = np.unique(np.quantile(target, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, target, side="right").astype(np.int64)


def regression_intervals(result: Mapping, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Speaker-level bootstrap intervals of CCC and MAE over a regression result's predictions.

    Uses :func:`emovox.evaluation.uncertainty.bootstrap_interval` (speakers
    resampled with replacement).

    Returns
    -------
    dict
        ``{"ccc": {...}, "mae": {...}}``, each ``estimate``, ``low``, ``high``,
        ``level``, ``n_boot``, ``n_clusters``, ``method``.
    """
    from emovox.evaluation.uncertainty import bootstrap_interval

    rows = result["predictions"]
    truth = np.array([float(p["true"]) for p in rows])
    predicted = np.array([float(p["predicted"]) for p in rows])
    speakers = np.array([str(p["speaker"]) for p in rows], dtype=object)
    return {
        name: bootstrap_interval(metric, truth, predicted, speakers, n_boot=n_boot, level=level, seed=seed)
        for name, metric in (("ccc", ccc), ("mae", mae))
    }


def _predicted(raw: Any, n_test: int, fold: str) -> tuple[np.ndarray, dict]:
    from emovox.evaluation.experiment import FoldOutput

    info: dict = {}
    if isinstance(raw, FoldOutput):
        raw, info = raw.predicted, dict(raw.info)
    predicted = np.asarray(raw, dtype=np.float64)
    if predicted.shape != (n_test,):
        raise ConfigError(f"fold {fold}: the model returned {predicted.shape} predictions for {n_test} test samples")
    if not np.isfinite(predicted).all():
        raise ConfigError(f"fold {fold}: the model predicted non-finite values; check its features")
    return predicted, info


def run_regression(
    splits: Sequence[Split],
    fit_predict: Callable[[Any, Any], Any],
    *,
    y: np.ndarray,
    speakers: Sequence[str],
    X: np.ndarray | None = None,
    records: Sequence | None = None,
    target: str = "target",
    protocol: str = "custom",
    config: Mapping | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    intervals: bool = True,
    seed: int = 0,
) -> dict:
    """Train and test once per split; collect per-fold, summary and pooled regression metrics.

    Parameters
    ----------
    splits : sequence of Split
    fit_predict : callable
        ``fit_predict(train: FoldData, test: FoldData)``; ``train.y`` is the
        float target, ``test.y`` is ``None``. Returns predictions ``(n_test,)``
        or a :class:`~emovox.evaluation.experiment.FoldOutput`.
    y : np.ndarray [shape=(n,), dtype=float]
        Numeric target of every sample, in its own unit.
    speakers : sequence of str [shape=(n,)]
    X : np.ndarray [shape=(n, d)], optional
    records : sequence of Record [shape=(n,)], optional
    target : str
        Name of the target, recorded in the result.
    protocol : str
    config : dict, optional
        Recorded verbatim under ``"config"``.
    progress : callable, optional
        ``progress(fold_number, n_folds, fold_name)`` before each fold.
    intervals : bool
        Add 95 % speaker-level bootstrap intervals of pooled CCC and MAE.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``emovox_version``, ``created_utc``, ``config``, ``protocol``,
        ``speaker_independent``, ``task`` (``"regression"``), ``target``,
        ``n_samples``, ``folds`` (name, sizes, test speakers, overlap, seconds,
        model info, metrics), ``summary`` (mean ± std over folds), ``pooled``,
        ``predictions`` (fold, path, corpus, speaker, true, predicted) and
        ``intervals`` (``ccc``, ``mae``).
    """
    from emovox.evaluation.experiment import FoldData

    y = np.asarray(y, dtype=np.float64)
    speaker_keys = np.asarray([str(s) for s in speakers], dtype=object)
    n = len(y)
    if len(speaker_keys) != n or (X is not None and len(X) != n) or (records is not None and len(records) != n):
        raise ConfigError("y, speakers, X and records must all have one entry per sample")
    if not np.isfinite(y).all():
        raise ConfigError("the target holds non-finite values: drop those samples first")
    if not splits:
        raise ConfigError("no splits to evaluate")
    records = tuple(records) if records is not None else None

    def side(idx: np.ndarray, with_target: bool) -> FoldData:
        return FoldData(
            X=None if X is None else X[idx],
            y=y[idx] if with_target else None,
            records=None if records is None else tuple(records[i] for i in idx),
            speakers=speaker_keys[idx],
            classes=(),
        )

    folds: list[dict[str, Any]] = []
    predictions: list[dict[str, Any]] = []
    all_true: list[np.ndarray] = []
    all_pred: list[np.ndarray] = []
    for number, split in enumerate(splits, start=1):
        if len(split.test_idx) == 0 or len(split.train_idx) == 0:
            raise ConfigError(f"fold {split.name} has an empty training or test set")
        if progress is not None:
            progress(number, len(splits), split.name)
        started = time.perf_counter()
        raw = fit_predict(side(split.train_idx, True), side(split.test_idx, False))
        predicted, info = _predicted(raw, len(split.test_idx), split.name)
        truth = y[split.test_idx]
        folds.append(
            {
                "name": split.name,
                "n_train": int(len(split.train_idx)),
                "n_test": int(len(split.test_idx)),
                "n_train_speakers": int(len(set(speaker_keys[split.train_idx]))),
                "test_speakers": sorted(set(speaker_keys[split.test_idx])),
                "speaker_overlap": sorted(
                    set(check_speaker_disjoint(split, speaker_keys))
                    | set(map(str, info.get("speakers_seen_in_training", [])))
                ),
                "seconds": round(time.perf_counter() - started, 3),
                "model": info,
                "metrics": compute_regression_metrics(truth, predicted),
            }
        )
        for row, i in enumerate(split.test_idx):
            entry = {
                "fold": split.name,
                "speaker": speaker_keys[i],
                "true": float(truth[row]),
                "predicted": float(predicted[row]),
            }
            if records is not None:
                entry = {"path": str(records[i].path), "corpus": records[i].corpus, **entry}
            predictions.append(entry)
        all_true.append(truth)
        all_pred.append(predicted)

    result = {
        "emovox_version": __version__,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": dict(config or {}),
        "protocol": protocol,
        "speaker_independent": all(not f["speaker_overlap"] for f in folds),
        "task": "regression",
        "target": target,
        "n_samples": int(n),
        "folds": folds,
        "summary": summarize_regression_folds([f["metrics"] for f in folds]),
        "pooled": compute_regression_metrics(np.concatenate(all_true), np.concatenate(all_pred)),
        "predictions": predictions,
    }
    if intervals:
        result["intervals"] = regression_intervals(result, seed=seed)
    return result
