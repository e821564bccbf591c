"""Immutable corpus records: one labelled recording each."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from emovox.labels import check_emotion

#: Corpora recorded by the same people as another corpus. RAVDESS song was sung
#: by the RAVDESS speech actors, so song actor ``01`` is speaker ``ravdess/01``:
#: speaker-independent splits of speech + song must keep each actor on one side.
SPEAKER_NAMESPACES: dict[str, str] = {"ravdess-song": "ravdess"}


@dataclass(frozen=True, slots=True)
class Record:
    """One labelled recording of a corpus.

    Attributes
    ----------
    path : str
        Absolute path of the audio file.
    corpus : str
        Corpus name, e.g. ``"ravdess"``.
    speaker : str
        Speaker id as the corpus writes it (``"01"``, ``"03"``, ``"f1"``).
    label : str
        The corpus's own label (``"W"`` in EMO-DB, ``"ANG"`` in CREMA-D).
    emotion : str
        Canonical emotion (one of :data:`emovox.labels.EMOTIONS`).
    language : str
        ISO 639-1 code, e.g. ``"en"``.
    gender : str or None
        ``"female"``, ``"male"`` or ``None`` where unknown.
    intensity : str or None
        Corpus intensity level where it has one (``"normal"``, ``"strong"``, ``"HI"``).
    sentence : str or None
        Sentence / text id where the corpus has one.
    """

    path: str
    corpus: str
    speaker: str
    label: str
    emotion: str
    language: str
    gender: str | None = None
    intensity: str | None = None
    sentence: str | None = None

    def __post_init__(self) -> None:
        check_emotion(self.emotion)

    @property
    def speaker_key(self) -> str:
        """Speaker id unique across corpora: ``"corpus/speaker"``.

        Corpora sharing their speakers share a namespace
        (:data:`SPEAKER_NAMESPACES`): a RAVDESS song record's key is
        ``"ravdess/01"``, the same as the actor's speech records.
        """
        return f"{SPEAKER_NAMESPACES.get(self.corpus, self.corpus)}/{self.speaker}"

    def to_dict(self) -> dict:
        return asdict(self)
