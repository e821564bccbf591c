"""Write a regression result as JSON, a Markdown report and a predicted-vs-true scatter.

The result dict is the one :func:`emovox.evaluation.regression.run_regression`
returns (``"task": "regression"``); :mod:`emovox.evaluation.report` hands such
results here. CCC is the headline, MAE beside it (in the target's unit). Every
file is written atomically (:mod:`emovox.fileio`).

Files written to ``out_dir``:

``result.json``
    The whole result, strict JSON (NaN -> ``null``).
``report.md``
    Headline (CCC first, MAE beside; mean ± std over folds, pooled, 95 %
    speaker-bootstrap intervals), per-fold table, target and prediction moments.
``predicted_vs_true.png``
    Every test clip's prediction against its true value, the identity line,
    and the mean prediction per true value when the target has few levels.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from emovox.errors import ConfigError
from emovox.evaluation.result_io import interval_text, intervals_line, run_title, to_json
from emovox.fileio import atomic_write_png, atomic_write_text

__all__ = ["format_summary", "plot_predicted_vs_true", "write_report"]

_LEAK_NOTE = (
    "**Not speaker-independent**: the same speakers are on both sides of the split, "
    "so this figure is inflated. Report it only beside a speaker-independent result."
)
#: Targets with at most this many distinct values are drawn with jitter and per-level means.
_FEW_LEVELS = 10


def _f(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def _pm(summary: Mapping, name: str) -> str:
    entry = summary[name]
    return "n/a" if not entry.get("n_folds") else f"{entry['mean']:.3f} ± {entry['std']:.3f}"


def format_summary(result: Mapping) -> str:
    """A short plain-text table: CCC first, MAE beside; fold mean ± std, pooled and its 95 % CI."""
    summary, pooled = result["summary"], result["pooled"]
    n_folds = len(result.get("folds", [])) or summary["ccc"]["n_folds"]
    label = f"{result.get('protocol', '?')} ({n_folds} fold{'s' if n_folds != 1 else ''})"
    if not result.get("speaker_independent", False):
        label += " [speakers leak: for comparison only]"
    dropped = result.get("config", {}).get("dropped_without_target")
    lines = [
        run_title(result),
        f"{'':24s} {'CCC':>15s} {'MAE':>15s} {'RMSE':>15s} {'Pearson r':>15s}",
        f"{'mean ± std over folds':24s} {_pm(summary, 'ccc'):>15s} {_pm(summary, 'mae'):>15s} "
        f"{_pm(summary, 'rmse'):>15s} {_pm(summary, 'pearson_r'):>15s}",
        f"{'pooled':24s} {_f(pooled['ccc']):>15s} {_f(pooled['mae']):>15s} {_f(pooled['rmse']):>15s} "
        f"{_f(pooled['pearson_r']):>15s}",
        f"{label}; {pooled['n']} test samples"
        + (f", {dropped} dropped without a value of {result.get('target', 'the target')}" if dropped else ""),
    ]
    if result.get("intervals"):
        lines.append(f"pooled {intervals_line(result['intervals'], ('ccc', 'CCC'), ('mae', 'MAE'))}")
    return "\n".join(lines)


def _markdown(result: Mapping, scatter: str) -> str:
    config, summary, pooled = result.get("config", {}), result["summary"], result["pooled"]
    intervals = result.get("intervals")
    out = [f"# {run_title(result)}", ""]
    out.append(
        "Speaker-independent: no speaker is in both the training and the test set of any fold."
        if result.get("speaker_independent")
        else _LEAK_NOTE
    )
    out += ["", "## Configuration", ""]
    for key, value in config.items():
        out.append(f"- **{key}**: `{json.dumps(value, ensure_ascii=False, default=str)}`")
    out += [
        f"- **samples**: {result.get('n_samples', pooled['n'])}, tested: {pooled['n']}",
        f"- **emovox**: {result.get('emovox_version', '?')}, {result.get('created_utc', '')}",
        "",
        "## Headline",
        "",
        "CCC = concordance correlation coefficient (1 only when predictions lie on the identity line; "
        "a shift or a shrinkage lowers it); MAE and RMSE in the target's unit.",
        "",
        "| | CCC | MAE | RMSE | Pearson r |",
        "|---|---|---|---|---|",
        f"| mean ± std over {len(result['folds'])} folds | {_pm(summary, 'ccc')} | {_pm(summary, 'mae')} | "
        f"{_pm(summary, 'rmse')} | {_pm(summary, 'pearson_r')} |",
        f"| pooled | {_f(pooled['ccc'])} | {_f(pooled['mae'])} | {_f(pooled['rmse'])} | {_f(pooled['pearson_r'])} |",
    ]
    if intervals:
        out += [
            f"| pooled, {100 * intervals['ccc']['level']:g} % CI (speaker bootstrap) | {interval_text(intervals['ccc'])} | "
            f"{interval_text(intervals['mae'])} | | |",
            "",
            f"Pooled {intervals_line(intervals, ('ccc', 'CCC'), ('mae', 'MAE'))}. Speakers are resampled with replacement, all their clips with them.",
        ]
    out += [
        "",
        "## Target and predictions (pooled)",
        "",
        "| | mean | std |",
        "|---|---|---|",
        f"| true | {_f(pooled['true_mean'])} | {_f(pooled['true_std'])} |",
        f"| predicted | {_f(pooled['pred_mean'])} | {_f(pooled['pred_std'])} |",
        "",
        f"Bias (mean predicted − mean true): {_f(pooled['bias'])}.",
        "",
        "## Folds",
        "",
        "| fold | test speakers | train / test | CCC | MAE | RMSE | Pearson r |",
        "|---|---|---|---|---|---|---|",
    ]
    for fold in result["folds"]:
        m = fold["metrics"]
        speakers = fold.get("test_speakers", [])
        shown = ", ".join(speakers[:6]) + (f" (+{len(speakers) - 6})" if len(speakers) > 6 else "")
        out.append(
            f"| {fold['name']} | {shown} | {fold['n_train']} / {fold['n_test']} | {_f(m['ccc'])} | "
            f"{_f(m['mae'])} | {_f(m['rmse'])} | {_f(m['pearson_r'])} |"
        )
    out += ["", f"![predicted against true]({scatter})", ""]
    return "\n".join(out)


def plot_predicted_vs_true(
    truth: ArrayLike,
    predicted: ArrayLike,
    path: str | os.PathLike,
    *,
    title: str = "",
    target: str = "target",
    seed: int = 0,
) -> Path:
    """Scatter of predictions against true values with the identity line.

    Parameters
    ----------
    truth, predicted : array-like [shape=(n,)]
        In the target's unit.
    path : path-like
        Output PNG, written atomically.
    title : str
    target : str
        Axis label.
    seed : int
        Seeds the horizontal jitter drawn for targets with few levels.

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    t = np.asarray(truth, dtype=float)
    p = np.asarray(predicted, dtype=float)
    levels = np.unique(t)
    few = len(levels) <= _FEW_LEVELS
    step = float(np.min(np.diff(levels))) if len(levels) > 1 else 1.0
    x = t + (np.random.default_rng(seed).uniform(-0.15, 0.15, t.size) * step if few else 0.0)
    fig, ax = plt.subplots(figsize=(5.2, 4.8))
    try:
        ax.scatter(x, p, s=8, alpha=0.35, color="#4C72B0", edgecolors="none", label="test clips")
        lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1, label="identity")
        if few:
            means = [p[t == v].mean() for v in levels]
            ax.plot(levels, means, color="#C44E52", marker="D", linewidth=1.5, label="mean prediction")
            ax.set_xticks(levels)
        ax.set_xlabel(f"true {target}")
        ax.set_ylabel(f"predicted {target}")
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title(title, fontsize=9)
        return atomic_write_png(Path(path), fig, dpi=120)
    finally:
        plt.close(fig)


def write_report(result: Mapping, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``result.json``, ``report.md`` and ``predicted_vs_true.png``.

    Parameters
    ----------
    result : dict
        As returned by :func:`emovox.evaluation.regression.run_regression`.
    out_dir : path-like
        Created if missing; existing files of the same names are replaced.

    Returns
    -------
    dict
        ``{"json", "markdown", "scatter"}`` -> written paths.
    """

    for key in ("folds", "summary", "pooled", "predictions"):
        if key not in result:
            raise ConfigError(f"result has no {key!r}: pass the dict run_regression returns")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create output folder {str(out)!r}: {error.strerror}") from None
    rows = result["predictions"]
    pooled = result["pooled"]
    paths = {
        "scatter": plot_predicted_vs_true(
            [r["true"] for r in rows],
            [r["predicted"] for r in rows],
            out / "predicted_vs_true.png",
            title=f"{run_title(result)}\npooled CCC {_f(pooled['ccc'])}, MAE {_f(pooled['mae'])}",
            target=str(result.get("target", "target")),
            seed=int(result.get("config", {}).get("seed", 0) or 0),
        )
    }
    paths["markdown"] = atomic_write_text(out / "report.md", _markdown(result, "predicted_vs_true.png"))
    paths["json"] = atomic_write_text(out / "result.json", to_json(result))  # last: it marks the report complete
    return paths
