"""Write an evaluation result as JSON, a Markdown report and PNG figures.

The result dict is the one :func:`emovox.evaluation.experiment.run_experiment`
returns (config, classes, per-fold and pooled metrics, fold summary,
per-sample predictions). Every file is written atomically: to a temporary file
in the same folder, then renamed, so a crash never leaves half a report.

Files written to ``out_dir``:

``result.json``
    The whole result, strict JSON (no NaN).
``report.md``
    Headline (UAR first, accuracy beside; mean ± std over folds and pooled),
    per-fold table, per-class table, confusion counts, the figures.
``confusion.png``
    Pooled confusion matrix, normalised by row, counts annotated.
``per_class_recall.png``
    Pooled per-class recall with the UAR line.
``uar_intervals.png``
    Forest plot: pooled UAR and, where a result has more than one gender or
    corpus, each group's UAR, with 95 % speaker-level bootstrap intervals.

Intervals come from the result's ``intervals`` (:func:`run_experiment` adds
them), or are computed from its predictions for results written before that.
A regression result (``"task": "regression"``) is handed to
:mod:`emovox.evaluation.regression_report`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from emovox.errors import ConfigError
from emovox.evaluation.regression_report import format_summary as regression_summary
from emovox.evaluation.regression_report import write_report as write_regression_report
from emovox.evaluation.result_io import interval_text, intervals_line, json_ready, run_title, to_json
from emovox.fileio import atomic_write_text

__all__ = ["format_summary", "run_title", "to_json", "write_atomic", "write_report"]

_LEAK_NOTE = (
    "**Not speaker-independent**: the same speakers are on both sides of the split, "
    "so this figure is inflated. Report it only beside a speaker-independent result."
)


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file and an atomic rename."""
    return atomic_write_text(path, text)


def _pm(summary: Mapping, name: str) -> str:
    entry = summary[name]
    return f"{entry['mean']:.3f} ± {entry['std']:.3f}"


def _intervals(result: Mapping) -> dict | None:
    """The result's UAR/accuracy intervals; computed from its predictions when it predates them."""
    if result.get("intervals"):
        return result["intervals"]
    if not result.get("predictions"):
        return None
    from emovox.evaluation.uncertainty import result_intervals

    return result_intervals(result)


def format_summary(result: Mapping) -> str:
    """A short plain-text table: UAR first, accuracy beside; fold mean ± std, pooled and its 95 % CI."""
    if result.get("task") == "regression":
        return regression_summary(result)
    summary, pooled = result["summary"], result["pooled"]
    n_folds = summary["uar"]["n_folds"]
    label = f"{result.get('protocol', '?')} ({n_folds} fold{'s' if n_folds != 1 else ''})"
    if not result.get("speaker_independent", False):
        label += " [speakers leak: for comparison only]"
    lines = [
        run_title(result),
        f"{'':24s} {'UAR':>15s} {'accuracy':>15s} {'macro F1':>15s}",
        f"{'mean ± std over folds':24s} {_pm(summary, 'uar'):>15s} {_pm(summary, 'accuracy'):>15s} "
        f"{_pm(summary, 'macro_f1'):>15s}",
        f"{'pooled':24s} {pooled['uar']:>15.3f} {pooled['accuracy']:>15.3f} {pooled['macro_f1']:>15.3f}",
        f"{label}; {pooled['n']} test samples, {len(result['classes'])} classes",
    ]
    intervals = _intervals(result)
    if intervals:
        lines.append(f"pooled {intervals_line(intervals, ('uar', 'UAR'), ('accuracy', 'accuracy'))}")
    return "\n".join(lines)


def _group_section(by: str, rows: list[dict]) -> list[str]:
    """``## By gender`` table: clips, speakers, UAR and accuracy with intervals."""
    out = [
        "",
        f"## By {by} (pooled predictions; 95 % CI, speaker bootstrap)",
        "",
        f"| {by} | clips | speakers | UAR | accuracy |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        iv = row["intervals"]
        out.append(
            f"| {row['group']} | {row['n_clips']} | {row['n_speakers']} | {row['uar']:.3f} "
            f"{interval_text(iv['uar'])} | {row['accuracy']:.3f} {interval_text(iv['accuracy'])} |"
        )
    return out


def _markdown(
    result: Mapping,
    figures: Mapping[str, str],
    intervals: Mapping | None = None,
    groups: Mapping[str, list] | None = None,
) -> str:
    config = result.get("config", {})
    summary, pooled, classes = result["summary"], result["pooled"], list(result["classes"])
    out = [f"# {run_title(result)}", ""]
    if result.get("speaker_independent"):
        out.append("Speaker-independent: no speaker is in both the training and the test set of any fold.")
    else:
        out.append(_LEAK_NOTE)
    out += ["", "## Configuration", ""]
    for key, value in config.items():
        out.append(f"- **{key}**: `{json.dumps(json_ready(value), ensure_ascii=False)}`")
    out += [
        f"- **classes**: {', '.join(classes)}",
        f"- **samples**: {result.get('n_samples', pooled['n'])}, tested: {pooled['n']}",
        f"- **emovox**: {result.get('emovox_version', '?')}, {result.get('created_utc', '')}",
        "",
        "## Headline",
        "",
        "UAR = unweighted average recall over the classes present in the truth.",
        "",
        "| | UAR | accuracy | macro F1 | macro F2 | weighted F1 |",
        "|---|---|---|---|---|---|",
        f"| mean ± std over {summary['uar']['n_folds']} folds | {_pm(summary, 'uar')} | "
        f"{_pm(summary, 'accuracy')} | {_pm(summary, 'macro_f1')} | {_pm(summary, 'macro_f2')} | "
        f"{_pm(summary, 'weighted_f1')} |",
        f"| pooled | {pooled['uar']:.3f} | {pooled['accuracy']:.3f} | {pooled['macro_f1']:.3f} | "
        f"{pooled['macro_f2']:.3f} | {pooled['weighted_f1']:.3f} |",
    ]
    if intervals:
        out += [
            f"| pooled, {100 * intervals['uar']['level']:g} % CI (speaker bootstrap) | "
            f"{interval_text(intervals['uar'])} | {interval_text(intervals['accuracy'])} | | | |",
            "",
            f"Pooled {intervals_line(intervals, ('uar', 'UAR'), ('accuracy', 'accuracy'))}. Speakers are resampled with replacement, all their clips "
            "with them, so the interval shows how much the figure depends on which speakers were tested.",
        ]
    for by, rows in (groups or {}).items():
        out += _group_section(by, rows)
    if "intervals" in figures:
        out += ["", f"![UAR with 95 % intervals]({figures['intervals']})"]
    out += [
        "",
        "## Folds",
        "",
        "| fold | test speakers | train / test | UAR | accuracy | macro F1 | classes in test |",
        "|---|---|---|---|---|---|---|",
    ]
    for fold in result["folds"]:
        m = fold["metrics"]
        speakers = fold.get("test_speakers", [])
        shown = ", ".join(speakers[:6]) + (f" (+{len(speakers) - 6})" if len(speakers) > 6 else "")
        out.append(
            f"| {fold['name']} | {shown} | {fold['n_train']} / {fold['n_test']} | {m['uar']:.3f} | "
            f"{m['accuracy']:.3f} | {m['macro_f1']:.3f} | {len(m['classes_present'])}/{len(classes)} |"
        )
    out += [
        "",
        "## Per class (pooled)",
        "",
        "| class | support | recall | precision | F1 | F2 |",
        "|---|---|---|---|---|---|",
    ]
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    for c in classes:
        pc = pooled["per_class"][c]
        out.append(
            f"| {c} | {pc['support']} | {fmt(pc['recall'])} | {fmt(pc['precision'])} | "
            f"{fmt(pc['f1'])} | {fmt(pc['f2'])} |"
        )
    out += ["", "## Confusion matrix (pooled counts; rows = true, columns = predicted)", ""]
    out.append("| true \\ predicted | " + " | ".join(classes) + " |")
    out.append("|---" * (len(classes) + 1) + "|")
    for c, row in zip(classes, pooled["confusion"]):
        out.append(f"| **{c}** | " + " | ".join(str(v) for v in row) + " |")
    out += [
        "",
        f"![confusion matrix]({figures['confusion']})",
        "",
        f"![per-class recall]({figures['recall']})",
        "",
    ]
    return "\n".join(out)


def write_report(result: Mapping, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``result.json``, ``report.md``, ``confusion.png``, ``per_class_recall.png`` and ``uar_intervals.png``.

    Parameters
    ----------
    result : dict
        As returned by :func:`emovox.evaluation.experiment.run_experiment`.
    out_dir : path-like
        Created if missing; existing files of the same names are replaced.

    Returns
    -------
    dict
        ``{"json", "markdown", "confusion", "recall", "intervals"}`` -> written paths
        (``"intervals"`` only when the result has per-sample predictions).
        A regression result: what
        :func:`emovox.evaluation.regression_report.write_report` returns.
    """
    if result.get("task") == "regression":
        return write_regression_report(result, out_dir)
    from emovox.evaluation.plots import plot_confusion, plot_metric_intervals, plot_per_class_recall

    for key in ("classes", "folds", "summary", "pooled"):
        if key not in result:
            raise ConfigError(f"result has no {key!r}: pass the dict run_experiment returns")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create output folder {str(out)!r}: {error.strerror}") from None
    classes = list(result["classes"])
    pooled = result["pooled"]
    title = run_title(result)
    paths = {
        "confusion": plot_confusion(
            pooled["confusion"], classes, out / "confusion.png", title=f"{title}\npooled, row-normalised"
        ),
        "recall": plot_per_class_recall(
            [pooled["per_class"][c]["recall"] for c in classes],
            classes,
            out / "per_class_recall.png",
            uar=pooled["uar"],
            title=f"{title}\npooled per-class recall",
        ),
    }
    figures = {"confusion": "confusion.png", "recall": "per_class_recall.png"}
    intervals = _intervals(result)
    groups: dict[str, list] = {}
    if intervals:
        from emovox.evaluation.groups import group_metrics

        for by in ("gender", "corpus"):  # bias checks: only where there is more than one group
            rows = group_metrics(result, by)
            if len(rows) > 1:
                groups[by] = rows
        uar = intervals["uar"]
        forest = [("pooled", uar["estimate"], uar["low"], uar["high"])]
        forest += [
            (f"{by}: {r['group']}", r["uar"], r["intervals"]["uar"]["low"], r["intervals"]["uar"]["high"])
            for by, rows in groups.items()
            for r in rows
        ]
        paths["intervals"] = plot_metric_intervals(
            forest,
            out / "uar_intervals.png",
            metric="uar",
            title=f"{title}\npooled UAR",
            chance=1.0 / len(classes),
            level=uar["level"],
        )
        figures["intervals"] = "uar_intervals.png"
    paths["markdown"] = write_atomic(out / "report.md", _markdown(result, figures, intervals, groups))
    # result.json last: a study resumes a run whose result.json exists, so it must mean "report complete".
    paths["json"] = write_atomic(out / "result.json", to_json(result))
    return paths
