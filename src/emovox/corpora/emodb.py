"""EMO-DB, Berlin Database of Emotional Speech (Burkhardt et al. 2005), German.

Layout: ``wav/SSTTTEV.wav``: speaker ``SS``, text ``TTT`` (``a01`` ... ``b10``),
emotion letter ``E`` (German initials: ``W`` Wut anger, ``L`` Langeweile
boredom, ``E`` Ekel disgust, ``A`` Angst fear, ``F`` Freude happiness, ``T``
Trauer sadness, ``N`` neutral) and version ``V``. Speaker genders are those of
the EMO-DB documentation.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from emovox.corpora.files import corpus_dir, find_audio, name_error, stem
from emovox.corpora.records import Record

#: The terms the corpus is published under (the one place emovox lists them:
#: :func:`emovox.corpora.corpus_licence`, data cards and model cards read it).
LICENCE = "free for research use"
#: The publication to cite for the corpus.
CITATION = "Burkhardt et al. 2005"

#: EMO-DB emotion letter -> canonical emotion.
LABELS: dict[str, str] = {
    "W": "angry",
    "L": "boredom",
    "E": "disgust",
    "A": "fearful",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}
#: Speaker -> gender, from the EMO-DB documentation.
GENDERS: dict[str, str] = {
    **dict.fromkeys(("03", "10", "11", "12", "15"), "male"),
    **dict.fromkeys(("08", "09", "13", "14", "16"), "female"),
}
PATTERN = (
    "EMO-DB names SSTTTEV.wav|flac (speaker 2 digits, text like a01, emotion "
    "W/L/E/A/F/T/N, version letter), e.g. wav/03a01Fa.wav"
)
_NAME = re.compile(r"(\d\d)([a-z]\d\d)([A-Z])([a-z])")


def parse_emodb(path: os.PathLike | str) -> Record:
    """Parse one EMO-DB file name into a :class:`Record`."""
    p = Path(os.path.abspath(path))
    match = _NAME.fullmatch(stem(p))
    if not match:
        raise name_error(p, "emodb", PATTERN)
    speaker, text, emotion, _version = match.groups()
    if emotion not in LABELS:
        raise name_error(p, "emodb", PATTERN, f"emotion letter {emotion}")
    return Record(
        path=str(p),
        corpus="emodb",
        speaker=speaker,
        label=emotion,
        emotion=LABELS[emotion],
        language="de",
        gender=GENDERS.get(speaker),
        sentence=text,
    )


def load_emodb(root: os.PathLike | str) -> list[Record]:
    """Load EMO-DB from its folder (the one holding ``wav/``, or ``wav/`` itself)."""
    folder = corpus_dir(root, "emodb")
    return [parse_emodb(path) for path in find_audio(folder, "emodb", PATTERN)]
