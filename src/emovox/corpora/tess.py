"""TESS, Toronto Emotional Speech Set (Dupuis & Pichora-Fuller 2010), English.

Two female speakers, ``OAF`` (older) and ``YAF`` (younger), say 200 target
words in 7 emotions. Layout: ``OAF_angry/OAF_back_angry.wav``: speaker, word,
emotion (``angry``, ``disgust``, ``fear``, ``happy``, ``neutral``, ``ps`` =
pleasant surprise, ``sad``). The folder names vary in case and spelling across
copies (``OAF_Fear``, ``YAF_pleasant_surprised``), so only the file name is parsed,
case-insensitively.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from emovox.corpora.files import corpus_dir, find_audio, name_error, stem
from emovox.corpora.records import Record

#: The terms the corpus is published under (the one place emovox lists them:
#: :func:`emovox.corpora.corpus_licence`, data cards and model cards read it).
LICENCE = "CC BY-NC-ND 4.0"
#: The publication to cite for the corpus.
CITATION = "Dupuis & Pichora-Fuller 2010"

#: TESS emotion code (lower case) -> canonical emotion.
LABELS: dict[str, str] = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "surprised",
    "sad": "sad",
}
SPEAKERS: tuple[str, ...] = ("OAF", "YAF")
PATTERN = (
    "TESS names SPK_word_emotion.wav|flac (speaker OAF/YAF, emotion "
    "angry/disgust/fear/happy/neutral/ps/sad), e.g. OAF_angry/OAF_back_angry.wav"
)
_NAME = re.compile(r"([A-Za-z]{3})_([A-Za-z]+)_([A-Za-z]+)")


def parse_tess(path: os.PathLike | str) -> Record:
    """Parse one TESS file name into a :class:`Record`."""
    p = Path(os.path.abspath(path))
    match = _NAME.fullmatch(stem(p))
    if not match:
        raise name_error(p, "tess", PATTERN)
    speaker, word, emotion = match.group(1).upper(), match.group(2).lower(), match.group(3).lower()
    if speaker not in SPEAKERS:
        raise name_error(p, "tess", PATTERN, f"speaker {match.group(1)}")
    if emotion not in LABELS:
        raise name_error(p, "tess", PATTERN, f"emotion {match.group(3)}")
    return Record(
        path=str(p),
        corpus="tess",
        speaker=speaker,
        label=emotion,
        emotion=LABELS[emotion],
        language="en",
        gender="female",
        sentence=word,
    )


def load_tess(root: os.PathLike | str) -> list[Record]:
    """Load TESS from a folder of ``{OAF,YAF}_<emotion>/`` folders (any depth)."""
    folder = corpus_dir(root, "tess")
    return [parse_tess(path) for path in find_audio(folder, "tess", PATTERN)]
