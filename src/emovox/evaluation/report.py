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
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from emovox.errors import ConfigError
from emovox.fileio import atomic_write_text

__all__ = ["format_summary", "to_json", "write_atomic", "write_report"]

_LEAK_NOTE = (
    "**Not speaker-independent**: the same speakers are on both sides of the split, "
    "so this figure is inflated. Report it only beside a speaker-independent result."
)


def _clean(value):
    """Make ``value`` strict-JSON-serialisable (NumPy scalars, arrays, NaN -> None)."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def to_json(result: Mapping) -> str:
    """The result as strict JSON text (NaN and infinities become ``null``)."""
    return json.dumps(_clean(result), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file and an atomic rename."""
    return atomic_write_text(path, text)


def _pm(summary: Mapping, name: str) -> str:
    entry = summary[name]
    return f"{entry['mean']:.3f} ± {entry['std']:.3f}"


def _title(result: Mapping) -> str:
    config = result.get("config", {})
    corpora = "+".join(config.get("corpora", [])) or "?"
    if config.get("test_corpus"):
        corpora += " -> " + "+".join(config["test_corpus"])
    return f"{config.get('model', 'model')} on {corpora}, protocol {result.get('protocol', '?')}"


def format_summary(result: Mapping) -> str:
    """A short plain-text table: UAR first, accuracy beside; fold mean ± std and pooled."""
    summary, pooled = result["summary"], result["pooled"]
    n_folds = summary["uar"]["n_folds"]
    label = f"{result.get('protocol', '?')} ({n_folds} fold{'s' if n_folds != 1 else ''})"
    if not result.get("speaker_independent", False):
        label += " [speakers leak: for comparison only]"
    lines = [
        _title(result),
        f"{'':24s} {'UAR':>15s} {'accuracy':>15s} {'macro F1':>15s}",
        f"{'mean ± std over folds':24s} {_pm(summary, 'uar'):>15s} {_pm(summary, 'accuracy'):>15s} "
        f"{_pm(summary, 'macro_f1'):>15s}",
        f"{'pooled':24s} {pooled['uar']:>15.3f} {pooled['accuracy']:>15.3f} {pooled['macro_f1']:>15.3f}",
        f"{label}; {pooled['n']} test samples, {len(result['classes'])} classes",
    ]
    return "\n".join(lines)


def _markdown(result: Mapping, figures: Mapping[str, str]) -> str:
    config = result.get("config", {})
    summary, pooled, classes = result["summary"], result["pooled"], list(result["classes"])
    out = [f"# {_title(result)}", ""]
    if result.get("speaker_independent"):
        out.append("Speaker-independent: no speaker is in both the training and the test set of any fold.")
    else:
        out.append(_LEAK_NOTE)
    out += ["", "## Configuration", ""]
    for key, value in config.items():
        out.append(f"- **{key}**: `{json.dumps(_clean(value), ensure_ascii=False)}`")
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
    """Write ``result.json``, ``report.md``, ``confusion.png`` and ``per_class_recall.png``.

    Parameters
    ----------
    result : dict
        As returned by :func:`emovox.evaluation.experiment.run_experiment`.
    out_dir : path-like
        Created if missing; existing files of the same names are replaced.

    Returns
    -------
    dict
        ``{"json", "markdown", "confusion", "recall"}`` -> written paths.
    """
    from emovox.evaluation.plots import plot_confusion, plot_per_class_recall

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
    title = _title(result)
    paths = {
        "confusion": plot_confusion(pooled["confusion"], classes, out / "confusion.png",
                                    title=f"{title}\npooled, row-normalised"),
        "recall": plot_per_class_recall(
            [pooled["per_class"][c]["recall"] for c in classes], classes, out / "per_class_recall.png",
            uar=pooled["uar"], title=f"{title}\npooled per-class recall",
        ),
    }
    paths["json"] = write_atomic(out / "result.json", to_json(result))
    paths["markdown"] = write_atomic(
        out / "report.md", _markdown(result, {"confusion": "confusion.png", "recall": "per_class_recall.png"})
    )
    return paths
