"""Fuzz the corpus file-name parsers and the CSV manifest loader.

Mode byte 0 (even): the rest is a file name (UTF-8, invalid bytes escaped),
placed under a fuzzed parent folder and handed to every corpus parser
(``parse_ravdess``, ``parse_crema_d``, ...). Mode odd: the rest is a CSV
manifest loaded with :func:`emovox.corpora.manifest.load_csv` next to two
real (tiny) audio files. Contract: a :class:`~emovox.errors.CorpusError`
(or ``ConfigError`` for a bad mapping) or a valid :class:`Record`.

    python fuzz/fuzz_corpus_names.py CORPUS_DIR SEEDS_DIR -max_total_time=600
"""

from __future__ import annotations

import os
import tempfile

import atheris
import common  # noqa: F401

with atheris.instrument_imports(include=["emovox"]):
    from emovox.corpora.crema_d import parse_crema_d
    from emovox.corpora.emodb import parse_emodb
    from emovox.corpora.emovo import parse_emovo
    from emovox.corpora.manifest import load_csv
    from emovox.corpora.ravdess import parse_ravdess
    from emovox.corpora.records import Record
    from emovox.corpora.savee import parse_savee
    from emovox.corpora.tess import parse_tess
    from emovox.corpora.turev import parse_turev
    from emovox.errors import ConfigError, CorpusError
    from emovox.labels import EMOTIONS

PARSERS = (parse_ravdess, parse_crema_d, parse_tess, parse_savee, parse_emodb, parse_emovo, parse_turev)

_DIR = tempfile.mkdtemp(prefix="emovox-fuzz-names-")
for _name in ("a.wav", "b.flac"):
    with open(os.path.join(_DIR, _name), "wb") as _fh:
        _fh.write(b"RIFF")  # existence is all load_csv checks
_CSV = os.path.join(_DIR, "manifest.csv")


def _check(record) -> None:
    assert isinstance(record, Record), type(record)
    assert record.emotion in EMOTIONS, record.emotion
    assert record.speaker, record


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0], data[1:]
    if mode % 2 == 0:
        text = body.decode("utf-8", "surrogateescape").replace("\x00", "")
        parent, _, name = text.rpartition("|")
        path = os.path.join("/data", parent, name) if parent else os.path.join("/data", name)
        for parse in PARSERS:
            try:
                _check(parse(path))
            except CorpusError:
                pass
    else:
        with open(_CSV, "wb") as fh:
            fh.write(body)
        mapping = "joy=happy,other=-" if mode % 4 == 3 else None
        try:
            for record in load_csv(_CSV, mapping=mapping):
                _check(record)
        except (CorpusError, ConfigError):
            pass


if __name__ == "__main__":
    common.start(test_one_input)
