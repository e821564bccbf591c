"""2-D projections of a feature space (PCA, t-SNE, UMAP) and their scatter plots.

:func:`project` standardises the features (each column to zero mean and unit
variance; non-finite values become the column mean, constant columns stay 0)
and maps them to two dimensions with a seeded, reproducible method:

``"pca"``
    scikit-learn PCA (full SVD, signs fixed by scikit-learn).
``"tsne"``
    scikit-learn t-SNE, PCA initialisation; perplexity ``min(30, (n - 1) / 3)``
    so small sets work. Inputs wider than 50 columns are first reduced to 50
    principal components (the usual practice; it also makes t-SNE faster).
``"umap"``
    umap-learn (optional extra ``emovox[explore]``), ``n_neighbors =
    min(15, n - 1)``, same 50-component reduction.

:func:`plot_projection` draws the points coloured by emotion (the emotion
palette of :mod:`emovox.palette`), speaker or corpus (a qualitative palette),
and writes the PNG atomically. A projection only shows structure; it measures
nothing (distances in t-SNE/UMAP plots are not comparable across clusters).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from emovox.errors import ConfigError
from emovox.fileio import atomic_write_png
from emovox.registry import Registry

__all__ = [
    "COLOR_KINDS",
    "LEGEND_LIMIT",
    "PROJECTIONS",
    "plot_projection",
    "project",
    "projection_names",
    "standardize",
]

#: What points can be coloured by.
COLOR_KINDS: tuple[str, ...] = ("emotion", "speaker", "corpus")
#: Above this many groups the plot draws no legend (the title says so).
LEGEND_LIMIT = 12
#: Columns kept by the PCA pre-reduction before t-SNE / UMAP.
PRE_PCA_COMPONENTS = 50
UMAP_INSTALL_HINT = "UMAP needs the optional umap-learn package; install it with: pip install 'emovox[explore]'"

_PROJECTIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {}
PROJECTIONS = Registry("projection", lookup_error=ConfigError, modules=(), entries=lambda: _PROJECTIONS)


def standardize(X: np.ndarray) -> np.ndarray:
    """Columns to zero mean, unit variance; non-finite values to the column mean.

    Parameters
    ----------
    X : np.ndarray [shape=(n, d)]

    Returns
    -------
    np.ndarray [shape=(n, d)], float64, all finite. Constant columns become 0.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ConfigError(f"features must be a 2-D array (n, d), got shape {X.shape}")
    finite = np.isfinite(X)
    if not finite.all():
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fill = np.nanmean(np.where(finite, X, np.nan), axis=0)
        X = np.where(finite, X, np.where(np.isfinite(fill), fill, 0.0))
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    return (X - mean) / np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)


def _pre_reduce(X: np.ndarray, seed: int) -> np.ndarray:
    if X.shape[1] <= PRE_PCA_COMPONENTS or X.shape[0] <= PRE_PCA_COMPONENTS:
        return X
    from sklearn.decomposition import PCA

    return PCA(n_components=PRE_PCA_COMPONENTS, svd_solver="full", random_state=seed).fit_transform(X)


@PROJECTIONS.register("pca")
def _pca(X: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    return PCA(n_components=2, svd_solver="full", random_state=seed).fit_transform(X)


@PROJECTIONS.register("tsne")
def _tsne(X: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = float(max(1.0, min(30.0, (len(X) - 1) / 3.0)))
    return TSNE(
        n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed
    ).fit_transform(_pre_reduce(X, seed))


@PROJECTIONS.register("umap")
def _umap(X: np.ndarray, seed: int) -> np.ndarray:
    try:
        import umap
    except ImportError as exc:
        raise ConfigError(UMAP_INSTALL_HINT) from exc
    with warnings.catch_warnings():  # "n_jobs overridden by random_state": reproducibility is the point
        warnings.simplefilter("ignore", UserWarning)
        reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(15, len(X) - 1)), random_state=seed)
        return reducer.fit_transform(_pre_reduce(X, seed))


def projection_names() -> list[str]:
    """Names accepted by :func:`project`."""
    return PROJECTIONS.names()


def project(X: np.ndarray, method: str, *, seed: int = 0) -> np.ndarray:
    """Standardise ``X`` and project it to two dimensions.

    Parameters
    ----------
    X : np.ndarray [shape=(n, d)]
        Feature vectors, ``n >= 3``.
    method : str
        ``"pca"``, ``"tsne"`` or ``"umap"`` (see the module docstring).
    seed : int
        Seeds the method: the same ``X`` and seed give the same points.

    Returns
    -------
    np.ndarray [shape=(n, 2)], float64
        Unitless coordinates (PCA: standardised-feature units along the two
        main axes).

    Raises
    ------
    ConfigError
        Unknown method, fewer than 3 samples, or umap-learn missing.
    """
    fn = PROJECTIONS.get(method)
    Z = standardize(X)
    if len(Z) < 3:
        raise ConfigError(f"a 2-D projection needs at least 3 samples, got {len(Z)}")
    if Z.shape[1] < 2:  # one feature: its values along x, nothing along y
        return np.column_stack([Z[:, 0] if Z.shape[1] else np.zeros(len(Z)), np.zeros(len(Z))])
    points = np.asarray(fn(Z, int(seed)), dtype=np.float64)
    if points.shape != (len(Z), 2):
        raise ConfigError(f"projection {method!r} returned shape {points.shape}, expected {(len(Z), 2)}")
    return points


def _group_colours(groups: list[str], kind: str) -> dict[str, tuple]:
    from matplotlib import colormaps

    if kind == "emotion":
        from emovox.palette import colour_of, rgb

        return {g: rgb(colour_of(g)) for g in groups}
    n = len(groups)
    if n <= 10:
        cmap = colormaps["tab10"]
        return {g: cmap(i) for i, g in enumerate(groups)}
    if n <= 20:
        cmap = colormaps["tab20"]
        return {g: cmap(i) for i, g in enumerate(groups)}
    cmap = colormaps["turbo"]
    return {g: cmap(0.05 + 0.9 * i / (n - 1)) for i, g in enumerate(groups)}


def _ordered_groups(labels: Sequence[str], kind: str) -> list[str]:
    present = sorted(set(labels))
    if kind == "emotion":
        from emovox.labels import EMOTIONS

        known = [e for e in EMOTIONS if e in present]
        return known + [g for g in present if g not in known]
    return present


def plot_projection(
    points: np.ndarray,
    labels: Sequence[str],
    path: str | os.PathLike,
    *,
    title: str,
    kind: str,
    axis_labels: tuple[str, str] = ("dim 1", "dim 2"),
) -> Path:
    """Scatter plot of 2-D points coloured by group; written atomically as PNG.

    Parameters
    ----------
    points : np.ndarray [shape=(n, 2)]
        From :func:`project`.
    labels : sequence of str [shape=(n,)]
        Group of each point (emotion, speaker key or corpus name).
    path : path-like
        Output PNG.
    title : str
    kind : str
        ``"emotion"`` (emotion palette), ``"speaker"`` or ``"corpus"``
        (qualitative palette). Above :data:`LEGEND_LIMIT` groups no legend is
        drawn and the title says so.
    axis_labels : (str, str)

    Returns
    -------
    Path
    """
    if kind not in COLOR_KINDS:
        raise ConfigError(f"unknown colouring {kind!r}: expected one of {', '.join(COLOR_KINDS)}")
    points = np.asarray(points, dtype=np.float64)
    labels = [str(v) for v in labels]
    if points.ndim != 2 or points.shape[1] != 2 or len(points) != len(labels):
        raise ConfigError(f"expected points (n, 2) and n labels, got {points.shape} and {len(labels)} labels")
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    groups = _ordered_groups(labels, kind)
    colours = _group_colours(groups, kind)
    legend = len(groups) <= LEGEND_LIMIT
    fig = Figure(figsize=(7.5 if legend else 6.2, 5.6))
    ax = fig.subplots()
    size = float(np.clip(4000.0 / max(len(points), 1), 6.0, 40.0))
    order = np.random.default_rng(0).permutation(len(points))  # no group drawn wholly on top
    lab = np.asarray(labels, dtype=object)
    for g in groups:  # one (empty-safe) artist per group, for the legend
        ax.scatter([], [], s=30, color=colours[g], label=g)
    ax.scatter(points[order, 0], points[order, 1], s=size, alpha=0.75, linewidths=0, c=[colours[g] for g in lab[order]])
    suffix = "" if legend else f" ({len(groups)} {kind}s; no legend above {LEGEND_LIMIT})"
    ax.set_title(title + suffix, fontsize=10)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.tick_params(labelsize=8)
    if legend:
        ax.legend(
            title=kind,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            title_fontsize=9,
            frameon=False,
            markerscale=1.0,
        )
    return atomic_write_png(Path(path), fig, dpi=110)
