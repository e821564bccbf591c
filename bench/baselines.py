"""Classical baselines, speaker-independent first, random split beside.

Runs eGeMAPS + RBF-SVM and MFCC-functionals + RBF-SVM (balanced class
weights, scaler fitted per training fold, C=1, gamma="scale" unless --tune)
on the shared corpora:

- RAVDESS speech, 8 classes: 6 speaker-disjoint folds of 4 actors, and LOSO;
- EMO-DB, 7 classes: leave-one-speaker-out;
- EMOVO, 7 classes: leave-one-speaker-out;

and, for comparison only, one random stratified 80/20 split of each corpus
(speakers leak). Prints UAR and accuracy (mean ± std over folds, and pooled)
as a Markdown table, and writes each run's report under --out.

Usage::

    .venv/bin/python bench/baselines.py [--out runs/bench-baselines] [--cache-dir DIR]
        [--models svm-egemaps svm-mfcc] [--jobs 1] [--tune] [--skip-random]

Features go through the feature cache (first run: a few minutes of eGeMAPS
extraction for ~2,600 files; reruns take seconds plus SVM fitting).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from emovox.evaluation.experiment import EvaluationSpec, evaluate
from emovox.evaluation.report import write_report

#: (label, corpus, scheme, protocol, folds)
SETUPS: tuple[tuple[str, str, str, str, int], ...] = (
    ("RAVDESS 8 cl.", "ravdess", "ravdess8", "speaker-kfold", 6),
    ("RAVDESS 8 cl.", "ravdess", "ravdess8", "loso", 6),
    ("EMO-DB 7 cl.", "emodb", "native", "loso", 6),
    ("EMOVO 7 cl.", "emovo", "native", "loso", 6),
)


def _pm(result: dict, metric: str) -> str:
    s = result["summary"][metric]
    return f"{s['mean']:.3f} ± {s['std']:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/bench-baselines")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--corpora-root", default=None)
    parser.add_argument("--models", nargs="+", default=["svm-egemaps", "svm-mfcc"])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--skip-random", action="store_true")
    args = parser.parse_args(argv)

    header = (
        "| corpus | model | protocol | folds | UAR mean ± std | UAR pooled | "
        "accuracy mean ± std | accuracy pooled | random split UAR / acc (leaks speakers) |"
    )
    rows = [header, "|" + "---|" * 9]
    random_done: dict[tuple[str, str], dict] = {}
    started = time.perf_counter()
    for model in args.models:
        for label, corpus, scheme, protocol, folds in SETUPS:
            spec = EvaluationSpec(
                corpora=(corpus,),
                model=model,
                protocol=protocol,
                scheme=scheme,
                folds=folds,
                seed=0,
                tune=args.tune,
                corpora_root=args.corpora_root,
                cache_dir=args.cache_dir,
                n_jobs=args.jobs,
            )
            t0 = time.perf_counter()
            result = evaluate(spec)
            name = f"{corpus}-{model}-{protocol}"
            write_report(result, Path(args.out) / name)
            random_text = "—"
            if not args.skip_random:
                key = (corpus, model)
                if key not in random_done:
                    random_result = evaluate(replace(spec, protocol="random"))
                    write_report(random_result, Path(args.out) / f"{corpus}-{model}-random")
                    random_done[key] = random_result
                r = random_done[key]["pooled"]
                random_text = f"{r['uar']:.3f} / {r['accuracy']:.3f}"
            p = result["pooled"]
            rows.append(
                f"| {label} | {model} | {protocol} | {len(result['folds'])} | {_pm(result, 'uar')} | "
                f"{p['uar']:.3f} | {_pm(result, 'accuracy')} | {p['accuracy']:.3f} | {random_text} |"
            )
            print(
                f"[{time.perf_counter() - t0:6.1f} s] {name}: UAR {p['uar']:.3f} pooled, "
                f"{_pm(result, 'uar')} over folds",
                file=sys.stderr,
                flush=True,
            )
    print("\n".join(rows))
    print(f"\n({time.perf_counter() - started:.0f} s; reports under {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
