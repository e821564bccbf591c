"""Emotional speech corpora as immutable, sorted lists of :class:`Record`.

One module per corpus parses the publisher's folder layout and file names
(never the audio) and owns the mapping of the corpus's labels onto the
canonical emotions (:data:`emovox.labels.EMOTIONS`); ``csv`` and ``folder``
read a user's own data. Load any of them by name::

    from emovox.corpora import load_corpus
    records = load_corpus("emodb")                    # default folder
    records = load_corpus("csv", "my/manifest.csv", mapping="joy=happy")
"""

from __future__ import annotations

from emovox.corpora.manifest import load_csv, write_manifest
from emovox.corpora.records import Record
from emovox.corpora.registry import (
    CORPORA,
    CorpusInfo,
    corpus_licence,
    corpus_names,
    default_corpora_root,
    default_corpus_dir,
    get_corpus_info,
    load_corpus,
)
from emovox.corpora.stats import corpus_stats, format_stats

__all__ = [
    "CORPORA",
    "CorpusInfo",
    "Record",
    "corpus_licence",
    "corpus_names",
    "corpus_stats",
    "default_corpora_root",
    "default_corpus_dir",
    "format_stats",
    "get_corpus_info",
    "load_corpus",
    "load_csv",
    "write_manifest",
]
