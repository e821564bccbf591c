"""A feature space written out: class counts, 2-D projections and permutation importance, linked from ``index.md``.

Behind ``emovox explore --features NAME`` and the ``[explore]`` table of a
study file (:mod:`emovox.evaluation.study`). Every file is written
atomically; matplotlib is imported lazily by the plotting functions.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from emovox.fileio import atomic_write_text

__all__ = ["TOP_IN_INDEX", "TOP_PLOTTED", "write_feature_space"]

#: Features in the importance bar plot / in the index table.
TOP_PLOTTED = 20
TOP_IN_INDEX = 10


def write_feature_space(
    X: np.ndarray,
    records: Sequence,
    y: np.ndarray,
    classes: Sequence[str],
    out: str | Path,
    *,
    feature_set: str,
    names: Sequence[str] | None = None,
    methods: Sequence[str] = ("pca", "tsne"),
    colors: Sequence[str] = ("emotion", "speaker", "corpus"),
    importance_model: str | None = None,
    folds: int = 5,
    repeats: int = 5,
    seed: int = 0,
    scheme: str = "native",
    log: Callable[[str], None] | None = None,
) -> Path:
    """Write the maps (and the importance, with ``importance_model``) of one feature space; return ``index.md``.

    Parameters
    ----------
    X : np.ndarray [shape=(n, d)]
        Feature vectors of ``records``.
    records : sequence of Record [shape=(n,)]
    y : np.ndarray [shape=(n,), dtype=int]
        Class index of each record into ``classes``.
    classes : sequence of str
    out : path-like
        Output folder (created).
    feature_set : str
        Its name, for titles and the importance model's configuration.
    names : sequence of str, optional
        Column names (:func:`emovox.features.names.feature_names`) for the importance table.
    methods, colors : sequence of str
        Projections (:func:`emovox.evaluation.projection.projection_names`) and colourings.
    importance_model : str, optional
        A workbench classifier name: also compute permutation importance over
        ``folds`` speaker folds with ``repeats`` shuffles.
    """
    say = log or (lambda text: None)
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    labels = {
        "emotion": [classes[c] for c in y],
        "speaker": [r.speaker_key for r in records],
        "corpus": [r.corpus for r in records],
    }
    title = f"{'+'.join(sorted(set(labels['corpus'])))} · {feature_set}"
    lines = [
        f"# Feature space: {title}",
        "",
        f"{len(records)} clips, {len(set(labels['speaker']))} speakers, {len(classes)} classes "
        f"(scheme {scheme}), {X.shape[1]} features ({feature_set}); seed {seed}.",
        "",
    ]
    lines += _class_distribution(labels["emotion"], classes, out, title)
    lines += _projections(X, labels, methods, colors, out, title, seed, say)
    if importance_model is not None:
        lines += _importance(
            X,
            y,
            labels["speaker"],
            classes,
            names,
            feature_set,
            importance_model,
            folds=folds,
            repeats=repeats,
            seed=seed,
            out=out,
            title=title,
            log=say,
        )
    lines += [f"Written in {time.perf_counter() - started:.0f} s.", ""]
    return atomic_write_text(out / "index.md", "\n".join(lines))


def _class_distribution(emotions: list[str], classes: Sequence[str], out: Path, title: str) -> list[str]:
    from emovox.corpora.explore import plot_class_distribution

    counts = Counter(emotions)
    plot_class_distribution({c: counts[c] for c in classes}, out / "class_distribution.png", title=title)
    return [
        "## Class distribution",
        "",
        "| class | clips |",
        "|---|---|",
        *[f"| {c} | {counts[c]} |" for c in classes],
        "",
        "![class distribution](class_distribution.png)",
        "",
    ]


def _projections(
    X: np.ndarray,
    labels: dict[str, list[str]],
    methods: Sequence[str],
    colors: Sequence[str],
    out: Path,
    title: str,
    seed: int,
    log: Callable[[str], None],
) -> list[str]:
    from emovox.evaluation.projection import plot_projection, project

    pretty = {"pca": ("PCA", "PC"), "tsne": ("t-SNE", "t-SNE"), "umap": ("UMAP", "UMAP")}
    lines = [
        "## Projections",
        "",
        "Features standardised over all clips, then projected to 2-D. A projection shows structure; it "
        "measures nothing (t-SNE/UMAP distances between clusters mean little).",
        "",
    ]
    for method in methods:
        name, axis = pretty.get(method, (method, method))
        log(f"projection {name}")
        tic = time.perf_counter()
        points = project(X, method, seed=seed)
        seconds = time.perf_counter() - tic
        lines += [f"### {name}", "", f"{seconds:.1f} s.", ""]
        for kind in colors:
            file = f"projection_{method}_{kind}.png"
            plot_projection(
                points,
                labels[kind],
                out / file,
                title=f"{title}: {name} by {kind}",
                kind=kind,
                axis_labels=(f"{axis} 1", f"{axis} 2"),
            )
            lines.append(f"![{name} by {kind}]({file})")
        lines.append("")
    return lines


def _importance(
    X: np.ndarray,
    y: np.ndarray,
    speakers: Sequence[str],
    classes: Sequence[str],
    names: Sequence[str] | None,
    features: str,
    model: str,
    *,
    folds: int,
    repeats: int,
    seed: int,
    out: Path,
    title: str,
    log: Callable[[str], None],
) -> list[str]:
    from emovox.evaluation.importance import permutation_importance, plot_importance

    tic = time.perf_counter()
    result = permutation_importance(
        X,
        y,
        speakers,
        classes=classes,
        model=model,
        names=names,
        features=features,
        folds=folds,
        n_repeats=repeats,
        seed=seed,
        progress=lambda f, k, name: log(f"importance fold {f}/{k}: {name}"),
    )
    seconds = time.perf_counter() - tic
    result.write_csv(out / "importance.csv")
    plot_importance(result, out / "importance.png", top=TOP_PLOTTED, title=f"{title}: {model}")
    c = result.config
    unit = "feature groups (low-level descriptors)" if c["grouped"] else "features"
    lines = [
        "## Permutation importance",
        "",
        f"Model `{model}`, {c['folds']} speaker-disjoint folds, {c['n_repeats']} shuffles per feature and "
        f"fold, {c['n_groups']} {unit}; {c['fits']} fits, {seconds:.0f} s. Unshuffled UAR (mean over folds) "
        f"{100 * result.baseline_uar:.1f} %. Importance = drop in UAR when a feature is shuffled among the "
        "test speakers' clips (percentage points, mean ± std over folds × shuffles); correlated features "
        "share their importance.",
        "",
        "| rank | feature | UAR drop (pp) |",
        "|---|---|---|",
    ]
    lines += [
        f"| {i} | `{r['feature']}` | {100 * r['mean_drop']:.2f} ± {100 * r['std_drop']:.2f} |"
        for i, r in enumerate(result.rows[:TOP_IN_INDEX], start=1)
    ]
    lines += [
        "",
        "All of them: [importance.csv](importance.csv).",
        "",
        f"![top {TOP_PLOTTED} features](importance.png)",
        "",
    ]
    return lines
