"""``emovox evaluate``: train and test a model under an evaluation protocol.

Examples::

    emovox evaluate --corpus ravdess --model svm-egemaps --protocol loso --out runs/ravdess-egemaps
    emovox evaluate --corpus emodb --model svm-mfcc --protocol speaker-kfold --folds 5 --out runs/x
    emovox evaluate --corpus emodb --features egemaps --model gbt --protocol loso --out runs/emodb-gbt
    emovox evaluate --corpus emodb --features file:my_features.csv --model linear --tune --out runs/mine
    emovox evaluate --corpus csv:my_manifest.csv --model svm-egemaps --protocol loso --out runs/mine
    emovox evaluate --corpus ravdess --corpus emodb --test-corpus emovo --scheme six-calm-merged \\
        --model svm-egemaps --protocol cross-corpus --out runs/cc

Writes ``result.json``, ``report.md`` and two PNGs to ``--out`` and prints a
short table (UAR first, accuracy beside; mean ± std over folds and pooled).
``--with-random`` also runs a random stratified split on the same data and
prints it below, marked as leaking speakers, for comparison with systems that
report such figures.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from emovox.errors import ConfigError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a model speaker-independently (UAR first) and write a report",
        description="Train and test a model under an evaluation protocol (speaker-independent\n"
        "by default) and write result.json, report.md and plots to --out.",
        epilog="examples:\n" + __doc__.split("Examples::\n\n")[1].split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--corpus",
        action="append",
        required=True,
        metavar="NAME",
        help="corpus to evaluate on (repeatable); with cross-corpus: to train on. "
        "NAME or LAYOUT:PATH for data elsewhere or your own: ravdess:/data/RAVDESS, "
        "csv:/data/mine.csv (columns path,label,speaker), folder:/data/mine (one folder per label)",
    )
    parser.add_argument(
        "--corpora-root",
        metavar="DIR",
        help="folder holding the corpora (default: $EMOVOX_CORPORA or ../shared/corpora)",
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="MODEL",
        help="a classifier with --features: linear (logreg), svm-linear, svm-rbf, mlp, gbt, rf, "
        "knn; or svm-egemaps / svm-mfcc (svm-rbf on their own features); or a saved model folder",
    )
    parser.add_argument(
        "--features",
        metavar="NAME",
        help="feature set the model reads (egemaps, compare, mfcc-functionals, classic, "
        "whisper-base, file:PATH of your own CSV/NPZ); required by the classifiers, "
        "svm-egemaps / svm-mfcc read their own",
    )
    parser.add_argument(
        "--target",
        default="emotion",
        metavar="NAME",
        help="what to predict: emotion (default), gender, corpus, intensity, or a column "
        "of a csv: corpus; numeric targets are regressed (CCC, MAE)",
    )
    parser.add_argument(
        "--protocol",
        default="loso",
        metavar="NAME",
        help="loso (default), speaker-kfold, cross-corpus, leave-one-corpus-out (each --corpus held out in "
        "turn; scheme native: the classes every corpus shares), or random (speakers leak)",
    )
    parser.add_argument("--folds", type=int, default=6, metavar="K", help="folds of speaker-kfold (default 6)")
    parser.add_argument(
        "--scheme",
        default="native",
        metavar="NAME",
        help="label scheme: native (each corpus's own classes), ravdess8, seven, ...",
    )
    parser.add_argument(
        "--test-corpus",
        action="append",
        default=[],
        metavar="NAME",
        help="cross-corpus: corpus to test on (repeatable)",
    )
    parser.add_argument(
        "--test-fraction", type=float, default=0.2, metavar="F", help="random: test share per class (default 0.2)"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for result.json, report.md and PNGs")
    parser.add_argument(
        "--cache-dir", metavar="DIR", help="feature cache (default: $EMOVOX_CACHE/features or ~/.cache/emovox/features)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of fold assignment and inner splits")
    parser.add_argument(
        "--tune",
        action="store_true",
        help="tune the classifier's hyper-parameters per fold (small grid) by inner "
        "speaker-disjoint CV on the training speakers only",
    )
    parser.add_argument(
        "--max-speakers", type=int, metavar="N", help="use only the first N speakers of each corpus (quick runs)"
    )
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="feature extraction workers (default 1)")
    parser.add_argument(
        "--with-random",
        action="store_true",
        help="also report a random stratified split (speakers leak) for comparison",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no per-fold progress on stderr (progress bars show only on a terminal)"
    )
    parser.set_defaults(func=handler)


def _progress(number: int, total: int, name: str) -> None:
    print(f"  fold {number}/{total}: {name}", file=sys.stderr, flush=True)


def _register_artifact_models() -> None:
    """Let ``--model DIR`` load a saved model artifact, when the training layer is installed."""
    from emovox.evaluation.experiment import register_model_resolver

    try:
        from emovox.training.predict import artifact_resolver
    except ImportError:  # training layer (torch) not available: baselines only
        return
    register_model_resolver(artifact_resolver)


def handler(args: argparse.Namespace) -> int:
    from emovox.evaluation.experiment import EvaluationSpec, evaluate
    from emovox.evaluation.report import format_summary, write_report
    from emovox.models.classifiers import is_classifier

    if not is_classifier(args.model):
        _register_artifact_models()

    if args.folds < 2:
        raise ConfigError(f"--folds must be at least 2, got {args.folds}")
    if args.max_speakers is not None and args.max_speakers < 1:
        raise ConfigError(f"--max-speakers must be at least 1, got {args.max_speakers}")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    spec = EvaluationSpec(
        corpora=tuple(args.corpus),
        model=args.model,
        protocol=args.protocol,
        scheme=args.scheme,
        folds=args.folds,
        test_corpus=tuple(args.test_corpus),
        test_fraction=args.test_fraction,
        seed=args.seed,
        tune=args.tune,
        max_speakers=args.max_speakers,
        corpora_root=args.corpora_root,
        cache_dir=args.cache_dir,
        n_jobs=args.jobs,
        features=args.features,
        target=args.target,
    )
    progress = None if args.quiet else _progress
    bars = progress is not None and sys.stderr.isatty()  # a log gets the fold lines, never bar frames
    out = Path(args.out)
    result = evaluate(spec, progress=progress, progress_bars=bars)
    paths = write_report(result, out)
    print(format_summary(result))
    if args.with_random and spec.protocol != "random":
        # Same data as the honest run: under cross-corpus, training and test corpora pooled.
        pooled = replace(spec, protocol="random", corpora=spec.corpora + spec.test_corpus, test_corpus=())
        random_result = evaluate(pooled, progress=progress, progress_bars=bars)
        write_report(random_result, out / "random-split")
        print()
        print(format_summary(random_result))
    print(f"report: {paths['markdown']}")
    return 0
