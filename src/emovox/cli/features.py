"""``emovox features``: extract features of many files into one feature file.

Examples::

    emovox features --corpus ravdess --set mfcc --out ravdess-mfcc.safetensors
    emovox features recordings/ --set classic --out mine.safetensors --cache-dir .cache
    emovox features --corpus csv:/data/mine.csv --set egemaps --out mine-egemaps.safetensors

Sets: the utterance-level feature sets of :mod:`emovox.features.registry`
(``classic``, ``mfcc-functionals``, ``egemaps``: one vector per clip), and the
fast batched front end (``logmel``, ``mfcc``: one ``(dim, frames)`` matrix per
clip, 10 ms frames). The output is a safetensors file with a JSON description
of every clip (path, and corpus, speaker and labels for ``--corpus`` inputs);
read it with :func:`emovox.features.store.read_features`. It is written
atomically, only once every input has been read: a bad file stops the run
with one line naming it and nothing is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from emovox.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

FRAME_SETS = ("logmel", "mfcc")


def register(subparsers) -> None:
    # The feature layer is imported only when the command runs: `emovox predict` starts without it.
    p = subparsers.add_parser(
        "features",
        help="extract features (MFCC, log-mel, classic functionals, eGeMAPS) of many files into one file",
        description="Extract features of audio files, folders or corpora into one safetensors feature file "
        "(read it with emovox.features.store.read_features).",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="audio files, folders or glob patterns")
    p.add_argument(
        "--corpus",
        action="append",
        default=[],
        metavar="NAME",
        help="a corpus (repeatable): NAME (from the corpora root) or LAYOUT:PATH, e.g. "
        "ravdess:/data/RAVDESS, csv:/data/mine.csv, folder:/data/mine; adds speakers and labels",
    )
    p.add_argument("--corpora-root", metavar="DIR", help="where corpus folders live (default: ../shared/corpora)")
    p.add_argument(
        "--set",
        required=True,
        metavar="SET",
        help="feature set: classic, mfcc-functionals, egemaps (one vector per clip), "
        "logmel, mfcc (one matrix per clip), or a registered set",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="feature file to write (.safetensors)")
    p.add_argument("--sample-rate", type=int, default=16000, metavar="HZ", help="decode at this rate (default 16000)")
    p.add_argument("--n-mels", type=int, default=64, help="logmel/mfcc: mel bands (default 64)")
    p.add_argument("--n-mfcc", type=int, default=40, help="mfcc: coefficients (default 40)")
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes (default 1: one process, decoding on a second thread)"
    )
    p.add_argument("--cache-dir", metavar="DIR", help="utterance sets: reuse features cached here")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N clips (quick runs)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    for name in ("sample_rate", "n_mels", "n_mfcc", "workers", "limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if Path(args.out).is_dir():
        raise ConfigError(f"--out {args.out!r} is a folder: give a file name, e.g. {args.out}/features.safetensors")
    from emovox.features import feature_set_names

    sets = (*feature_set_names(), *FRAME_SETS)
    if args.set not in sets:
        raise ConfigError(f"unknown feature set {args.set!r}: expected one of {', '.join(sets)}")
    items = _items(args)
    if args.limit is not None:
        items = items[: args.limit]
    if not items:
        raise ConfigError("no inputs: give audio files, folders or patterns, or --corpus NAME")
    paths = [item["path"] for item in items]
    started = time.perf_counter()
    features: np.ndarray | list[np.ndarray]
    if args.set in FRAME_SETS:
        frames, config = _frame_features(paths, args)
        features, dim = frames, (frames[0].shape[0] if frames else 0)
    else:
        from emovox.features import features_config, featurize_records

        table = featurize_records(
            paths,
            args.set,
            sample_rate_hz=args.sample_rate,
            cache_dir=args.cache_dir,
            n_jobs=args.workers,
            progress=not args.quiet,
        )
        features, dim = table, table.shape[1]
        config = features_config(args.set, sample_rate_hz=args.sample_rate)
    from emovox.features.store import write_features

    try:
        out = write_features(args.out, features, items, config)
    except OSError as error:
        raise ConfigError(f"cannot write {args.out!r}: {error.strerror or error}; choose a writable path") from None
    seconds = time.perf_counter() - started
    print(
        f"wrote {args.set} features of {len(items)} clips ({dim} per {'frame' if args.set in FRAME_SETS else 'clip'}) "
        f"to {out} in {seconds:.1f} s ({len(items) / max(seconds, 1e-9):.0f} clips/s)"
    )
    return 0


def _items(args: argparse.Namespace) -> list[dict]:
    """One dict per clip: plain inputs first (path only), then corpus records (path, corpus, speaker, labels)."""
    from emovox.cli.predict import STDIN, expand_inputs

    items = []
    for _, source in expand_inputs(list(args.inputs)):
        if isinstance(source, Exception):
            raise source
        if source == STDIN:
            raise ConfigError("emovox features reads files, not standard input: save the audio to a file first")
        items.append({"path": source})
    if args.corpus:
        from emovox.evaluation.experiment import load_corpus_entry

        for entry in args.corpus:
            for r in load_corpus_entry(entry, args.corpora_root):
                items.append(
                    {"path": r.path, "corpus": r.corpus, "speaker": r.speaker, "label": r.label, "emotion": r.emotion}
                )
    return items


def _frame_features(paths: list[str], args: argparse.Namespace) -> tuple[list[np.ndarray], dict]:
    """``(dim, frames)`` per file from the fast front end, and its config."""
    import torch
    from tqdm import tqdm

    from emovox.features.batched import FrontendPool
    from emovox.features.frontend import LogMelFrontend, MfccFrontend

    torch.set_num_threads(1)
    frontend: LogMelFrontend | MfccFrontend
    if args.set == "mfcc":
        frontend = MfccFrontend(args.sample_rate, n_mfcc=args.n_mfcc, n_mels=args.n_mels)
    else:
        frontend = LogMelFrontend(args.sample_rate, n_mels=args.n_mels)
    with FrontendPool(frontend, workers=args.workers) as pool:
        features = list(
            tqdm(
                pool.features(paths),
                total=len(paths),
                unit="clip",
                desc=args.set,
                disable=args.quiet or not sys.stderr.isatty(),
            )
        )
    config = {
        "features": {"name": args.set, "frontend": type(frontend).__name__, **frontend.config()},
        "audio": {"loader": "emovox.audio.load_audio", "sample_rate_hz": args.sample_rate},
    }
    return features, config
