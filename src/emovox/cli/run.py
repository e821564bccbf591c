"""``emovox run``: run a study file — data sets × feature sets × models × seeds — into one table.

Examples::

    emovox run study.toml --out runs/my-study
    emovox run study.toml --out runs/my-study --dry-run

The study file format is in :mod:`emovox.evaluation.study_file`. Stopped
(Ctrl-C, a kill, a crash), the same command resumes: finished runs are read
back, features come from the disk cache.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a study file (corpora × features × models × seeds) into one table with intervals",
        description="Run every evaluation a study file describes (resumable), its fusions and maps, and write\n"
        "results.md / results.csv with 95 % speaker-bootstrap intervals and comparison plots.",
        epilog="examples:\n"
        + __doc__.split("Examples::\n\n")[1].split("\n\n")[0]
        + "\n\nstudy file format: see docs/workbench.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("study", metavar="STUDY.toml", help="the study file")
    parser.add_argument(
        "--out", metavar="DIR", help="folder for the results (default: runs/NAME, NAME from the study file)"
    )
    parser.add_argument("--dry-run", action="store_true", help="check the file and list the runs; run nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from emovox.evaluation.study import check_out_dir, run_study
    from emovox.evaluation.study_file import load_study

    study = load_study(args.study)
    out = Path(args.out) if args.out else Path("runs") / study.name
    check_out_dir(out)
    runs = study.runs()
    if args.dry_run:
        for run in runs:
            print(run.run_id)
        for fusion in study.fusions:
            print(f"{fusion.data}/fusion/{fusion.name}: {' + '.join(fusion.members)} ({fusion.method})")
        print(f"{len(runs)} runs, {len(study.fusions)} fusions -> {out}")
        return 0
    log = None if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    summary = run_study(study, out, log=log, progress_bars=not args.quiet and sys.stderr.isatty())
    for row in summary["rows"]:
        low, high = row["low"], row["high"]
        interval = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
        value = "–" if row["value"] is None else f"{row['value']:.3f}"
        print(f"{row['data']:<12} {row['run']:<40} {row['metric'].upper()} {value}{interval}")
    print(f"table: {out / 'results.md'}")
    return 0
