"""TurEV-DB (Canpolat et al. 2020), Turkish single words, 6 actors, 4 emotions.

Layout: ``Sound Source/{Angry,Calm,Happy,Sad}/AAAA_EE_word.wav``: the folder is
the label; the name holds the actor id, an emotion abbreviation (``kz``
kızgın angry, ``sk`` sakin calm, ``mt`` mutlu happy, ``hl`` hüzünlü sad) that
must agree with the folder, and the word (``acik``, ``ogul1``). Speaker genders
are not in the file names: ``gender`` is ``None``.
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
CITATION = "Canpolat et al. 2020"

#: TurEV-DB label folder (matched case-insensitively) -> canonical emotion.
LABELS: dict[str, str] = {"Angry": "angry", "Calm": "calm", "Happy": "happy", "Sad": "sad"}
#: Emotion abbreviation in the file name -> label folder.
CODES: dict[str, str] = {"kz": "Angry", "sk": "Calm", "mt": "Happy", "hl": "Sad"}
PATTERN = (
    "TurEV-DB files Sound Source/{Angry,Calm,Happy,Sad}/ACTOR_EE_word.wav|flac "
    "(actor digits, emotion kz/sk/mt/hl matching the folder), e.g. Angry/1157_kz_acik.wav"
)
_NAME = re.compile(r"(\d+)_([A-Za-z]{2})_(\w+)")
_FOLDERS = {name.lower(): name for name in LABELS}


def parse_turev(path: os.PathLike | str) -> Record:
    """Parse one TurEV-DB file (label folder + name) into a :class:`Record`."""
    p = Path(os.path.abspath(path))
    label = _FOLDERS.get(p.parent.name.lower())
    if label is None:
        raise name_error(p, "turev", PATTERN, f"folder {p.parent.name!r} is not a label")
    match = _NAME.fullmatch(stem(p))
    if not match:
        raise name_error(p, "turev", PATTERN)
    speaker, code, word = match.groups()
    if CODES.get(code.lower()) != label:
        raise name_error(p, "turev", PATTERN, f"emotion code {code!r} in folder {p.parent.name}")
    return Record(
        path=str(p),
        corpus="turev",
        speaker=speaker,
        label=label,
        emotion=LABELS[label],
        language="tr",
        sentence=word,
    )


def load_turev(root: os.PathLike | str) -> list[Record]:
    """Load TurEV-DB from its folder (the one holding ``Sound Source``, or that folder)."""
    folder = corpus_dir(root, "turev")
    return [parse_turev(path) for path in find_audio(folder, "turev", PATTERN)]
