"""RAVDESS speech and song (Livingstone & Russo 2018), English.

Layout: ``Actor_NN/03-VV-EE-II-SS-RR-AA.wav`` (any parent folders, ``.wav`` or
``.flac``). Fields: modality ``03`` audio-only; vocal channel ``01`` speech /
``02`` song; emotion ``EE``; intensity ``01`` normal / ``02`` strong; statement
``SS``; repetition ``RR``; actor ``AA`` (odd male, even female).

Speech and song are separate corpora (``ravdess``, ``ravdess-song``) that may
sit in one combined folder: each loader keeps its own vocal channel. The actors
are the same people, so both share the speaker namespace ``ravdess/NN``
(:data:`emovox.corpora.records.SPEAKER_NAMESPACES`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from emovox.corpora.files import corpus_dir, find_audio, name_error, stem
from emovox.corpora.records import Record
from emovox.errors import ConfigError, CorpusError

#: The terms the corpus is published under (the one place emovox lists them:
#: :func:`emovox.corpora.corpus_licence`, data cards and model cards read it).
LICENCE = "CC BY-NC-SA 4.0"
#: The publication to cite for the corpus.
CITATION = "Livingstone & Russo 2018"

#: RAVDESS emotion code -> canonical emotion.
LABELS: dict[str, str] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
INTENSITIES: dict[str, str] = {"01": "normal", "02": "strong"}
#: Vocal channel code -> corpus name.
CHANNELS: dict[str, str] = {"01": "ravdess", "02": "ravdess-song"}
PATTERN = (
    "RAVDESS names 03-VV-EE-II-SS-RR-AA.wav|flac (modality 03, vocal channel 01/02, "
    "emotion 01-08, intensity 01/02, statement 01/02, repetition 01/02, actor NN), "
    "e.g. Actor_01/03-01-05-02-01-01-01.wav"
)
_NAME = re.compile(r"(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)")
_ACTOR_DIR = re.compile(r"actor_(\d+)", re.IGNORECASE)


def parse_ravdess(path: os.PathLike | str) -> Record:
    """Parse one RAVDESS file name into a :class:`Record` (speech or song)."""
    p = Path(os.path.abspath(path))
    match = _NAME.fullmatch(stem(p))
    if not match:
        raise name_error(p, "ravdess", PATTERN)
    modality, channel, emotion, intensity, statement, _repetition, actor = match.groups()
    if modality != "03":
        raise name_error(p, "ravdess", PATTERN, f"modality {modality} is not 03 audio-only")
    if channel not in CHANNELS:
        raise name_error(p, "ravdess", PATTERN, f"vocal channel {channel}")
    if emotion not in LABELS:
        raise name_error(p, "ravdess", PATTERN, f"emotion code {emotion}")
    if intensity not in INTENSITIES:
        raise name_error(p, "ravdess", PATTERN, f"intensity {intensity}")
    folder = _ACTOR_DIR.fullmatch(p.parent.name)
    if folder and int(folder.group(1)) != int(actor):
        raise name_error(p, "ravdess", PATTERN, f"actor {actor} filed under {p.parent.name}")
    if int(actor) == 0:
        raise name_error(p, "ravdess", PATTERN, "actor 00")
    return Record(
        path=str(p),
        corpus=CHANNELS[channel],
        speaker=actor,
        label=emotion,
        emotion=LABELS[emotion],
        language="en",
        gender="male" if int(actor) % 2 else "female",
        intensity=INTENSITIES[intensity],
        sentence=statement,
    )


def load_ravdess(root: os.PathLike | str, *, vocal_channel: str = "speech") -> list[Record]:
    """Load RAVDESS speech, song, or both from a folder in the publisher's layout.

    Parameters
    ----------
    root : path
        Folder holding ``Actor_NN`` folders, at any depth (e.g. the one holding
        ``Audio_Speech_Actors_01-24`` and/or ``Audio_Song_Actors_01-24``).
    vocal_channel : {"speech", "song", "both"}
        Which files to keep; the others in a combined folder are skipped.

    Returns
    -------
    list of Record
        Sorted by path; ``corpus`` is ``"ravdess"`` for speech and
        ``"ravdess-song"`` for song.
    """
    wanted = {"speech": ("ravdess",), "song": ("ravdess-song",), "both": tuple(CHANNELS.values())}
    if vocal_channel not in wanted:
        raise ConfigError(f"unknown RAVDESS vocal_channel {vocal_channel!r}: expected speech, song or both")
    corpus = "ravdess-song" if vocal_channel == "song" else "ravdess"
    folder = corpus_dir(root, corpus)
    records = [parse_ravdess(path) for path in find_audio(folder, corpus, PATTERN)]
    kept = [r for r in records if r.corpus in wanted[vocal_channel]]
    if not kept:
        other = "song" if vocal_channel == "speech" else "speech"
        raise CorpusError(
            f"no RAVDESS {vocal_channel} files (vocal channel "
            f"{'01' if vocal_channel == 'speech' else '02'}) under {str(folder)!r}, only "
            f"{len(records)} {other} files: use corpus "
            f"{'ravdess-song' if other == 'song' else 'ravdess'}"
        )
    return kept


def load_ravdess_song(root: os.PathLike | str) -> list[Record]:
    """Load RAVDESS song (vocal channel 02) records; see :func:`load_ravdess`."""
    return load_ravdess(root, vocal_channel="song")
