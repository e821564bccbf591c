"""``emovox corpus``: inspect corpora.

::

    emovox corpus list [--json]
    emovox corpus stats [DIR] --corpus NAME [--scheme SCHEME] [--json]
    emovox corpus manifest [DIR] --corpus NAME --output FILE.csv

``DIR`` defaults to the corpus's folder under the corpora root
(``$EMOVOX_CORPORA``). ``--scheme`` takes a scheme name, an inline mapping
(``neutral=neutral,calm=neutral,sad=-``) or a JSON file. For ``csv`` and
``folder`` corpora, ``--label-map`` maps the data's labels onto canonical
emotions and ``--speaker-regex`` finds speakers in file names.
"""

from __future__ import annotations

import argparse
import json
import sys

from emovox.cli import plain_help
from emovox.corpora import (
    CORPORA,
    corpus_names,
    corpus_stats,
    default_corpora_root,
    default_corpus_dir,
    format_stats,
    load_corpus,
    write_manifest,
)
from emovox.labels import scheme_names


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "corpus",
        help="list corpora, count their labels and speakers, write manifests",
        description=plain_help(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)

    listing = commands.add_parser("list", help="known corpora, their default folders, present or not")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=run_list)

    stats = commands.add_parser("stats", help="counts per label and per speaker")
    _add_source(stats)
    stats.add_argument(
        "--scheme",
        help=f"label scheme: one of {', '.join(scheme_names())}, "
        "an inline mapping 'a=x,b=x,c=-' or a JSON file (default: canonical emotions)",
    )
    stats.add_argument("--json", action="store_true", help="print JSON instead of tables")
    stats.set_defaults(func=run_stats)

    manifest = commands.add_parser("manifest", help="write the corpus's records as a CSV manifest")
    _add_source(manifest)
    manifest.add_argument("-o", "--output", required=True, help="CSV file to write")
    manifest.set_defaults(func=run_manifest)


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir",
        nargs="?",
        metavar="DIR",
        help="corpus folder (manifest file for csv); default: its folder under the corpora root",
    )
    parser.add_argument(
        "--corpus",
        required=True,
        choices=corpus_names(),
        metavar="NAME",
        help=f"corpus layout: {', '.join(corpus_names())}",
    )
    parser.add_argument(
        "--label-map", metavar="MAP", help="csv/folder: label -> canonical emotion, 'joy=happy,other=-' or a JSON file"
    )
    parser.add_argument(
        "--speaker-regex",
        metavar="RE",
        help="folder: regex finding the speaker in each file's path below its label folder",
    )
    parser.add_argument(
        "--vocal-channel",
        choices=("speech", "song", "both"),
        help="ravdess: which vocal channel to load (default speech)",
    )


def _load(args: argparse.Namespace) -> list:
    options = {
        "mapping": args.label_map,
        "speaker_regex": args.speaker_regex,
        "vocal_channel": args.vocal_channel,
    }
    options = {k: v for k, v in options.items() if v is not None}
    return load_corpus(args.corpus, args.dir, **options)


def run_list(args: argparse.Namespace) -> int:
    root = default_corpora_root()
    rows = []
    for name, info in CORPORA.items():
        folder = default_corpus_dir(name)
        rows.append(
            {
                "name": name,
                "title": info.title,
                "default_dir": None if folder is None else str(folder),
                "present": folder is not None and folder.is_dir(),
            }
        )
    if args.json:
        json.dump({"root": str(root), "corpora": rows}, sys.stdout, indent=2)
        print()
        return 0
    print(f"corpora root: {root}" + ("" if root.is_dir() else "  (missing: set $EMOVOX_CORPORA)"))
    nw = max(len(name) for name in CORPORA)  # the rows' names and titles
    tw = max(len(info.title) for info in CORPORA.values())
    for r in rows:
        where = r["default_dir"] or "(needs a path)"
        state = "present" if r["present"] else ("-" if r["default_dir"] is None else "missing")
        print(f"{r['name']:<{nw}}  {r['title']:<{tw}}  {state:<7}  {where}")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    records = _load(args)
    stats = corpus_stats(records, scheme=args.scheme)
    if args.json:
        root = args.dir if args.dir is not None else default_corpus_dir(args.corpus)
        json.dump({"corpus": args.corpus, "root": str(root), **stats}, sys.stdout, indent=2)
        print()
    else:
        print(format_stats(stats, title=args.corpus))
    return 0


def run_manifest(args: argparse.Namespace) -> int:
    records = _load(args)
    path = write_manifest(records, args.output)
    print(f"wrote {len(records)} records to {path}")
    return 0
