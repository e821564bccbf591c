"""CREMA-D (Cao et al. 2014), English: 91 actors, 12 sentences, 6 emotions.

Layout: ``AudioWAV/AAAA_SSS_EEE_LL.wav`` with actor ``AAAA`` (1001-1091),
sentence ``SSS`` (``DFA``, ``IEO``, ...), emotion ``EEE`` and level ``LL``
(``LO``, ``MD``, ``HI``, ``XX`` unspecified). The file names carry no gender:
it comes from ``VideoDemographics.csv`` (columns ``ActorID``, ``Sex``) in the
corpus folder or its parent when present, else it is ``None``.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from emovox.corpora.files import corpus_dir, find_audio, name_error, stem
from emovox.corpora.records import Record
from emovox.errors import CorpusError

#: The terms the corpus is published under (the one place emovox lists them:
#: :func:`emovox.corpora.corpus_licence`, data cards and model cards read it).
LICENCE = "Open Database License (ODbL) 1.0"
#: The publication to cite for the corpus.
CITATION = "Cao et al. 2014"

#: CREMA-D emotion code -> canonical emotion.
LABELS: dict[str, str] = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
LEVELS: tuple[str, ...] = ("LO", "MD", "HI", "XX")
DEMOGRAPHICS = "VideoDemographics.csv"
PATTERN = (
    "CREMA-D names AAAA_SSS_EEE_LL.wav|flac (actor digits, sentence code, emotion "
    "ANG/DIS/FEA/HAP/NEU/SAD, level LO/MD/HI/XX), e.g. AudioWAV/1001_DFA_ANG_XX.wav"
)
_NAME = re.compile(r"(\d+)_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})")


def read_demographics(path: os.PathLike | str) -> dict[str, str]:
    """Actor id -> ``"male"``/``"female"`` from CREMA-D's ``VideoDemographics.csv``."""
    genders: dict[str, str] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"ActorID", "Sex"} <= set(reader.fieldnames):
                raise CorpusError(f"crema-d: {str(path)!r} has columns {reader.fieldnames}: expected ActorID and Sex")
            for row in reader:
                sex = (row["Sex"] or "").strip().lower()
                if sex in ("male", "female"):
                    genders[(row["ActorID"] or "").strip()] = sex
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CorpusError(f"crema-d: cannot read {str(path)!r}: {error}") from None
    return genders


def parse_crema_d(path: os.PathLike | str, genders: dict[str, str] | None = None) -> Record:
    """Parse one CREMA-D file name; ``genders`` maps actor ids to genders."""
    p = Path(os.path.abspath(path))
    match = _NAME.fullmatch(stem(p))
    if not match:
        raise name_error(p, "crema-d", PATTERN)
    actor, sentence, emotion, level = match.groups()
    if emotion not in LABELS:
        raise name_error(p, "crema-d", PATTERN, f"emotion code {emotion}")
    if level not in LEVELS:
        raise name_error(p, "crema-d", PATTERN, f"level {level}")
    return Record(
        path=str(p),
        corpus="crema-d",
        speaker=actor,
        label=emotion,
        emotion=LABELS[emotion],
        language="en",
        gender=(genders or {}).get(actor),
        intensity=level,
        sentence=sentence,
    )


def load_crema_d(root: os.PathLike | str, *, demographics: os.PathLike | str | None = None) -> list[Record]:
    """Load CREMA-D from its folder (the one holding ``AudioWAV``, or ``AudioWAV`` itself).

    Parameters
    ----------
    root : path
        Corpus folder; audio files are found at any depth.
    demographics : path, optional
        ``VideoDemographics.csv``; by default looked up in ``root`` and its parent.
        Without it every record's gender is ``None``.
    """
    folder = corpus_dir(root, "crema-d")
    if demographics is None:
        for candidate in (folder / DEMOGRAPHICS, folder.parent / DEMOGRAPHICS):
            if os.path.isfile(candidate):
                demographics = candidate
                break
    elif not os.path.isfile(demographics):
        raise CorpusError(f"crema-d: demographics file {str(demographics)!r} does not exist")
    genders = read_demographics(demographics) if demographics is not None else {}
    return [parse_crema_d(path, genders) for path in find_audio(folder, "crema-d", PATTERN)]
