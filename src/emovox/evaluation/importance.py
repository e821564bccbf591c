"""Speaker-independent permutation feature importance: how much UAR falls when a feature is shuffled.

Over speaker-disjoint folds (:func:`emovox.evaluation.protocols.speaker_kfold`):

1. the model is fitted on the fold's training speakers (no test speaker is
   ever seen in fitting, scaling or tuning);
2. for each feature — or feature *group*, e.g. every functional of one
   low-level descriptor of ComParE — the group's columns are shuffled
   together among the fold's test rows (``n_repeats`` seeded permutations),
   breaking their link with the label while keeping their distribution;
3. the drop in UAR (:func:`emovox.evaluation.metrics.compute_metrics`)
   from the unshuffled test rows is recorded.

Mean and standard deviation of the drop are taken over folds × repeats.
A drop near 0 means the model does not rely on that feature *given the
others*: correlated features share their importance (shuffling one leaves
its twin), so a low score is not proof of irrelevance.

Fitting once per fold
---------------------
Models follow the evaluation layer's interface ``fit_predict(train, test)``,
which fits and predicts in one call. So that a fold is fitted once, the test
:class:`~emovox.evaluation.experiment.FoldData` stacks the unshuffled test
rows and every shuffled copy, and the predictions are split back. To bound
memory the stack is cut into chunks of at most ``max_cells`` values; each
chunk is one call (one fit) and carries its own unshuffled rows, so drops are
always measured against the very model that predicted them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emovox.errors import ConfigError
from emovox.evaluation.metrics import compute_metrics
from emovox.fileio import atomic_write_png, atomic_write_text

__all__ = ["ImportanceResult", "permutation_importance", "plot_importance", "GROUP_ABOVE"]

#: Feature sets wider than this are grouped by low-level descriptor by default.
GROUP_ABOVE = 200
#: Default bound on the values in one stacked test block (float64: 8 bytes each).
MAX_CELLS = 2**24


@dataclass
class ImportanceResult:
    """Permutation importance of each feature (group), most important first.

    Attributes
    ----------
    rows : list of dict
        ``feature`` (name or group), ``n_columns``, ``mean_drop``, ``std_drop``
        (UAR, fraction in [−1, 1]; over folds × repeats), ``n`` (drops averaged).
    baseline_uar : float
        Mean over folds of the unshuffled UAR.
    fold_uar : list of float
        Unshuffled UAR of each fold.
    config : dict
        Model, folds, repeats, seed, grouping, fits made.
    """

    rows: list[dict]
    baseline_uar: float
    fold_uar: list[float]
    config: dict = field(default_factory=dict)

    def to_csv(self) -> str:
        """``rank,feature,n_columns,mean_uar_drop,std_uar_drop,n`` lines, most important first."""
        lines = ["rank,feature,n_columns,mean_uar_drop,std_uar_drop,n"]
        for rank, r in enumerate(self.rows, start=1):
            name = (
                '"' + r["feature"].replace('"', '""') + '"'
                if ("," in r["feature"] or '"' in r["feature"])
                else r["feature"]
            )
            lines.append(f"{rank},{name},{r['n_columns']},{r['mean_drop']:.6f},{r['std_drop']:.6f},{r['n']}")
        return "\n".join(lines) + "\n"

    def write_csv(self, path: str | os.PathLike) -> Path:
        return atomic_write_text(Path(path), self.to_csv())


def _predicted(raw: Any) -> np.ndarray:
    predicted = getattr(raw, "predicted", None)
    if predicted is not None:
        return np.asarray(predicted, dtype=np.int64)
    array = np.asarray(raw)
    return (array.argmax(axis=1) if array.ndim == 2 else array).astype(np.int64)


def _resolve(model: Any, seed: int, features: str | None) -> Any:
    if not isinstance(model, str):
        return model
    import inspect

    from emovox.evaluation.model_resolver import resolve_model

    if features is not None and "features" in inspect.signature(resolve_model).parameters:
        return resolve_model(model, seed=seed, tune=False, features=features)
    return resolve_model(model, seed=seed, tune=False)


def _groups(names: Sequence[str], group: bool | str, d: int) -> tuple[list[str], list[np.ndarray]]:
    if group == "auto":
        group = d > GROUP_ABOVE
    if group:
        from emovox.features.names import feature_groups

        keys = feature_groups(names)
    else:
        keys = list(names)
    order: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        order.setdefault(k, []).append(i)
    return list(order), [np.asarray(v) for v in order.values()]


def permutation_importance(
    X: np.ndarray,
    y: np.ndarray,
    speakers: Sequence[str],
    *,
    classes: Sequence[str],
    model: Any,
    names: Sequence[str] | None = None,
    features: str | None = None,
    group: bool | str = "auto",
    folds: int = 5,
    n_repeats: int = 5,
    seed: int = 0,
    max_cells: int = MAX_CELLS,
    progress: Callable[[int, int, str], None] | None = None,
) -> ImportanceResult:
    """Drop in UAR when each feature (group) is shuffled within speaker-disjoint test folds.

    Parameters
    ----------
    X : np.ndarray [shape=(n, d)]
        Features of every sample.
    y : np.ndarray [shape=(n,), dtype=int]
        Class indices into ``classes``.
    speakers : sequence of str [shape=(n,)]
        Speaker key of each sample; folds never share a speaker.
    classes : sequence of str
    model : str or object
        A ``--model`` name (:func:`emovox.evaluation.experiment.resolve_model`)
        or an object with ``fit_predict(train: FoldData, test: FoldData)``.
    names : sequence of str [shape=(d,)], optional
        Column names (default ``f0 … f{d-1}``).
    features : str, optional
        Feature set name passed to ``resolve_model`` when ``model`` is a name.
    group : bool or "auto"
        Shuffle the columns of one low-level descriptor together
        (:func:`emovox.features.names.feature_groups`); ``"auto"``: when
        ``d >`` :data:`GROUP_ABOVE`.
    folds : int
        Speaker folds (at most the number of speakers).
    n_repeats : int
        Shuffles per feature and fold.
    seed : int
        Seeds the folds, the model and the shuffles.
    max_cells : int
        Most values in one stacked test block (bounds memory; more blocks mean more fits).
    progress : callable, optional
        ``progress(fold_number, n_folds, fold_name)`` before each fold.

    Returns
    -------
    ImportanceResult
    """
    from emovox.evaluation.folds import FoldData
    from emovox.evaluation.protocols import speaker_kfold

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    speaker_keys = np.asarray([str(s) for s in speakers], dtype=object)
    classes = tuple(str(c) for c in classes)
    if X.ndim != 2 or len(X) != len(y) or len(y) != len(speaker_keys):
        raise ConfigError(f"X {X.shape}, y ({len(y)},) and speakers ({len(speaker_keys)},) must agree in n")
    n, d = X.shape
    names = [f"f{i}" for i in range(d)] if names is None else [str(v) for v in names]
    if len(names) != d:
        raise ConfigError(f"{len(names)} feature names for {d} columns")
    if n_repeats < 1:
        raise ConfigError(f"n_repeats must be at least 1, got {n_repeats}")
    n_speakers = len(set(speaker_keys))
    if n_speakers < 2:
        raise ConfigError("permutation importance needs at least 2 speakers (speaker-disjoint folds)")
    k = min(int(folds), n_speakers)
    model = _resolve(model, seed, features)
    if getattr(model, "feature_set", "") is None:
        raise ConfigError(
            f"model {getattr(model, 'name', model)!r} reads audio itself; permutation "
            "importance needs a model on feature vectors"
        )
    keys, columns = _groups(names, group, d)
    splits = speaker_kfold(speaker_keys, k=k, seed=seed, labels=y)
    rng = np.random.default_rng(seed)
    drops = np.zeros((len(keys), k, n_repeats))
    fold_uar: list[float] = []
    fits = 0
    for f, split in enumerate(splits):
        if progress is not None:
            progress(f + 1, k, split.name)
        train = FoldData(X[split.train_idx], y[split.train_idx], None, speaker_keys[split.train_idx], classes)
        X_test, y_test = X[split.test_idx], y[split.test_idx]
        n_test = len(X_test)
        jobs = [(g, r) for g in range(len(keys)) for r in range(n_repeats)]
        perms = [rng.permutation(n_test) for _ in jobs]  # drawn up front: same shuffles whatever max_cells
        per_block = max(1, int(max_cells) // max(1, n_test * d) - 1)
        uars = []
        for start in range(0, len(jobs), per_block):
            block = jobs[start : start + per_block]
            stack = np.empty(((1 + len(block)) * n_test, d))
            stack[:n_test] = X_test
            for j, (g, _) in enumerate(block):
                block_rows = slice((j + 1) * n_test, (j + 2) * n_test)
                copy = X_test.copy()
                cols = columns[g]
                copy[:, cols] = X_test[perms[start + j]][:, cols]
                stack[block_rows] = copy
            test = FoldData(stack, None, None, np.tile(speaker_keys[split.test_idx], 1 + len(block)), classes)
            predicted = _predicted(model.fit_predict(train, test))
            fits += 1
            if predicted.shape != (len(stack),):
                raise ConfigError(f"model returned {predicted.shape} predictions for {len(stack)} rows")
            base = compute_metrics(y_test, predicted[:n_test], classes=classes)["uar"]
            uars.append(base)
            for j, (g, r) in enumerate(block):
                part = predicted[(j + 1) * n_test : (j + 2) * n_test]
                drops[g, f, r] = base - compute_metrics(y_test, part, classes=classes)["uar"]
        fold_uar.append(float(uars[0]))
    flat = drops.reshape(len(keys), -1)
    rows: list[dict[str, Any]] = [
        {
            "feature": key,
            "n_columns": int(len(cols)),
            "mean_drop": float(flat[g].mean()),
            "std_drop": float(flat[g].std()),
            "n": int(flat.shape[1]),
        }
        for g, (key, cols) in enumerate(zip(keys, columns))
    ]
    rows.sort(key=lambda r: (-r["mean_drop"], r["feature"]))
    to_dict = getattr(model, "to_dict", None)
    config = {
        "model": to_dict() if callable(to_dict) else str(getattr(model, "name", model)),
        "folds": k,
        "n_repeats": int(n_repeats),
        "seed": int(seed),
        "grouped": len(keys) != d,
        "n_features": d,
        "n_groups": len(keys),
        "n_samples": n,
        "n_speakers": n_speakers,
        "fits": fits,
        "metric": "UAR drop (unshuffled - shuffled)",
    }
    return ImportanceResult(rows, float(np.mean(fold_uar)), fold_uar, config)


def plot_importance(
    result: ImportanceResult, path: str | os.PathLike, *, top: int = 20, title: str = "Permutation importance"
) -> Path:
    """Horizontal bars of the ``top`` UAR drops (percentage points), ± one std; PNG written atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    rows = result.rows[:top][::-1]  # most important at the top
    fig = Figure(figsize=(8.0, 1.2 + 0.28 * max(len(rows), 1)))
    ax = fig.subplots()
    means = [100 * r["mean_drop"] for r in rows]
    stds = [100 * r["std_drop"] for r in rows]
    ax.barh(range(len(rows)), means, xerr=stds, color="#0072B2", ecolor="#555555", capsize=2)
    ax.set_yticks(range(len(rows)), [r["feature"] for r in rows], fontsize=7)
    ax.axvline(0, color="#333333", linewidth=0.8)
    ax.set_xlabel("UAR drop when shuffled (percentage points; mean ± std over folds × repeats)")
    ax.set_title(f"{title} (unshuffled UAR {100 * result.baseline_uar:.1f} %)", fontsize=10)
    return atomic_write_png(Path(path), fig, dpi=110)
