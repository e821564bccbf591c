"""How sure is a figure? Speaker-level (cluster) bootstrap intervals and paired tests.

The clips of one speaker are not independent: a speaker who is easy to read
makes all of their clips easy. Resampling clips as if they were independent
gives intervals that are too narrow, so everything here resamples **speakers**
(clusters) with replacement and recomputes the metric on all their clips.

:func:`bootstrap_interval`
    Percentile interval of one metric.
:func:`paired_difference`
    Two runs scored on the same clips: interval of the difference ``B - A`` by
    a paired cluster bootstrap (the same speakers drawn for both runs), and a
    two-sided p-value from a cluster-level paired permutation test (A and B
    swapped within each speaker at random).
:func:`result_intervals`
    UAR and accuracy intervals of a result dict's pooled predictions.
:func:`compare_results`
    Two result dicts matched clip by clip (by path), then :func:`paired_difference`.

``metric`` is either a name of :data:`METRICS` (``"uar"``, ``"accuracy"``:
vectorised, through per-speaker confusion counts; the same numbers as
:func:`emovox.evaluation.metrics.compute_metrics`, UAR over the classes present
in the truth of each resample) or any callable ``metric(y_true, y_pred) ->
float`` (e.g. CCC of a regression), evaluated once per resample.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from emovox.errors import ConfigError
from emovox.evaluation.metrics import accuracy_of_confusion, compute_metrics, uar_of_confusion
from emovox.registry import Registry

__all__ = ["FEW_SPEAKERS", "METRICS", "bootstrap_interval", "compare_results", "paired_difference", "result_intervals"]

Metric = Callable[[np.ndarray, np.ndarray], float]

#: Below this many speakers a bootstrap interval is rough (few distinct resamples); reports say so.
FEW_SPEAKERS = 10

_METRICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {}

#: Metrics with a vectorised bootstrap: name -> ``f(confusions) -> values``,
#: ``confusions`` of shape ``(..., n_classes, n_classes)`` (row = truth).
METRICS = Registry("metric", lookup_error=ConfigError, modules=(), entries=lambda: _METRICS)


METRICS.register("uar", uar_of_confusion)
METRICS.register("accuracy", accuracy_of_confusion)


def _check_level(level: float, n_boot: int) -> None:
    if not 0.0 < level < 1.0:
        raise ConfigError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")
    if int(n_boot) < 1:
        raise ConfigError(f"n_boot must be at least 1, got {n_boot}")


def _codes(values: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of ``values`` and the sorted distinct values."""
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0:
        raise ConfigError(f"{name} must be a non-empty 1-D sequence, got shape {array.shape}")
    uniques, codes = np.unique(array.astype(str) if array.dtype == object else array, return_inverse=True)
    return codes.reshape(-1), uniques


def _prepare(
    y_true: ArrayLike, preds: Sequence[ArrayLike], clusters: ArrayLike
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, int]:
    """Arrays of equal length; cluster codes ``(n,)`` and the number of clusters."""
    y_true = np.asarray(y_true)
    arrays = [np.asarray(p) for p in preds]
    cluster_codes, uniques = _codes(clusters, "clusters")
    n = len(cluster_codes)
    if y_true.shape != (n,) or any(p.shape != (n,) for p in arrays):
        raise ConfigError(
            f"y_true, predictions and clusters must be 1-D of one length; got {y_true.shape}, "
            f"{[p.shape for p in arrays]} and {n} clusters entries"
        )
    return y_true, arrays, cluster_codes, len(uniques)


def _cluster_confusions(
    y_true: np.ndarray, y_pred: np.ndarray, label_codes: Mapping, clusters: np.ndarray, n_clusters: int
) -> np.ndarray:
    """Per-cluster confusion counts, shape ``(n_clusters, c, c)``."""
    c = len(label_codes)
    t = np.array([label_codes[v] for v in y_true.tolist()], dtype=np.int64)
    p = np.array([label_codes[v] for v in y_pred.tolist()], dtype=np.int64)
    flat = np.bincount((clusters * c + t) * c + p, minlength=n_clusters * c * c)
    return flat.reshape(n_clusters, c, c).astype(float)


def _resolve(metric: str | Metric) -> Callable[[np.ndarray], np.ndarray] | None:
    """The vectorised function of a metric name; ``None`` for a callable."""
    if isinstance(metric, str):
        return METRICS.get(metric)
    if not callable(metric):
        raise ConfigError(f"metric must be one of {', '.join(METRICS.names())} or a callable, got {metric!r}")
    return None


def _estimate(metric: str | Metric, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The metric on all clips (for named metrics: through :func:`compute_metrics`)."""
    if isinstance(metric, str):
        classes = np.unique(np.concatenate([y_true.astype(str), y_pred.astype(str)]))
        index = {c: i for i, c in enumerate(classes.tolist())}
        truth = np.array([index[v] for v in y_true.astype(str).tolist()])
        pred = np.array([index[v] for v in y_pred.astype(str).tolist()])
        return float(compute_metrics(truth, pred, classes=classes.tolist())[metric])
    return float(metric(y_true, y_pred))


def _weights(rng: np.random.Generator, n_boot: int, n_clusters: int) -> np.ndarray:
    """How often each cluster is drawn in each resample, shape ``(n_boot, n_clusters)``."""
    return rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_boot).astype(float)


def _replicates(
    metric: str | Metric,
    y_true: np.ndarray,
    preds: list[np.ndarray],
    clusters: np.ndarray,
    n_clusters: int,
    weights: np.ndarray,
) -> list[np.ndarray]:
    """Metric of each prediction array under each resample: ``len(preds)`` arrays of ``(n_boot,)``."""
    fast = _resolve(metric)
    if fast is not None:
        labels = np.unique(np.concatenate([y_true.astype(str)] + [p.astype(str) for p in preds]))
        codes = {v: i for i, v in enumerate(labels.tolist())}
        truth = y_true.astype(str)
        out = []
        for pred in preds:
            cm = _cluster_confusions(truth, pred.astype(str), codes, clusters, n_clusters)
            summed = weights @ cm.reshape(n_clusters, -1)  # (n_boot, c*c): confusion of each resample
            out.append(fast(summed.reshape(len(weights), *cm.shape[1:])))
        return out
    call = cast(Metric, metric)  # _resolve returns a function for every name (or raises): a callable here
    out = [np.empty(len(weights)) for _ in preds]
    for b, w in enumerate(weights.astype(np.int64)):
        rows = np.repeat(np.arange(len(clusters)), w[clusters])  # each drawn speaker's clips, w times
        for values, pred in zip(out, preds):
            values[b] = float(call(y_true[rows], pred[rows]))
    return out


def _percentiles(values: np.ndarray, level: float) -> tuple[float | None, float | None]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None, None
    low, high = np.quantile(finite, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(low), float(high)


def _interval(estimate: float, values: np.ndarray | None, level: float, n_boot: int, n_clusters: int) -> dict:
    low, high = _percentiles(values, level) if values is not None else (None, None)
    return {
        "estimate": estimate,
        "low": low,
        "high": high,
        "level": level,
        "n_boot": int(n_boot),
        "n_clusters": int(n_clusters),
        "method": "speaker (cluster) percentile bootstrap"
        if values is not None
        else "none: one speaker, no speaker-level interval",
    }


def bootstrap_interval(
    metric: str | Metric,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    clusters: ArrayLike,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Percentile interval of a metric by resampling clusters (speakers) with replacement.

    Parameters
    ----------
    metric : str or callable
        A name of :data:`METRICS` (``"uar"``, ``"accuracy"``; labels may be
        strings or integers) or ``metric(y_true, y_pred) -> float`` called on
        the clips of each resample (NumPy arrays, as given).
    y_true, y_pred : array-like [shape=(n,)]
        Truth and prediction of every clip.
    clusters : array-like [shape=(n,)]
        Speaker (cluster) of every clip.
    n_boot : int
        Resamples.
    level : float
        Coverage of the interval, e.g. 0.95.
    seed : int
        Same seed, same data -> same interval.

    Returns
    -------
    dict
        ``estimate`` (the metric on all clips), ``low``, ``high`` (``None`` with
        a single speaker), ``level``, ``n_boot``, ``n_clusters``, ``method``.
        Resamples where a callable returns NaN are left out of the percentiles.
    """
    _check_level(level, n_boot)
    _resolve(metric)
    y_true, (y_pred,), clusters, k = _prepare(y_true, [y_pred], clusters)
    estimate = _estimate(metric, y_true, y_pred)
    if k < 2:
        return _interval(estimate, None, level, n_boot, k)
    weights = _weights(np.random.default_rng(seed), int(n_boot), k)
    (values,) = _replicates(metric, y_true, [y_pred], clusters, k, weights)
    return _interval(estimate, values, level, n_boot, k)


def _swap_patterns(rng: np.random.Generator, n_perm: int, k: int) -> tuple[np.ndarray, bool]:
    """Which clusters swap A and B, shape ``(n, k)``; every pattern when ``2**k <= n_perm`` (exact test)."""
    if k <= 20 and 2**k <= n_perm:
        patterns = (np.arange(2**k)[:, None] >> np.arange(k)[None, :]) & 1
        return patterns.astype(float), True
    return rng.integers(0, 2, size=(n_perm, k)).astype(float), False


def _permutation_stats(
    metric: str | Metric,
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    clusters: np.ndarray,
    k: int,
    swaps: np.ndarray,
) -> np.ndarray:
    """``metric(B') - metric(A')`` for each swap pattern."""
    fast = _resolve(metric)
    if fast is not None:
        labels = np.unique(np.concatenate([y_true.astype(str), pred_a.astype(str), pred_b.astype(str)]))
        codes = {v: i for i, v in enumerate(labels.tolist())}
        ca = _cluster_confusions(y_true.astype(str), pred_a.astype(str), codes, clusters, k).reshape(k, -1)
        cb = _cluster_confusions(y_true.astype(str), pred_b.astype(str), codes, clusters, k).reshape(k, -1)
        shape = (len(swaps), len(labels), len(labels))
        new_a = ((1 - swaps) @ ca + swaps @ cb).reshape(shape)
        new_b = (swaps @ ca + (1 - swaps) @ cb).reshape(shape)
        return fast(new_b) - fast(new_a)
    call = cast(Metric, metric)  # _resolve returns a function for every name (or raises): a callable here
    stats = np.empty(len(swaps))
    for i, pattern in enumerate(swaps.astype(bool)):
        swap = pattern[clusters]
        new_a, new_b = np.where(swap, pred_b, pred_a), np.where(swap, pred_a, pred_b)
        stats[i] = float(call(y_true, new_b)) - float(call(y_true, new_a))
    return stats


def paired_difference(
    metric: str | Metric,
    y_true: ArrayLike,
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    clusters: ArrayLike,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    n_permutations: int | None = None,
) -> dict:
    """Difference ``metric(B) - metric(A)`` of two runs on the same clips: interval and p-value.

    Parameters
    ----------
    metric : str or callable
        As in :func:`bootstrap_interval`.
    y_true, pred_a, pred_b : array-like [shape=(n,)]
        Truth and the two runs' predictions, clip by clip.
    clusters : array-like [shape=(n,)]
        Speaker of every clip.
    n_boot : int
        Paired resamples (the same speakers drawn for A and B).
    level : float
    seed : int
    n_permutations : int, optional
        Random swap patterns of the permutation test (default ``n_boot``).
        When ``2 ** n_clusters`` is not larger, every pattern is enumerated and
        the test is exact.

    Returns
    -------
    dict
        ``difference`` (B - A on all clips), ``low``, ``high``, ``p_value``
        (two-sided; random patterns: ``(1 + #{|d*| >= |d|}) / (1 + n)``; exact:
        the share of all patterns, the identity included), ``n_permutations``,
        ``exact``, ``level``, ``n_boot``, ``n_clusters``, ``method``, and
        ``a`` / ``b``: each run's :func:`bootstrap_interval` (same resamples).
    """
    _check_level(level, n_boot)
    n_perm = int(n_boot if n_permutations is None else n_permutations)
    if n_perm < 1:
        raise ConfigError(f"n_permutations must be at least 1, got {n_permutations}")
    _resolve(metric)
    y_true, (pred_a, pred_b), clusters, k = _prepare(y_true, [pred_a, pred_b], clusters)
    est_a, est_b = _estimate(metric, y_true, pred_a), _estimate(metric, y_true, pred_b)
    difference = est_b - est_a
    boot_rng, perm_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    if k < 2:
        values_a = values_b = diff = None
    else:
        weights = _weights(boot_rng, int(n_boot), k)
        values_a, values_b = _replicates(metric, y_true, [pred_a, pred_b], clusters, k, weights)
        diff = values_b - values_a
    swaps, exact = _swap_patterns(perm_rng, n_perm, k)
    stats = _permutation_stats(metric, y_true, pred_a, pred_b, clusters, k, swaps)
    extreme = int(np.sum(np.abs(stats) >= abs(difference) - 1e-12))
    p_value = extreme / len(swaps) if exact else (1 + extreme) / (1 + len(swaps))
    interval = _interval(difference, diff, level, n_boot, k)
    return {
        "difference": difference,
        "low": interval["low"],
        "high": interval["high"],
        "p_value": float(min(1.0, p_value)),
        "n_permutations": len(swaps),
        "exact": exact,
        "level": level,
        "n_boot": int(n_boot),
        "n_clusters": k,
        "method": (
            "paired speaker (cluster) percentile bootstrap; "
            f"{'exact' if exact else 'random'} speaker-level paired permutation test"
        ),
        "a": _interval(est_a, values_a, level, n_boot, k),
        "b": _interval(est_b, values_b, level, n_boot, k),
    }


def _prediction_arrays(predictions: Sequence[Mapping]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        truth = np.array([str(p["true"]) for p in predictions], dtype=object)
        pred = np.array([str(p["predicted"]) for p in predictions], dtype=object)
        speakers = np.array([str(p["speaker"]) for p in predictions], dtype=object)
    except (KeyError, TypeError):
        raise ConfigError(
            "each prediction needs 'speaker', 'true' and 'predicted': pass a result written by emovox evaluate"
        ) from None
    return truth, pred, speakers


def result_intervals(result: Mapping[str, Any], *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """UAR and accuracy intervals of a classification result's pooled predictions.

    Parameters
    ----------
    result : dict
        With ``predictions``: dicts holding ``speaker``, ``true``, ``predicted``
        (what :func:`emovox.evaluation.experiment.run_experiment` returns).
    n_boot, level, seed
        As in :func:`bootstrap_interval`; both metrics use the same resamples.

    Returns
    -------
    dict
        ``{"uar": interval, "accuracy": interval}`` (see :func:`bootstrap_interval`).
    """
    if result.get("task") == "regression":
        raise ConfigError(
            "result_intervals is for classification results; give a regression metric (e.g. CCC) to bootstrap_interval"
        )
    predictions = result.get("predictions")
    if not predictions:
        raise ConfigError("the result has no 'predictions': pass a result written by emovox evaluate")
    return _intervals_of(*_prediction_arrays(predictions), n_boot=n_boot, level=level, seed=seed)


def _intervals_of(
    truth: np.ndarray, pred: np.ndarray, speakers: np.ndarray, *, n_boot: int, level: float, seed: int
) -> dict:
    """UAR and accuracy intervals of one set of clips, from one set of resamples."""
    _check_level(level, n_boot)
    truth, (pred,), clusters, k = _prepare(truth, [pred], speakers)
    names = ("uar", "accuracy")
    if k < 2:
        return {m: _interval(_estimate(m, truth, pred), None, level, n_boot, k) for m in names}
    weights = _weights(np.random.default_rng(seed), int(n_boot), k)
    labels = np.unique(np.concatenate([truth.astype(str), pred.astype(str)]))
    cm = _cluster_confusions(
        truth.astype(str), pred.astype(str), {v: i for i, v in enumerate(labels.tolist())}, clusters, k
    )
    summed = (weights @ cm.reshape(k, -1)).reshape(len(weights), *cm.shape[1:])
    return {m: _interval(_estimate(m, truth, pred), METRICS.get(m)(summed), level, n_boot, k) for m in names}


def _clip_paths(predictions: Sequence[Mapping], name: str) -> list | None:
    """Clip paths of a run's predictions; ``None`` when it records none; an error when some lack one."""
    paths = [p.get("path") for p in predictions]
    if all(p is None for p in paths):
        return None
    if any(p is None for p in paths):
        raise ConfigError(f"run {name} records a path for some clips but not all: cannot match its clips")
    seen: set = set()
    for path in paths:
        if path in seen:
            raise ConfigError(f"run {name} tested clip {path!r} more than once: cannot match its clips one to one")
        seen.add(path)
    return paths


def _match(pred_a: Sequence[Mapping], pred_b: Sequence[Mapping], intersect: bool) -> tuple[list, list, str, dict]:
    """Indices into A and B of the same clips, how they were matched, and what was left out."""
    paths_a, paths_b = _clip_paths(pred_a, "A"), _clip_paths(pred_b, "B")
    if paths_a is None and paths_b is None:
        if len(pred_a) != len(pred_b):
            raise ConfigError(
                f"neither run records clip paths and they tested {len(pred_a)} and {len(pred_b)} "
                "clips: cannot match clips"
            )
        return list(range(len(pred_a))), list(range(len(pred_b))), "position", {"only_a": 0, "only_b": 0}
    if paths_a is None or paths_b is None:
        raise ConfigError(
            f"run {'A' if paths_a is None else 'B'} records no clip paths and the other does: cannot match clips"
        )
    where_b = {p: i for i, p in enumerate(paths_b)}
    idx_a = [i for i, p in enumerate(paths_a) if p in where_b]
    idx_b = [where_b[paths_a[i]] for i in idx_a]
    left = {"only_a": len(paths_a) - len(idx_a), "only_b": len(paths_b) - len(idx_b)}
    if not idx_a:
        raise ConfigError(
            f"runs A and B share no clips ({len(paths_a)} and {len(paths_b)} clips, no path in "
            "common): compare runs tested on the same data"
        )
    if (left["only_a"] or left["only_b"]) and not intersect:
        raise ConfigError(
            f"runs A and B were tested on different clips ({left['only_a']} only in A, "
            f"{left['only_b']} only in B, {len(idx_a)} shared): use --intersect to compare "
            "on the shared clips"
        )
    return idx_a, idx_b, "path", left


def compare_results(
    result_a: Mapping[str, Any],
    result_b: Mapping[str, Any],
    *,
    metric: str = "uar",
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    intersect: bool = False,
) -> dict:
    """Paired comparison of two classification results on the clips both tested.

    Clips are matched by ``path``; by position only when neither result
    records paths and both tested as many clips (``matched_by`` says which).

    Parameters
    ----------
    result_a, result_b : dict
        Results of :func:`emovox.evaluation.experiment.run_experiment` (or
        their ``result.json``).
    metric : str
        A name of :data:`METRICS`.
    n_boot, level, seed
        As in :func:`paired_difference`.
    intersect : bool
        Compare on the shared clips when the clip sets differ (else an error).

    Returns
    -------
    dict
        ``metric``, ``matched_by``, ``n_clips``, ``n_speakers``, ``only_a``,
        ``only_b`` (clips left out), ``a`` and ``b`` (each run's interval on
        the compared clips) and ``difference`` (B - A: ``estimate``, ``low``,
        ``high``, ``p_value``, ``n_permutations``, ``exact``, ``method``, …).
    """
    METRICS.get(metric)
    predictions = []
    for name, result in (("A", result_a), ("B", result_b)):
        if result.get("task") == "regression":
            raise ConfigError(
                f"run {name} is a regression result: compare handles classification ({', '.join(METRICS.names())})"
            )
        if not result.get("predictions"):
            raise ConfigError(f"run {name} has no per-clip predictions: give a result.json written by emovox evaluate")
        predictions.append(result["predictions"])
    idx_a, idx_b, matched_by, left = _match(predictions[0], predictions[1], intersect)
    truth_a, pred_a, speakers = (a[idx_a] for a in _prediction_arrays(predictions[0]))
    truth_b, pred_b, speakers_b = (b[idx_b] for b in _prediction_arrays(predictions[1]))
    moved = np.flatnonzero(speakers != speakers_b)
    if moved.size:
        i = int(moved[0])
        raise ConfigError(
            f"the runs give the same clip different speakers ({speakers[i]!r} in A, {speakers_b[i]!r} in B; "
            f"{moved.size} clips, matched by {matched_by}): they are not runs on the same data"
        )
    differ = np.flatnonzero(truth_a != truth_b)
    if differ.size:
        i = int(differ[0])
        raise ConfigError(
            f"the runs label the same clip differently ({truth_a[i]!r} in A, {truth_b[i]!r} in B; "
            f"{differ.size} clips): they use different label schemes or targets"
        )
    paired = paired_difference(metric, truth_a, pred_a, pred_b, speakers, n_boot=n_boot, level=level, seed=seed)
    a, b = paired.pop("a"), paired.pop("b")
    paired["estimate"] = paired.pop("difference")
    return {
        "metric": metric,
        "matched_by": matched_by,
        "n_clips": len(idx_a),
        "n_speakers": len(set(speakers.tolist())),
        **left,
        "a": a,
        "b": b,
        "difference": paired,
    }
