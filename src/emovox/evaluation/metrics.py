"""Classification metrics in plain NumPy: UAR first, accuracy beside it.

All functions take integer class indices into a fixed ``classes`` list, so a
fold whose test set lacks a class still yields a full-size confusion matrix.

Classes absent from the truth
-----------------------------
A speaker-independent test fold can lack a class entirely (TurEV-DB actor
1157 recorded only *angry* and *sad*). Its recall is then undefined, so:

* per-class ``recall`` / ``f1`` / ``f2`` of such a class are ``None``
  (``precision`` too when it is also never predicted);
* **UAR and every macro average are taken over the classes present in the
  truth** (support > 0). Wrong predictions *of* an absent class are not lost:
  they lower the recall of the true class they were taken from;
* weighted averages weight by support, so absent classes weigh nothing;
* pooled metrics (all folds' predictions concatenated) normally contain every
  class; the fold mean of UAR averages the per-fold UARs as defined above.

Precision of a class that is present but never predicted is 0 (as
scikit-learn's ``zero_division=0``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from emovox.errors import ConfigError

__all__ = [
    "SUMMARY_METRICS",
    "accuracy_of_confusion",
    "compute_metrics",
    "confusion_matrix",
    "summarize_folds",
    "uar_of_confusion",
]

#: Scalar metrics summarised as mean ± std over folds, headline first.
SUMMARY_METRICS: tuple[str, ...] = (
    "uar",
    "accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "macro_f2",
    "weighted_precision",
    "weighted_recall",
    "weighted_f1",
    "weighted_f2",
)


def _check(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ConfigError(
            f"y_true and y_pred must be 1-D of equal length, got shapes {y_true.shape} and {y_pred.shape}"
        )
    if y_true.size == 0:
        raise ConfigError("cannot compute metrics on an empty test set")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.issubdtype(y.dtype, np.integer):
            raise ConfigError(f"{name} must hold integer class indices, got dtype {y.dtype}")
        if y.min() < 0 or y.max() >= n_classes:
            raise ConfigError(
                f"{name} holds class index {int(y.min() if y.min() < 0 else y.max())}, "
                f"outside 0..{n_classes - 1} for {n_classes} classes"
            )
    return y_true.astype(np.int64), y_pred.astype(np.int64)


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, *, n_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class).

    Parameters
    ----------
    y_true, y_pred : np.ndarray [shape=(n,), dtype=int]
        Class indices in ``0 .. n_classes-1``.
    n_classes : int

    Returns
    -------
    np.ndarray [shape=(n_classes, n_classes), dtype=int64]
        Row = true class, column = predicted class.
    """
    y_true, y_pred = _check(y_true, y_pred, n_classes)
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num, dtype=float)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _fbeta(precision: np.ndarray, recall: np.ndarray, beta: float) -> np.ndarray:
    b2 = beta * beta
    return _ratio((1 + b2) * precision * recall, b2 * precision + recall)


def compute_metrics(y_true: ArrayLike, y_pred: ArrayLike, *, classes: Sequence[str]) -> dict:
    """Accuracy, UAR, macro/weighted precision, recall, F1, F2, per class, confusion.

    Parameters
    ----------
    y_true, y_pred : np.ndarray [shape=(n,), dtype=int]
        Class indices into ``classes``.
    classes : sequence of str [shape=(n_classes,)]
        Class names in index order.

    Returns
    -------
    dict
        JSON-ready: ``n``, ``accuracy``, ``uar``, ``macro_{precision,recall,f1,f2}``,
        ``weighted_{precision,recall,f1,f2}``, ``classes_present`` (names with
        support > 0), ``per_class`` (name -> ``support``, ``predicted``,
        ``precision``, ``recall``, ``f1``, ``f2``; ``None`` where undefined) and
        ``confusion`` (list of rows; row = truth). See the module docstring for
        classes absent from the truth.
    """
    classes = [str(c) for c in classes]
    if not classes:
        raise ConfigError("classes is empty: give the class names in index order")
    cm = confusion_matrix(y_true, y_pred, n_classes=len(classes))
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm).astype(float)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _fbeta(precision, recall, 1.0)
    f2 = _fbeta(precision, recall, 2.0)

    present = support > 0
    weights = support / support.sum()
    result: dict = {
        "n": int(support.sum()),
        "accuracy": float(tp.sum() / support.sum()),
        "uar": float(uar_of_confusion(cm)),
    }
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1), ("f2", f2)):
        result[f"macro_{name}"] = float(values[present].mean())
        result[f"weighted_{name}"] = float(np.sum(values * weights))
    result["classes_present"] = [c for c, p in zip(classes, present) if p]
    result["per_class"] = {
        c: {
            "support": int(support[i]),
            "predicted": int(predicted[i]),
            "precision": float(precision[i]) if (support[i] or predicted[i]) else None,
            "recall": float(recall[i]) if support[i] else None,
            "f1": float(f1[i]) if support[i] else None,
            "f2": float(f2[i]) if support[i] else None,
        }
        for i, c in enumerate(classes)
    }
    result["confusion"] = cm.tolist()
    return result


def uar_of_confusion(cm: np.ndarray) -> np.ndarray:
    """Unweighted average recall of confusion counts: the one UAR formula of emovox.

    Parameters
    ----------
    cm : np.ndarray [shape=(..., n_classes, n_classes)]
        Counts of (true, predicted); leading axes are batches (e.g. bootstrap resamples).

    Returns
    -------
    np.ndarray [shape=(...)]
        Mean recall over the classes present in the truth (support > 0).
    """
    support = cm.sum(axis=-1)
    hits = np.diagonal(cm, axis1=-2, axis2=-1)
    present = support > 0
    recall = np.divide(hits, support, out=np.zeros(hits.shape, dtype=float), where=present)
    return recall.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def accuracy_of_confusion(cm: np.ndarray) -> np.ndarray:
    """Share of correct predictions of confusion counts ``(..., n_classes, n_classes)`` -> ``(...)``."""
    total = cm.sum(axis=(-2, -1))
    return np.diagonal(cm, axis1=-2, axis2=-1).sum(axis=-1) / np.maximum(total, 1)


def summarize_folds(fold_metrics: Sequence[Mapping], names: Sequence[str] = SUMMARY_METRICS) -> dict:
    """Mean and standard deviation of scalar metrics over folds.

    Parameters
    ----------
    fold_metrics : sequence of dict
        Outputs of :func:`compute_metrics` (or of
        :func:`emovox.evaluation.regression_metrics.compute_regression_metrics`), one per fold.
    names : sequence of str
        The metrics to summarise (default :data:`SUMMARY_METRICS`).

    Returns
    -------
    dict
        ``metric -> {"mean", "std", "min", "max", "n_folds"}``; ``std`` is the
        sample standard deviation (``ddof=1``), 0 for a single fold. A fold
        where a metric is undefined (``None`` or NaN, e.g. Pearson r of a
        constant prediction) is left out of that metric and of its
        ``n_folds``; a metric defined in no fold has NaN entries.
    """
    if not fold_metrics:
        raise ConfigError("no folds to summarise")
    summary = {}
    for name in names:
        values = np.array([float(m[name]) for m in fold_metrics if m.get(name) is not None])
        values = values[np.isfinite(values)]
        if values.size == 0:
            summary[name] = {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan, "n_folds": 0}
            continue
        summary[name] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "min": float(values.min()),
            "max": float(values.max()),
            "n_folds": int(values.size),
        }
    return summary
