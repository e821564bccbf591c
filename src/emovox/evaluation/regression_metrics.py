"""Regression metrics in plain NumPy: CCC first, MAE beside it.

The concordance correlation coefficient (Lin 1989) is the headline of
continuous affect (arousal, valence, intensity): it is 1 only when the
predictions lie on the identity line, and drops both for a weak correlation
and for a shift or a shrinkage of the predictions, which Pearson's r ignores.

``CCC = 2·cov(t, p) / (var(t) + var(p) + (mean(t) − mean(p))²)``, with
population (``ddof=0``) moments.

Edge cases
----------
* predictions identical to the truth: 1 (even for a constant truth, where the
  formula is 0/0);
* constant predictions of a varying truth: 0 (no covariance);
* Pearson's r of a constant series is undefined: ``nan`` (``null`` in JSON);
  fold summaries average the folds where it is defined.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from emovox.errors import ConfigError

__all__ = [
    "REGRESSION_METRICS",
    "ccc",
    "compute_regression_metrics",
    "mae",
    "pearson_r",
    "rmse",
    "summarize_regression_folds",
]

#: Scalar metrics summarised as mean ± std over folds, headline first.
REGRESSION_METRICS: tuple[str, ...] = ("ccc", "mae", "rmse", "pearson_r")


def _check(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 1:
        raise ConfigError(f"y_true and y_pred must be 1-D of equal length, got shapes {t.shape} and {p.shape}")
    if t.size == 0:
        raise ConfigError("cannot compute metrics on an empty test set")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ConfigError("y_true and y_pred must be finite numbers (no NaN or infinity)")
    return t, p


def ccc(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Lin's concordance correlation coefficient, in [-1, 1].

    Parameters
    ----------
    y_true, y_pred : array-like [shape=(n,)]
        True and predicted values (same unit).

    Returns
    -------
    float
        1 for predictions equal to the truth; see the module docstring for
        constant series.
    """
    t, p = _check(y_true, y_pred)
    mt, mp = t.mean(), p.mean()
    cov = float(np.mean((t - mt) * (p - mp)))
    denominator = float(t.var() + p.var() + (mt - mp) ** 2)
    if denominator <= 0.0:  # both constant and equal: the predictions are the truth
        return 1.0
    return 2.0 * cov / denominator


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error, in the target's unit."""
    t, p = _check(y_true, y_pred)
    return float(np.mean(np.abs(p - t)))


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error, in the target's unit."""
    t, p = _check(y_true, y_pred)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def pearson_r(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Pearson correlation; ``nan`` when either series is constant."""
    t, p = _check(y_true, y_pred)
    st, sp = t.std(), p.std()
    if st == 0.0 or sp == 0.0:
        return float("nan")
    return float(np.mean((t - t.mean()) * (p - p.mean())) / (st * sp))


def compute_regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict:
    """CCC, MAE, RMSE, Pearson r and the moments behind them.

    Parameters
    ----------
    y_true, y_pred : array-like [shape=(n,)]

    Returns
    -------
    dict
        JSON-ready: ``n``, ``ccc``, ``mae``, ``rmse``, ``pearson_r`` (``nan``
        when undefined), ``bias`` (mean prediction − mean truth), ``true_mean``,
        ``true_std``, ``pred_mean``, ``pred_std`` (population std).
    """
    t, p = _check(y_true, y_pred)
    return {
        "n": int(t.size),
        "ccc": ccc(t, p),
        "mae": mae(t, p),
        "rmse": rmse(t, p),
        "pearson_r": pearson_r(t, p),
        "bias": float(p.mean() - t.mean()),
        "true_mean": float(t.mean()),
        "true_std": float(t.std()),
        "pred_mean": float(p.mean()),
        "pred_std": float(p.std()),
    }


def summarize_regression_folds(fold_metrics: Sequence[Mapping]) -> dict:
    """Mean ± std over folds of :data:`REGRESSION_METRICS` (:func:`~emovox.evaluation.metrics.summarize_folds`)."""
    from emovox.evaluation.metrics import summarize_folds

    return summarize_folds(fold_metrics, REGRESSION_METRICS)
