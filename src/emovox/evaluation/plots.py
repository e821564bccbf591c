"""Evaluation figures. The only module of :mod:`emovox.evaluation` importing matplotlib.

matplotlib is imported lazily, with the non-interactive ``Agg`` backend, so
importing :mod:`emovox.evaluation` stays cheap and works without a display.
Each function writes one PNG atomically (temporary file, then rename).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from emovox.fileio import atomic_write_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_confusion", "plot_metric_intervals", "plot_per_class_recall"]


def _pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save_atomic(fig: Figure, path: Path) -> Path:
    return atomic_write_png(path, fig, dpi=120)


def plot_confusion(
    confusion: Sequence[Sequence[int]],
    classes: Sequence[str],
    path: str | os.PathLike,
    *,
    title: str = "Confusion matrix",
) -> Path:
    """Heat map of a confusion matrix, normalised by row, counts annotated.

    Parameters
    ----------
    confusion : array-like [shape=(n_classes, n_classes)]
        Counts; row = true class, column = predicted class.
    classes : sequence of str [shape=(n_classes,)]
    path : path-like
        Output PNG.
    title : str

    Returns
    -------
    Path
        The written file. Cell colour = fraction of the true class (row);
        text = count and percentage. Rows with no samples stay blank.
    """
    plt = _pyplot()
    cm = np.asarray(confusion, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(classes)
    size = max(4.0, 0.8 * n + 2.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    try:
        image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
        ax.set_xticks(range(n), labels=list(classes), rotation=45, ha="right")
        ax.set_yticks(range(n), labels=list(classes))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        for i in range(n):
            if rows[i, 0] == 0:
                continue
            for j in range(n):
                colour = "white" if norm[i, j] > 0.5 else "black"
                ax.text(
                    j,
                    i,
                    f"{int(cm[i, j])}\n{100 * norm[i, j]:.0f}%",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color=colour,
                )
        return _save_atomic(fig, Path(path))
    finally:
        plt.close(fig)


def plot_per_class_recall(
    recalls: Sequence[float | None],
    classes: Sequence[str],
    path: str | os.PathLike,
    *,
    uar: float | None = None,
    title: str = "Per-class recall",
) -> Path:
    """Bar chart of per-class recall (the per-class accuracy), UAR as a line.

    Parameters
    ----------
    recalls : sequence of float or None [shape=(n_classes,)]
        ``None`` for a class absent from the truth (drawn as no bar).
    classes : sequence of str [shape=(n_classes,)]
    path : path-like
        Output PNG.
    uar : float, optional
        Drawn as a dashed horizontal line.
    title : str

    Returns
    -------
    Path
    """
    from emovox.palette import colour_of

    plt = _pyplot()
    n = len(classes)
    values = np.array([np.nan if r is None else float(r) for r in recalls])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * n + 2.0), 3.6))
    try:  # each class in its emotion's colour, as in the timeline PNG and the web page
        ax.bar(
            range(n), np.nan_to_num(values), color=[colour_of(c) for c in classes], edgecolor="#333333", linewidth=0.5
        )
        for i, v in enumerate(values):
            ax.text(i, (0 if np.isnan(v) else v) + 0.02, "n/a" if np.isnan(v) else f"{v:.2f}", ha="center", fontsize=8)
        if uar is not None:
            ax.axhline(uar, color="#C44E52", linestyle="--", label=f"UAR {uar:.3f}")
        ax.axhline(1.0 / max(n, 1), color="grey", linestyle=":", linewidth=1, label=f"chance 1/{n}")
        ax.legend(loc="upper right", fontsize=8)
        ax.set_xticks(range(n), labels=list(classes), rotation=45, ha="right")
        ax.set_ylim(0.0, 1.1)
        ax.set_ylabel("recall")
        ax.set_title(title)
        return _save_atomic(fig, Path(path))
    finally:
        plt.close(fig)


def plot_metric_intervals(
    rows: Sequence[tuple[str, float, float | None, float | None]],
    path: str | os.PathLike,
    *,
    metric: str = "uar",
    title: str | None = None,
    chance: float | None = None,
    level: float = 0.95,
) -> Path:
    """Forest plot: one estimate with its interval per row (runs, groups, models).

    Parameters
    ----------
    rows : sequence of (name, estimate, low, high)
        Drawn top to bottom in the given order; ``low``/``high`` ``None`` (no
        interval, e.g. a single speaker) draws the point alone.
    path : path-like
        Output PNG.
    metric : str
        Axis label (``"uar"`` -> ``UAR``).
    title : str, optional
    chance : float, optional
        Drawn as a dotted vertical line (e.g. ``1 / n_classes`` for UAR).
    level : float
        Coverage of the intervals, for the axis label.

    Returns
    -------
    Path
    """
    from emovox.errors import ConfigError

    if not rows:
        raise ConfigError("plot_metric_intervals needs at least one (name, estimate, low, high) row")
    plt = _pyplot()
    names = [str(r[0]) for r in rows]
    estimates = np.array([float(r[1]) for r in rows])
    lows = np.array([np.nan if r[2] is None else float(r[2]) for r in rows])
    highs = np.array([np.nan if r[3] is None else float(r[3]) for r in rows])
    y = np.arange(len(rows))[::-1]
    label = {"uar": "UAR", "accuracy": "accuracy"}.get(metric, metric)
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(rows) + 1.4))
    try:
        has = ~np.isnan(lows) & ~np.isnan(highs)
        ax.errorbar(
            estimates[has],
            y[has],
            xerr=[estimates[has] - lows[has], highs[has] - estimates[has]],
            fmt="o",
            color="#4C72B0",
            ecolor="#4C72B0",
            capsize=4,
            markersize=6,
        )
        ax.plot(estimates[~has], y[~has], "o", color="#4C72B0", markerfacecolor="white")
        for yi, est, lo, hi in zip(y, estimates, lows, highs):
            text = f"{est:.3f}" if np.isnan(lo) else f"{est:.3f} [{lo:.3f}, {hi:.3f}]"
            ax.annotate(
                text,
                (1.0, yi),
                xycoords=("axes fraction", "data"),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        if chance is not None:
            ax.axvline(chance, color="grey", linestyle=":", linewidth=1, label=f"chance {chance:.3f}")
            ax.legend(loc="lower left", fontsize=8)
        ax.set_yticks(y, labels=names)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_xlabel(f"{label} ({100 * level:g} % CI, speaker bootstrap)")
        ax.grid(axis="x", alpha=0.3)
        if title:
            ax.set_title(title)
        return _save_atomic(fig, Path(path))
    finally:
        plt.close(fig)
