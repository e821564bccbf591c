"""Utterance-level functionals: statistics of frame features over time.

A frame-level feature matrix ``X`` of shape ``(n_features, frames)`` becomes one
vector by applying each statistic along the frame axis and concatenating, stat
by stat: ``[mean(X) (n_features,), std(X), ...]``, length
``n_features * len(stats)``.

Statistics (names accepted in ``stats``):

- ``"mean"``, ``"std"`` (population, ``ddof=0``), ``"min"``, ``"max"``;
- ``"pNN"``: the NN-th percentile (linear interpolation), e.g. ``"p10"``,
  ``"p50"`` (median), ``"p90"``;
- ``"range"``: ``max - min``;
- ``"slope"``: least-squares slope of a straight line fitted to each feature
  against the frame index, in feature units per frame (0 for one frame).

One frame is enough (std and slope are then 0); zero frames raise
:class:`~emovox.errors.FeatureError`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from emovox.errors import ConfigError, FeatureError

DEFAULT_STATS: tuple[str, ...] = ("mean", "std", "min", "max", "p10", "p50", "p90", "slope")
_PERCENTILE = re.compile(r"^p(\d{1,2}|100)$")


def check_stats(stats: Sequence[str]) -> tuple[str, ...]:
    """Validate statistic names; return them as a tuple."""
    stats = tuple(stats)
    if not stats:
        raise ConfigError("stats is empty; pass e.g. stats=('mean', 'std')")
    for s in stats:
        if s not in ("mean", "std", "min", "max", "range", "slope") and not _PERCENTILE.match(str(s)):
            raise ConfigError(
                f"unknown statistic {s!r}; use mean, std, min, max, range, slope or a percentile p0..p100 (e.g. 'p90')"
            )
    return stats


def functionals(x: np.ndarray, *, stats: Sequence[str] = DEFAULT_STATS) -> np.ndarray:
    """Statistics over frames of a feature matrix.

    Parameters
    ----------
    x : np.ndarray [shape=(n_features, frames)]
        Frame-level features.
    stats : sequence of str
        Statistics to compute, in output order (see the module docstring).

    Returns
    -------
    np.ndarray [shape=(n_features * len(stats),)], float32
        ``stats[0]`` of every feature, then ``stats[1]`` of every feature, ...
    """
    stats = check_stats(stats)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise FeatureError(f"expected features of shape (n_features, frames), got shape {x.shape}")
    if x.shape[1] == 0:
        raise FeatureError("feature matrix has 0 frames; the clip is too short for this feature")
    out = [_stat(x, s) for s in stats]
    return np.concatenate(out).astype(np.float32)


def functional_names(feature_names: Sequence[str], *, stats: Sequence[str] = DEFAULT_STATS) -> list[str]:
    """Names ``"<feature>_<stat>"`` in the order :func:`functionals` returns them."""
    return [f"{f}_{s}" for s in check_stats(stats) for f in feature_names]


def _stat(x: np.ndarray, name: str) -> np.ndarray:
    if name == "mean":
        return x.mean(axis=1)
    if name == "std":
        return x.std(axis=1)
    if name == "min":
        return x.min(axis=1)
    if name == "max":
        return x.max(axis=1)
    if name == "range":
        return x.max(axis=1) - x.min(axis=1)
    if name == "slope":
        t = np.arange(x.shape[1], dtype=np.float64)
        t -= t.mean()
        denom = float(np.dot(t, t))
        if denom == 0.0:
            return np.zeros(x.shape[0])
        return (x - x.mean(axis=1, keepdims=True)) @ t / denom
    return np.percentile(x, float(name[1:]), axis=1)
