"""``emovox batch``: score many files on Ray into resumable Parquet (and CSV) part files.

Thin over :func:`emovox.batch.run_batch`: parse, run, print the summary line.
Exit codes: 0 every input scored; 1 some inputs failed (their rows hold the
error, the others are scored); 2 usage, input-list or model error (one line).
"""

from __future__ import annotations

import argparse
import sys

from emovox.cli import add_model_choice
from emovox.errors import ConfigError

EPILOG = """\
inputs: audio files, folders (recursive), glob patterns in quotes ('corpus/**/*.flac'),
@list.txt (one path a line), CSV manifests with a 'path' column; local paths or
URIs pyarrow reads (file://, s3://, gs://, hdfs://).

output (--out DIR): DIR/parquet/part-NNNNN.parquet (DIR/csv/part-NNNNN.csv with --csv),
the columns of 'emovox predict --csv': file, input_index, kind, segment, start_s, end_s,
label, confidence, speech_s, reason, flags, score_<label>..., model, model_version, error
(label: an emotion, 'unknown' or 'no_speech' with null scores; flags: quality flags
joined by ';'); one row per input (kind 'file'); with --timeline each input's file row
is followed by one row per speech segment (kind 'segment'). Killed or interrupted? Run
the same command again (or just 'emovox batch --out DIR'): finished parts are kept, the
rest is scored, and every input ends with exactly one file row.

exit codes: 0 all scored; 1 some inputs failed (error in their rows); 2 usage or model error.
examples:
  emovox batch 'corpus/**/*.flac' --out scores/
  emovox batch @calls.txt --out scores/ --csv --workers 8 --address auto
  emovox batch manifest.csv --out scores/ --timeline --model my-model/
  emovox batch 'calls/*.wav' --out scores/ --fast     # the small CNN (about 10x faster)"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "batch",
        help="score many files on Ray into resumable Parquet/CSV part files",
        description="Score many audio files on Ray Data (embedded by default, or a cluster with "
        "--address): one atomic part file per shard of inputs; a re-run resumes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="file, folder, glob, @list.txt or manifest.csv (none: finish the job in --out)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; resumed if it holds this job)")
    p.add_argument(
        "--list",
        action="append",
        default=[],
        metavar="FILE",
        dest="lists",
        help="text file of input paths, one a line (repeatable)",
    )
    p.add_argument("--csv", action="store_true", help="also write CSV parts (DIR/csv/)")
    p.add_argument("--timeline", action="store_true", help="one row per speech segment instead of per file")
    add_model_choice(p, needs=" with model.onnx")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="model actors (default: the cluster's CPUs / --threads-per-worker)",
    )
    p.add_argument(
        "--threads-per-worker",
        type=int,
        default=1,
        metavar="T",
        help="ONNX Runtime threads per actor, and CPUs it reserves (default: 1)",
    )
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="join this Ray cluster ('auto', 'ray://head:10001'; default: start Ray embedded)",
    )
    p.add_argument("--batch-size", type=int, default=8, metavar="B", help="windows per model call (default: 8)")
    p.add_argument(
        "--shard-size",
        type=int,
        default=None,
        metavar="S",
        help="inputs per part file (default: 256, or the job's own when resuming)",
    )
    p.add_argument(
        "--min-confidence",
        type=float,
        default=None,
        metavar="P",
        help="answer 'unknown' under this calibrated confidence (default: the model's threshold)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines (the summary still prints)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from emovox.batch import run_batch

    if not args.inputs and not args.lists and args.out is None:  # pragma: no cover - --out is required
        raise ConfigError("give INPUT... and --out DIR")
    from emovox.inference.predictor import FAST_MODEL

    summary = run_batch(
        args.inputs,
        out_dir=args.out,
        lists=args.lists,
        model=FAST_MODEL if args.fast else args.model,
        csv=args.csv,
        timeline=args.timeline,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        address=args.address,
        batch_size=args.batch_size,
        min_confidence=args.min_confidence,
        shard_size=args.shard_size,
        quiet=args.quiet,
    )
    print(summary.line(), file=sys.stderr)
    return 1 if summary.n_failed else 0
