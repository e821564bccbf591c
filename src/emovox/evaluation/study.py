"""Run a study file: every run of the grid, the fusions, one results table, comparisons and maps.

Behind ``emovox run study.toml --out DIR``. Writes, under ``DIR``::

    runs/DATA/FEATURES/MODEL/seedN/   result.json, report.md, plots  (one per grid cell)
    fusion/DATA/NAME/                 the same for each [[fusion]]
    explore/DATA/FEATURES/            2-D projections, when [explore] asks for them
    results.md, results.csv           one row per run and fusion, intervals beside every figure
    comparison-DATA.png               the rows of each data set as a forest plot
    study.json                        the parsed study and where each result lies

Resumable: a run whose ``result.json`` exists with the same settings is read
back instead of run again (each is written atomically once its last fold is
done), and features come from the disk cache, so after a kill the same
command goes on where it stopped. A run whose settings changed in the file is
run again.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

import numpy as np

from emovox.errors import ConfigError
from emovox.evaluation.result_io import interval_text
from emovox.evaluation.spec import EvaluationSpec
from emovox.evaluation.study_file import DataSet, Study, StudyRun, feature_label
from emovox.fileio import atomic_write_text

__all__ = ["run_study", "run_spec"]

#: Columns of ``results.csv``.
CSV_COLUMNS = (
    "data",
    "run",
    "kind",
    "protocol",
    "metric",
    "value",
    "low",
    "high",
    "second_metric",
    "second_value",
    "second_low",
    "second_high",
    "fold_mean",
    "fold_std",
    "n_clips",
    "n_speakers",
    "speaker_independent",
    "seconds",
)


def run_spec(study: Study, run: StudyRun) -> EvaluationSpec:
    """The :class:`~emovox.evaluation.experiment.EvaluationSpec` of one grid cell."""

    data = run.data
    return EvaluationSpec(
        corpora=data.corpora,
        model=run.model,
        features=run.features,
        protocol=data.protocol,
        scheme=data.scheme,
        folds=data.folds,
        test_corpus=data.test_corpora,
        seed=run.seed,
        tune=study.tune,
        max_speakers=data.max_speakers,
        corpora_root=study.corpora_root,
        cache_dir=study.cache_dir,
        n_jobs=study.jobs,
        target=data.target,
    )


def _fingerprint(spec: EvaluationSpec) -> dict:
    """What makes a stored run reusable: its settings, the feature set's full description (a features
    file's SHA-256 included), the model's configuration and the emovox version."""
    from emovox._version import __version__
    from emovox.evaluation.model_resolver import resolve_model
    from emovox.features import get_feature_set

    model = resolve_model(spec.model, seed=spec.seed, tune=spec.tune, features=spec.features)
    assert spec.features is not None  # every study cell names its feature set
    described = {
        "settings": spec.to_dict(),
        "features": get_feature_set(spec.features).config(),
        "model": model.to_dict(),
        "emovox": __version__,
    }
    return json.loads(json.dumps(described, default=str))


def _read_result(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # absent or unreadable: run it (again)


def _headline(result: Mapping) -> tuple[str, str]:
    """(headline metric, second metric) of a result: UAR and accuracy, or CCC and MAE for a regression."""
    return ("ccc", "mae") if result.get("task") == "regression" else ("uar", "accuracy")


def _row(data: str, name: str, kind: str, result: Mapping, seconds: float | None) -> dict:
    first, second = _headline(result)
    intervals = result.get("intervals", {})
    summary = result["summary"].get(first, {})
    row = {
        "data": data,
        "run": name,
        "kind": kind,
        "protocol": result.get("protocol"),
        "metric": first,
        "second_metric": second,
        "fold_mean": summary.get("mean"),
        "fold_std": summary.get("std"),
        "n_clips": len(result.get("predictions", [])),
        "n_speakers": len({p.get("speaker") for p in result.get("predictions", [])}),
        "speaker_independent": bool(result.get("speaker_independent")),
        "seconds": None if seconds is None else round(seconds, 1),
    }
    for prefix, metric in (("", first), ("second_", second)):
        interval = intervals.get(metric, {})
        row[f"{prefix}value"] = interval.get("estimate", result["pooled"].get(metric))
        row[f"{prefix}low"] = interval.get("low")
        row[f"{prefix}high"] = interval.get("high")
    return row


def _best_first(row: Mapping) -> tuple:
    """Sort key: rows with a figure first, highest first (a CCC of 0 above a negative one)."""
    return (row["value"] is None, -(row["value"] or 0.0))


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _interval_text(row: Mapping, prefix: str = "") -> str:
    """A table cell: ``0.627 [0.581, 0.668]``, the figure alone without an interval."""
    interval = {"low": row[f"{prefix}low"], "high": row[f"{prefix}high"]}
    return f"{_fmt(row[f'{prefix}value'])} {interval_text(interval, missing='')}".rstrip()


def _explore(study: Study, data: DataSet, features: str, out: Path) -> Path:
    """The maps of one data set × feature set (:func:`~emovox.evaluation.feature_space.write_feature_space`)."""
    from emovox.evaluation.data import load_entries, prepare_labels, spec_features
    from emovox.evaluation.feature_space import write_feature_space

    spec = run_spec(study, StudyRun(data, features, "linear", study.seeds[0]))
    loaded, _, _ = load_entries(spec)
    records, y, classes = prepare_labels([r for _, entry in loaded for r in entry], data.scheme)
    X = spec_features(records, features, spec)
    return write_feature_space(
        np.asarray(X),
        records,
        y,
        classes,
        out,
        feature_set=features,
        methods=study.projections,
        colors=study.colors,
        seed=spec.seed,
        scheme=data.scheme,
    )


def _markdown(study: Study, rows: list[dict], comparisons: list[dict], maps: dict[str, str]) -> str:
    out = [
        f"# Study: {study.name}",
        "",
        f"{len(study.runs())} runs ({len(study.data)} data sets × {len(study.cells)} feature-set/model pairs × "
        f"{len(study.seeds)} seeds) and {len(study.fusions)} fusions. "
        "Figures are pooled over the test folds with a 95 % interval from a speaker-level bootstrap "
        "(2,000 resamples); the fold mean ± std is beside them.",
        "",
    ]
    for data in study.data:
        mine = sorted((r for r in rows if r["data"] == data.name), key=_best_first)
        if not mine:
            continue
        first, second = mine[0]["metric"].upper(), mine[0]["second_metric"]
        out += [
            f"## {data.name} ({data.protocol}, {', '.join(data.corpora)}, target {data.target})",
            "",
            f"| run | {first} [95 % CI] | {second} [95 % CI] | fold mean ± std | clips | speakers |",
            "|---|---|---|---|---|---|",
        ]
        for r in mine:
            flag = "" if r["speaker_independent"] else " ⚠ speakers leak"
            name = f"**{r['run']}** (fusion)" if r["kind"] == "fusion" else r["run"]
            out.append(
                f"| {name}{flag} | {_interval_text(r)} | {_interval_text(r, 'second_')} | "
                f"{_fmt(r['fold_mean'])} ± {_fmt(r['fold_std'])} | {r['n_clips']} | {r['n_speakers']} |"
            )
        out.append("")
        for c in (c for c in comparisons if c["data"] == data.name):
            out.append(
                f"Best two: **{c['b']}** − **{c['a']}** = {c['difference']:+.3f} {c['metric'].upper()} "
                f"[{_fmt(c['low'])}, {_fmt(c['high'])}], paired permutation p = {c['p_value']:.3g} "
                f"({c['n_clusters']} speakers). The two were picked as the best on these same test "
                "folds, so read this as post hoc: the gap is an upper estimate and the p-value flatters it."
            )
            out.append("")
        out += [f"![{data.name}](comparison-{data.name}.png)", ""]
        for name, index in maps.items():
            if name.startswith(f"{data.name}/"):
                out.append(f"- [maps of {name}]({index})")
        out.append("")
    return "\n".join(out)


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k) for k in CSV_COLUMNS})
    return buffer.getvalue()


def run_study(
    study: Study, out_dir: str | Path, *, log: Callable[[str], None] | None = None, progress_bars: bool = False
) -> dict:
    """Run (or resume) every run, fusion and map of ``study``; write the table. Returns ``study.json``'s dict."""
    from emovox.evaluation.experiment import evaluate
    from emovox.evaluation.fusion import fuse_results
    from emovox.evaluation.plots import plot_metric_intervals
    from emovox.evaluation.report import to_json, write_report
    from emovox.evaluation.uncertainty import compare_results

    say = log or (lambda message: None)
    out = Path(out_dir)
    runs = study.runs()
    results: dict[str, dict] = {}
    rows: list[dict] = []
    for number, run in enumerate(runs, start=1):
        folder = out / "runs" / run.run_id
        spec = run_spec(study, run)
        fingerprint = _fingerprint(spec)
        stored = _read_result(folder / "result.json")
        if stored is not None and stored.get("study_fingerprint") == fingerprint:
            say(f"[{number}/{len(runs)}] {run.run_id}: done before, read back")
            result, seconds = stored, stored.get("study_seconds")
        else:
            say(f"[{number}/{len(runs)}] {run.run_id}: running")
            started = time.perf_counter()
            result = evaluate(spec, progress=None, progress_bars=progress_bars)
            seconds = time.perf_counter() - started
            result["study_seconds"] = round(seconds, 1)
            result["study_fingerprint"] = fingerprint
            write_report(result, folder)
        results[run.run_id] = result
        rows.append(_row(run.data.name, run.member, "run", result, seconds))

    for fusion in study.fusions:
        members = [study.find_run(fusion.data, m) for m in fusion.members]
        say(f"fusion {fusion.name}: {' + '.join(m.member for m in members)} ({fusion.method})")
        fused = fuse_results(
            [results[m.run_id] for m in members],
            names=[m.member for m in members],
            method=fusion.method,
            weights=fusion.weights,
        )
        write_report(fused, out / "fusion" / fusion.data / fusion.name)
        results[f"{fusion.data}/fusion/{fusion.name}"] = fused
        rows.append(_row(fusion.data, fusion.name, "fusion", fused, None))

    comparisons = []
    for data in study.data:
        mine = sorted((r for r in rows if r["data"] == data.name and r["value"] is not None), key=_best_first)
        if len(mine) >= 2 and mine[0]["metric"] == "uar":
            a_key, b_key = (
                f"{data.name}/{r['run']}" if r["kind"] == "run" else f"{data.name}/fusion/{r['run']}"
                for r in (mine[1], mine[0])
            )
            paired = compare_results(results[a_key], results[b_key], metric="uar")
            difference = paired["difference"]
            comparisons.append(
                {
                    "data": data.name,
                    "a": mine[1]["run"],
                    "b": mine[0]["run"],
                    "metric": "uar",
                    "difference": difference["estimate"],
                    "low": difference["low"],
                    "high": difference["high"],
                    "p_value": difference["p_value"],
                    "n_clusters": paired["n_speakers"],
                }
            )
        if mine:
            plot_metric_intervals(
                [(r["run"], r["value"], r["low"], r["high"]) for r in mine],
                out / f"comparison-{data.name}.png",
                metric=mine[0]["metric"],
                title=f"{study.name}: {data.name} ({data.protocol})",
            )

    maps: dict[str, str] = {}
    if study.projections:
        for data in study.data:
            for features in study.features:
                say(f"maps: {data.name} × {features}")
                index = _explore(study, data, features, out / "explore" / data.name / feature_label(features))
                maps[f"{data.name}/{feature_label(features)}"] = str(index.relative_to(out))

    atomic_write_text(out / "results.csv", _csv(rows))
    atomic_write_text(out / "results.md", _markdown(study, rows, comparisons, maps))
    summary = {
        "study": {**asdict(study), "source": study.source},
        "rows": rows,
        "comparisons": comparisons,
        "maps": maps,
    }
    atomic_write_text(out / "study.json", to_json(summary))
    return summary


def check_out_dir(out: Path) -> None:
    """Refuse an output path that is a file."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; give a folder for the study's results")
