"""A user's own corpus as one folder per label: ``root/<label>/**/<file>``.

The first folder under ``root`` is the label; files may sit at any depth below
it, as ``.wav``, ``.flac``, ``.ogg``, ``.mp3``, ``.m4a`` or ``.webm``. Labels become
canonical emotions as in the CSV manifest (mapping first, then canonical names
and aliases such as ``Anger``). Speakers come from an optional regular
expression searched in the file's path below its label folder (``spk1/a.wav``,
or just ``a.wav``): its group ``speaker``, else its first group, else the whole
match; without one every speaker is ``"unknown"``, which makes
speaker-independent evaluation impossible.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from emovox.corpora.files import MEDIA_SUFFIXES, corpus_dir, find_audio
from emovox.corpora.manifest import UNDETERMINED, emotion_of, label_mapping
from emovox.corpora.records import Record
from emovox.errors import ConfigError, CorpusError
from emovox.labels import EMOTIONS

PATTERN = f"root/<label>/**/<file> with extension {'/'.join(MEDIA_SUFFIXES)}"
UNKNOWN_SPEAKER = "unknown"


def _compile(speaker_regex: str | re.Pattern | None) -> re.Pattern | None:
    if speaker_regex is None or isinstance(speaker_regex, re.Pattern):
        return speaker_regex
    try:
        return re.compile(speaker_regex)
    except re.error as error:
        raise ConfigError(f"bad speaker regex {speaker_regex!r}: {error}") from None


def _speaker(pattern: re.Pattern | None, relative: str) -> str | None:
    if pattern is None:
        return UNKNOWN_SPEAKER
    match = pattern.search(relative)
    if not match:
        return None
    if "speaker" in pattern.groupindex:
        return match.group("speaker")
    return match.group(1) if pattern.groups else match.group(0)


def load_folder(
    root: os.PathLike | str,
    *,
    speaker_regex: str | re.Pattern | None = None,
    mapping: str | Mapping[str, str | None] | None = None,
    language: str = UNDETERMINED,
    corpus: str = "folder",
) -> list[Record]:
    """Load a folder-per-label corpus.

    Parameters
    ----------
    root : path
        Folder whose sub-folders are labels.
    speaker_regex : str, optional
        Searched in each file's path below its label folder (``/``-separated),
        e.g. ``r"^(\\d+)_"`` for ``1001_x.wav`` or ``r"^([^/]+)/"`` for ``spk1/x.wav``.
    mapping : str or Mapping, optional
        Folder label -> canonical emotion (``-`` drops), as in
        :func:`~emovox.corpora.manifest.load_csv`.
    language, corpus : str
        Language and corpus name of every record.

    Raises
    ------
    CorpusError
        On an audio file directly in ``root``, an unknown label, or a file the
        speaker regex does not match; the message names the file.
    """
    folder = corpus_dir(root, corpus)
    pattern = _compile(speaker_regex)
    labels = label_mapping(mapping)
    records: list[Record] = []
    for path in find_audio(folder, corpus, PATTERN, suffixes=MEDIA_SUFFIXES):
        parts = path.relative_to(folder).parts
        if len(parts) < 2:
            raise CorpusError(f"{corpus}: {str(path)!r} is not inside a label folder: expected {PATTERN}")
        label = parts[0]
        known, emotion = emotion_of(label, labels)
        if not known:
            raise CorpusError(
                f"{corpus}: label folder {label!r} of {str(path)!r} is not a canonical emotion "
                f"({', '.join(EMOTIONS)}): map it, e.g. '{label}=happy' or '{label}=-' to skip it"
            )
        if emotion is None:
            continue
        relative = "/".join(parts[1:])
        speaker = _speaker(pattern, relative)
        if not speaker:
            regex = None if pattern is None else pattern.pattern  # a regex there is: else UNKNOWN_SPEAKER
            raise CorpusError(
                f"{corpus}: speaker regex {regex!r} does not match {relative!r} "
                f"of {str(path)!r}: fix the regex or the file name"
            )
        records.append(
            Record(
                path=str(path),
                corpus=corpus,
                speaker=speaker,
                label=label,
                emotion=emotion,
                language=language,
            )
        )
    if not records:
        raise CorpusError(f"{corpus}: every label under {str(folder)!r} is dropped by the mapping")
    return records
