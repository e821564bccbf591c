"""``emovox explore``: look at a corpus, or at its feature space.

Without ``--features``: class distribution, one waveform and spectrogram per
emotion. With ``--features NAME``: 2-D projections of the feature vectors
(PCA, t-SNE, UMAP) coloured by emotion, speaker and corpus, and optionally the
speaker-independent permutation importance of each feature (``--importance``).

Examples::

    emovox explore ../shared/corpora/ravdess --corpus ravdess --out runs/explore-ravdess
    emovox explore --corpus emodb --features egemaps --importance --model linear --out runs/explore-emodb
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emovox.errors import ConfigError

#: Defaults of the feature-space options (``None`` in the parser, so that their use without --features is caught).
DEFAULT_PROJECTIONS = "pca,tsne"
DEFAULT_COLORS = "emotion,speaker,corpus"
DEFAULT_MODEL = "linear"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "explore",
        help="plot a corpus (class distribution, waveforms, spectrograms) or its feature space "
        "(projections, permutation importance)",
        description="Write PNG plots of a corpus and an index.md linking them. Without --features: class "
        "distribution and one waveform and spectrogram per emotion. With --features NAME: 2-D "
        "projections of the feature vectors and, with --importance, speaker-independent "
        "permutation feature importance (importance.csv and a bar plot).",
        epilog="examples:\n" + __doc__.split("Examples::\n\n")[1].split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "dir", nargs="?", metavar="DIR", help="corpus folder (default: the corpus's folder under the corpora root)"
    )
    parser.add_argument(
        "--corpus",
        action="append",
        required=True,
        metavar="NAME",
        help="corpus loader name, e.g. ravdess; with --features repeatable, NAME or LAYOUT:PATH "
        "(csv:/data/mine.csv, folder:/data/mine) as in emovox evaluate",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--seed", type=int, default=0, help="which clip shows each emotion; seed of projections, folds and shuffles"
    )
    parser.add_argument(
        "--max-speakers", type=int, metavar="N", help="use only the first N speakers of each corpus (quick runs)"
    )
    parser.add_argument(
        "--corpora-root",
        metavar="DIR",
        help="folder holding the corpora (default: $EMOVOX_CORPORA or ../shared/corpora)",
    )
    features = parser.add_argument_group("feature space (with --features)")
    features.add_argument(
        "--features", metavar="NAME", help="feature set to explore: egemaps, compare, mfcc-functionals, classic, ..."
    )
    features.add_argument(
        "--projection",
        metavar="LIST",
        help=f"comma-separated: pca, tsne, umap (umap needs emovox[explore]); default {DEFAULT_PROJECTIONS}",
    )
    features.add_argument(
        "--color", metavar="LIST", help="colour points by: emotion, speaker, corpus (comma-separated; default all)"
    )
    features.add_argument(
        "--scheme",
        default="native",
        metavar="NAME",
        help="label scheme for the emotion colours and importance (default native)",
    )
    features.add_argument(
        "--importance", action="store_true", help="permutation feature importance over speaker folds (UAR drop)"
    )
    features.add_argument(
        "--model",
        metavar="MODEL",
        help=f"classifier for --importance (default {DEFAULT_MODEL}): linear, svm-linear, svm-rbf, mlp, gbt, rf, knn",
    )
    features.add_argument("--folds", type=int, default=5, metavar="K", help="speaker folds of --importance (default 5)")
    features.add_argument(
        "--repeats", type=int, default=5, metavar="N", help="shuffles per feature and fold (default 5)"
    )
    features.add_argument(
        "--cache-dir", metavar="DIR", help="feature cache (default: $EMOVOX_CACHE/features or ~/.cache/emovox/features)"
    )
    features.add_argument("--jobs", type=int, default=1, metavar="N", help="feature extraction workers (default 1)")
    features.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(func=handler)


def _split_list(text: str, allowed, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ConfigError(f"{what} is empty: give e.g. {','.join(allowed)}")
    unknown = [t for t in items if t not in allowed]
    if unknown:
        raise ConfigError(f"unknown {what} {unknown[0]!r}: expected one of {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def handler(args: argparse.Namespace) -> int:
    if args.max_speakers is not None and args.max_speakers < 1:
        raise ConfigError(f"--max-speakers must be at least 1, got {args.max_speakers}")
    if args.features is None:
        used = [f"--{n}" for n in ("projection", "color", "model") if getattr(args, n) is not None]
        used += ["--importance"] if args.importance else []
        if used:
            raise ConfigError(f"{used[0]} explores a feature space: add --features NAME (e.g. --features egemaps)")
        if len(args.corpus) != 1:
            raise ConfigError("without --features, explore one corpus at a time (one --corpus)")
        from emovox.corpora import load_corpus
        from emovox.corpora.explore import explore_records

        entry = args.corpus[0]
        if args.dir is not None or (":" not in entry and args.corpora_root is None):
            records = load_corpus(entry, args.dir)  # today's form: NAME [DIR]
        else:  # NAME under --corpora-root, or LAYOUT:PATH
            from emovox.evaluation.experiment import load_corpus_entry

            records = load_corpus_entry(entry, args.corpora_root)
        from emovox.evaluation.experiment import keep_first_speakers

        records = keep_first_speakers(records, args.max_speakers)
        index = explore_records(records, args.out, name=entry.partition(":")[0], seed=args.seed)
        print(f"wrote {index}")
        return 0
    return _explore_features(args)


def _explore_features(args: argparse.Namespace) -> int:
    from emovox.evaluation.experiment import (
        default_cache_dir,
        keep_first_speakers,
        load_corpus_entry,
        prepare_labels,
    )
    from emovox.evaluation.projection import COLOR_KINDS, projection_names

    methods = _split_list(args.projection or DEFAULT_PROJECTIONS, projection_names(), "projection")
    colors = _split_list(args.color or DEFAULT_COLORS, COLOR_KINDS, "colouring")
    if args.importance and args.folds < 2:
        raise ConfigError(f"--folds must be at least 2, got {args.folds}")
    if args.repeats < 1 or args.jobs < 1:
        raise ConfigError("--repeats and --jobs must be at least 1")
    entries = list(args.corpus)
    if args.dir is not None:
        if len(entries) != 1 or ":" in entries[0]:
            raise ConfigError("DIR goes with one --corpus NAME; for several corpora write --corpus NAME:PATH")
        entries = [f"{entries[0]}:{args.dir}"]
    log = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    loaded = []
    for entry in dict.fromkeys(entries):
        loaded += keep_first_speakers(load_corpus_entry(entry, args.corpora_root), args.max_speakers)
    records, y, classes = prepare_labels(loaded, args.scheme)

    from emovox.evaluation.feature_space import write_feature_space
    from emovox.features import featurize_records, get_feature_set
    from emovox.features.names import feature_names

    feature_set = get_feature_set(args.features)
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    log(f"features {feature_set.name}: {len(records)} clips")
    X = featurize_records(
        records,
        feature_set,
        sample_rate_hz=16000,
        cache_dir=cache,
        n_jobs=args.jobs,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    names = feature_names(feature_set, X.shape[1])
    index = write_feature_space(
        X,
        records,
        y,
        classes,
        args.out,
        feature_set=feature_set.name,
        names=names,
        methods=methods,
        colors=colors,
        importance_model=(args.model or DEFAULT_MODEL) if args.importance else None,
        folds=args.folds,
        repeats=args.repeats,
        seed=args.seed,
        scheme=args.scheme,
        log=log,
    )
    print(f"wrote {index}")
    return 0
