"""Detect truncated files that the decoders would otherwise read silently.

libsndfile quietly shortens a WAV whose ``data`` chunk is cut off, and both
libsndfile and FFmpeg decode an Ogg stream up to wherever it stops. These
checks read only the header (WAV) or the last page (Ogg) and raise
:class:`~emovox.errors.TruncatedAudioError` when the file ends before the
container says it should. Other containers are checked after decoding, by
comparing the decoded length with the length their header declares (see
:mod:`emovox.audio.decode`).
"""

from __future__ import annotations

import struct

from emovox.audio.source import AudioSource
from emovox.errors import TruncatedAudioError

#: Bytes read from the end of an Ogg stream to find its last page.
_OGG_TAIL_BYTES = 65536 + 512

#: ``data`` chunk sizes that streaming writers use for "unknown length".
_WAV_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


def check_integrity(src: AudioSource) -> None:
    """Raise if the container header shows that ``src`` was cut short.

    Parameters
    ----------
    src : AudioSource
        An opened source; its container decides which check runs.

    Raises
    ------
    TruncatedAudioError
        The file ends before the end its header declares.
    """
    if src.container == "wav":
        _check_wav(src)
    elif src.container == "ogg":
        _check_ogg(src)


def truncated(src: AudioSource, detail: str) -> TruncatedAudioError:
    """Build the one-line truncation error for ``src``: ``NAME: the file ends early: ... (detail); what to do``.

    ``detail`` says in words what was found (``"decoding stopped after 1.52 s"``),
    never a decoder's internal message (that stays the ``__cause__``).
    """
    return TruncatedAudioError(
        f"{src.name}: the file ends early: a truncated or damaged {src.kind} file ({detail}); "
        "re-export or re-download the complete file"
    )


def _check_wav(src: AudioSource) -> None:
    """Compare the declared ``data`` chunk size with the bytes present."""
    if src.head[:4] != b"RIFF":
        return  # RIFX / RF64 keep their sizes elsewhere; libsndfile checks those
    pos = 12
    # Walk the chunk list; the header is normally far smaller than 64 KiB.
    header = src.head if src.size <= len(src.head) else src.read_range(0, 65536)
    while pos + 8 <= len(header):
        chunk_id = header[pos : pos + 4]
        (chunk_size,) = struct.unpack("<I", header[pos + 4 : pos + 8])
        if chunk_id == b"data":
            if chunk_size in _WAV_UNKNOWN_SIZES:
                return
            present = src.size - (pos + 8)
            if present < chunk_size:
                raise truncated(
                    src, f"the header declares {chunk_size} bytes of samples but only {max(present, 0)} are present"
                )
            return
        pos += 8 + chunk_size + (chunk_size & 1)
    if pos + 8 > src.size:
        raise truncated(src, f"the file ends after {src.size} bytes, before its 'data' chunk")


def _check_ogg(src: AudioSource) -> None:
    """Require the last Ogg page to be complete and flagged end-of-stream."""
    start = max(0, src.size - _OGG_TAIL_BYTES)
    tail = src.read_range(start, src.size - start)
    at = tail.rfind(b"OggS")
    while at >= 0:
        page = tail[at:]
        if len(page) >= 27 and page[4] == 0:  # version 0: a real page header
            n_segments = page[26]
            if len(page) < 27 + n_segments:
                raise truncated(src, "its last Ogg page header is cut off")
            body = sum(page[27 : 27 + n_segments])
            if len(page) < 27 + n_segments + body:
                raise truncated(src, "its last Ogg page is cut off")
            if not page[5] & 0x04:
                raise truncated(src, "the Ogg stream has no end-of-stream page")
            return
        at = tail.rfind(b"OggS", 0, at)
    raise truncated(src, "no complete Ogg page found at its end")
