"""SAVEE, Surrey Audio-Visual Expressed Emotion (Jackson & Haq 2014), English.

Four male speakers (``DC``, ``JE``, ``JK``, ``KL``). Two layouts exist: the
publisher's ``AudioData/DC/a01.wav`` (speaker from the folder) and the flat
``ALL/DC_a01.wav`` (speaker prefix). The emotion code is one or two letters
before a two-digit sentence number: ``a`` anger, ``d`` disgust, ``f`` fear,
``h`` happiness, ``n`` neutral, ``sa`` sadness, ``su`` surprise. The code is
read as the whole run of letters, so ``sa01`` is sadness and never ``s`` + ``a01``.
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
CITATION = "Jackson & Haq 2014"

#: SAVEE emotion code -> canonical emotion.
LABELS: dict[str, str] = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}
SPEAKERS: tuple[str, ...] = ("DC", "JE", "JK", "KL")
PATTERN = (
    "SAVEE names SPK_eNN.wav|flac or SPK/eNN.wav|flac (speaker DC/JE/JK/KL, emotion "
    "a/d/f/h/n/sa/su, two-digit sentence), e.g. DC_a01.wav, DC/sa01.wav"
)
_NAME = re.compile(r"(?:([A-Za-z]{2})_)?([a-z]+)(\d{2})")


def parse_savee(path: os.PathLike | str) -> Record:
    """Parse one SAVEE file name (flat or per-speaker layout) into a :class:`Record`."""
    p = Path(os.path.abspath(path))
    match = _NAME.fullmatch(stem(p))
    if not match:
        raise name_error(p, "savee", PATTERN)
    prefix, code, number = match.groups()
    folder = p.parent.name.upper()
    if prefix is not None:
        speaker = prefix.upper()
        if folder in SPEAKERS and folder != speaker:
            raise name_error(p, "savee", PATTERN, f"speaker {prefix} filed under {p.parent.name}")
    elif folder in SPEAKERS:
        speaker = folder
    else:
        raise name_error(p, "savee", PATTERN, f"no speaker prefix and folder {p.parent.name!r} is no speaker")
    if speaker not in SPEAKERS:
        raise name_error(p, "savee", PATTERN, f"speaker {speaker}")
    if code not in LABELS:
        raise name_error(p, "savee", PATTERN, f"emotion code {code!r}")
    return Record(
        path=str(p),
        corpus="savee",
        speaker=speaker,
        label=code,
        emotion=LABELS[code],
        language="en",
        gender="male",
        sentence=number,
    )


def load_savee(root: os.PathLike | str) -> list[Record]:
    """Load SAVEE from ``AudioData/{DC,JE,JK,KL}/`` or a flat folder of ``DC_a01.wav`` files."""
    folder = corpus_dir(root, "savee")
    return [parse_savee(path) for path in find_audio(folder, "savee", PATTERN)]
