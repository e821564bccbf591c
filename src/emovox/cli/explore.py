"""``emovox explore``: class distribution, waveforms and spectrograms of a corpus.

Example::

    emovox explore ../shared/corpora/ravdess --corpus ravdess --out runs/explore-ravdess
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "explore",
        help="plot a corpus: class distribution, one waveform and spectrogram per emotion",
        description="Write PNG plots of a corpus (class distribution; a waveform and a spectrogram "
                    "of one clip per emotion) and an index.md linking them.",
    )
    parser.add_argument("dir", nargs="?", metavar="DIR",
                        help="corpus folder (default: the corpus's folder under the corpora root)")
    parser.add_argument("--corpus", required=True, metavar="NAME", help="corpus loader name, e.g. ravdess")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="which clip shows each emotion")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from emovox.corpora import load_corpus
    from emovox.corpora.explore import explore_records

    records = load_corpus(args.corpus, args.dir)
    index = explore_records(records, args.out, name=args.corpus, seed=args.seed)
    print(f"wrote {index}")
    return 0
