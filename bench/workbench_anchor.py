"""The workbench's anchor: a fixed study on EMO-DB (LOSO) and RAVDESS (6 speaker folds), every figure with its interval.

Runs ``bench/studies/anchor.toml`` — eGeMAPS under logistic regression,
RBF-SVM, MLP and gradient-boosted trees, frozen Whisper-base embeddings under
logistic regression and RBF-SVM (balanced class weights, scaling per training
fold, fixed hyper-parameters), plus a mean-probability fusion of eGeMAPS+SVM with
Whisper+linear — and prints one row per run: UAR and accuracy pooled over the
test folds with 95 % speaker-bootstrap intervals, the fold mean ± std, and the
seconds it took. ``docs/workbench.md`` sets the figures beside published ones.

Usage::

    .venv/bin/python bench/workbench_anchor.py [--out runs/anchor] [--json bench/results/workbench_anchor.json]

Resumable (the study is): a second call reads finished runs back. First run:
about 10 minutes on two cores from an empty feature cache (mostly Whisper).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from emovox.evaluation.study import run_study
from emovox.evaluation.study_file import load_study

STUDY = Path(__file__).with_name("studies") / "anchor.toml"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/anchor", help="study folder (default runs/anchor)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON here")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    summary = run_study(load_study(STUDY), args.out, log=lambda m: print(m, file=sys.stderr, flush=True))
    print("| data | run | UAR [95 % CI] | accuracy [95 % CI] | fold mean ± std | s |")
    print("|---|---|---|---|---|---|")
    for r in summary["rows"]:
        seconds = "" if r["seconds"] is None else f"{r['seconds']:.0f}"
        print(
            f"| {r['data']} | {r['run']} | {r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}] | "
            f"{r['second_value']:.3f} [{r['second_low']:.3f}, {r['second_high']:.3f}] | "
            f"{r['fold_mean']:.3f} ± {r['fold_std']:.3f} | {seconds} |"
        )
    for c in summary["comparisons"]:
        print(
            f"{c['data']}: {c['b']} − {c['a']} = {c['difference']:+.3f} UAR "
            f"[{c['low']:.3f}, {c['high']:.3f}], p = {c['p_value']:.3g}"
        )
    print(f"total {time.perf_counter() - started:.0f} s; table {Path(args.out) / 'results.md'}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": summary["rows"], "comparisons": summary["comparisons"]}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
