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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from emovox.errors import ConfigError
from emovox.evaluation.protocols import Split
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
    from emovox.evaluation.folds import FoldOutput

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
    from emovox.evaluation.folds import fit_predict_folds, result_header

    y = np.asarray(y, dtype=np.float64)
    if not np.isfinite(y).all():
        raise ConfigError("the target holds non-finite values: drop those samples first")
    folds: list[dict[str, Any]] = []
    predictions: list[dict[str, Any]] = []
    all_true: list[np.ndarray] = []
    all_pred: list[np.ndarray] = []
    for run in fit_predict_folds(splits, fit_predict, y=y, speakers=speakers, X=X, records=records, progress=progress):
        split = run.split
        predicted, info = _predicted(run.raw, len(split.test_idx), split.name)
        truth = y[split.test_idx]
        folds.append(run.summary(info, compute_regression_metrics(truth, predicted)))
        predictions += [run.sample(i, float(truth[row]), float(predicted[row])) for row, i in enumerate(split.test_idx)]
        all_true.append(truth)
        all_pred.append(predicted)

    result = {
        **result_header(config, protocol, folds),
        "task": "regression",
        "target": target,
        "n_samples": len(y),
        "folds": folds,
        "summary": summarize_regression_folds([f["metrics"] for f in folds]),
        "pooled": compute_regression_metrics(np.concatenate(all_true), np.concatenate(all_pred)),
        "predictions": predictions,
    }
    if intervals:
        result["intervals"] = regression_intervals(result, seed=seed)
    return result
