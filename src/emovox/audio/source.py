"""Turn a user's ``source`` into something the decoders can open.

A source is a path (``str`` / :class:`os.PathLike`), ``bytes`` or a binary
file object. :func:`open_source` checks that it exists and is not empty,
reads its first bytes to recognise the container from its magic number, and
hands back an :class:`AudioSource` whose ``target`` can be passed to both
soundfile and PyAV. Nothing here decodes audio.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from typing import IO, Union

from emovox.errors import AudioError, EmptyAudioError

#: What :func:`emovox.audio.load_audio` and friends accept as input.
Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]

#: Number of leading bytes read to recognise the container.
HEAD_BYTES = 64

#: Human-readable container names, used in error messages.
CONTAINER_NAMES = {
    "wav": "WAV",
    "flac": "FLAC",
    "ogg": "Ogg",
    "mp3": "MP3",
    "adts": "AAC (ADTS)",
    "mp4": "MP4/M4A",
    "matroska": "WebM/Matroska",
    "aiff": "AIFF",
    "caf": "CAF",
}

#: Containers libsndfile can decode; everything else goes straight to PyAV.
SOUNDFILE_CONTAINERS = frozenset({"wav", "flac", "ogg", "mp3", "aiff", "caf"})


@dataclass
class AudioSource:
    """An opened, not yet decoded, audio input.

    Attributes
    ----------
    name : str
        How to refer to the input in messages (the path, or ``"<bytes>"``).
    target : str or binary file object
        A path or a seekable binary file object positioned at 0.
    head : bytes
        The first :data:`HEAD_BYTES` bytes.
    size : int
        Total size in bytes.
    container : str or None
        Container recognised from the magic number (a key of
        :data:`CONTAINER_NAMES`), ``None`` when unknown.
    """

    name: str
    target: str | IO[bytes]
    head: bytes
    size: int
    container: str | None

    def rewind(self) -> None:
        """Seek a file-object target back to its start (no-op for paths)."""
        if not isinstance(self.target, str):
            self.target.seek(0)

    def read_range(self, offset: int, length: int) -> bytes:
        """Return up to ``length`` bytes starting at byte ``offset``."""
        if isinstance(self.target, str):
            with open(self.target, "rb") as fh:
                fh.seek(offset)
                return fh.read(length)
        self.target.seek(offset)
        data = self.target.read(length)
        self.target.seek(0)
        return data

    @property
    def kind(self) -> str:
        """Readable container name for messages ("WAV", "unknown format", ...)."""
        return CONTAINER_NAMES.get(self.container or "", "audio")


def sniff_container(head: bytes) -> str | None:
    """Recognise a container from its first bytes.

    Parameters
    ----------
    head : bytes
        The first bytes of the input (12 or more for a reliable answer).

    Returns
    -------
    str or None
        A key of :data:`CONTAINER_NAMES`, or ``None`` if nothing matched.
    """
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and (head[8:12] == b"WAVE" or len(head) < 12):
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1aE\xdf\xa3":
        return "matroska"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:4] == b"caff":
        return "caf"
    if head[:3] == b"ID3":
        # ID3v2 tags precede MP3 frames (and, rarely, FLAC or AAC streams).
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:  # 1111 0xx0 ...: ADTS (layer bits 00)
            return "adts"
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x06:  # MPEG audio frame sync
            return "mp3"
    return None


def open_source(source: Source) -> AudioSource:
    """Check a source and prepare it for decoding.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object
        The audio input.

    Returns
    -------
    AudioSource

    Raises
    ------
    AudioError
        The path does not exist, is a folder or cannot be read, or the object
        is of a type that is not accepted.
    EmptyAudioError
        The input holds no bytes.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fsdecode(source)
        try:
            info = os.stat(path)
            if stat.S_ISDIR(info.st_mode):
                raise AudioError(f"{path!r} is a folder, not an audio file: pass a file path")
            with open(path, "rb") as fh:
                head = fh.read(HEAD_BYTES)
        except FileNotFoundError as exc:
            raise AudioError(f"audio file {path!r} does not exist: check the path") from exc
        except OSError as exc:
            raise AudioError(f"cannot read audio file {path!r} ({exc.strerror or exc}): check its permissions") from exc
        if info.st_size == 0:
            raise EmptyAudioError(f"audio file {path!r} is empty (0 bytes): pass a non-empty recording")
        return AudioSource(path, path, head, info.st_size, sniff_container(head))

    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise EmptyAudioError("audio bytes are empty (0 bytes): pass the encoded contents of an audio file")
        return AudioSource("<bytes>", io.BytesIO(data), data[:HEAD_BYTES], len(data), sniff_container(data))

    if hasattr(source, "read"):
        name = str(getattr(source, "name", "<file object>"))
        try:
            seekable = bool(getattr(source, "seekable", lambda: False)())
            if seekable:
                start = source.tell()
                head = source.read(HEAD_BYTES)
                end = source.seek(0, io.SEEK_END)
                source.seek(start)
                size = end - start
                target: IO[bytes] = source if start == 0 else io.BytesIO(source.read())
            else:
                data = source.read()
                head, size, target = data[:HEAD_BYTES], len(data), io.BytesIO(data)
        except (OSError, ValueError) as exc:
            raise AudioError(f"cannot read audio from file object {name!r} ({exc}): pass an open binary file") from exc
        if isinstance(head, str):
            raise AudioError(f"file object {name!r} is opened in text mode: open it with mode 'rb'")
        if size == 0:
            raise EmptyAudioError(f"file object {name!r} holds no bytes: pass a non-empty recording")
        return AudioSource(name, target, bytes(head), size, sniff_container(bytes(head)))

    raise AudioError(f"cannot read audio from a {type(source).__name__}: pass a path, bytes or a binary file object")
