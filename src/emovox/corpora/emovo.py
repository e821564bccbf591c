"""EMOVO (Costantini et al. 2014), Italian: 6 actors, 14 sentences, 7 emotions.

Layout: ``{f1,f2,f3,m1,m2,m3}/EMO-SPK-SENT.wav``, e.g. ``f1/dis-f1-b1.wav``:
emotion (Italian abbreviations), speaker (``f``/``m`` gives the gender) and
sentence (``b1`` ... ``n5``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from emovox.corpora.files import corpus_dir, find_audio, name_error, stem
from emovox.corpora.records import Record

#: The terms the corpus is published under (the one place emovox lists them:
#: :func:`emovox.corpora.corpus_licence`, data cards and model cards read it).
LICENCE = "research use"
#: The publication to cite for the corpus.
CITATION = "Costantini et al. 2014"

#: EMOVO emotion code -> canonical emotion.
LABELS: dict[str, str] = {
    "dis": "disgust",  # disgusto
    "gio": "happy",  # gioia
    "pau": "fearful",  # paura
    "rab": "angry",  # rabbia
    "sor": "surprised",  # sorpresa
    "tri": "sad",  # tristezza
    "neu": "neutral",
}
PATTERN = (
    "EMOVO names EMO-SPK-SENT.wav|flac (emotion dis/gio/pau/rab/sor/tri/neu, speaker "
    "f1-f3/m1-m3, sentence like b1), e.g. f1/dis-f1-b1.wav"
)
_NAME = re.compile(r"([A-Za-z]{3})-([FfMm]\d)-([A-Za-z]+\d*)")


def parse_emovo(path: os.PathLike | str) -> Record:
    """Parse one EMOVO file name into a :class:`Record`."""
    p = Path(os.path.abspath(path))
    match = _NAME.fullmatch(stem(p))
    if not match:
        raise name_error(p, "emovo", PATTERN)
    emotion, speaker, sentence = (g.lower() for g in match.groups())
    if emotion not in LABELS:
        raise name_error(p, "emovo", PATTERN, f"emotion code {match.group(1)}")
    return Record(
        path=str(p),
        corpus="emovo",
        speaker=speaker,
        label=emotion,
        emotion=LABELS[emotion],
        language="it",
        gender="female" if speaker.startswith("f") else "male",
        sentence=sentence,
    )


def load_emovo(root: os.PathLike | str) -> list[Record]:
    """Load EMOVO from the folder holding the six speaker folders (any depth)."""
    folder = corpus_dir(root, "emovo")
    return [parse_emovo(path) for path in find_audio(folder, "emovo", PATTERN)]
