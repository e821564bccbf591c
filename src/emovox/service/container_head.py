"""A structural check of the first bytes of a WebM or Ogg stream, before they reach the decoder.

The container decoder (:class:`emovox.audio.container_stream.ContainerStreamDecoder`)
refuses a stream whose first four bytes are not the format's magic, but FFmpeg
waits for more input on anything that starts with the magic: 5 KB of
garbage after ``OggS`` held a stream open until its idle time-out. The first
unit of a real recorder stream is small and fully checkable:

- **Ogg**: the first page (27-byte header, segment table, payload) must be
  version 0, the first of its logical stream (``BOS`` flag, sequence 0), carry
  a correct CRC-32 and begin with a codec header (``OpusHead``, Vorbis, FLAC
  or Speex);
- **WebM**: the EBML header element must be complete within 4 KiB and name
  the document type ``webm`` or ``matroska``.

:class:`ContainerHead` buffers at most that first unit (64 KiB for an Ogg
page, 4 KiB for an EBML header) and raises
:class:`~emovox.errors.UnsupportedAudioError` as soon as the bytes cannot
start a valid stream. Nothing here decodes audio.
"""

from __future__ import annotations

from typing import NoReturn

from emovox.errors import UnsupportedAudioError

__all__ = ["ContainerHead", "ogg_crc32"]

_OGG_CODEC_HEADS = (b"OpusHead", b"\x01vorbis", b"\x7fFLAC", b"Speex   ")
_EBML_ID = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE_ID = 0x4282
_EBML_MAX_HEADER = 4096


def _ogg_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_TABLE = _ogg_table()


def ogg_crc32(page: bytes) -> int:
    """The CRC-32 of an Ogg page (polynomial 0x04C11DB7, not reflected, the CRC field read as zero)."""
    crc = 0
    table = _OGG_TABLE
    for i, byte in enumerate(page):
        if 22 <= i < 26:
            byte = 0
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) ^ byte) & 0xFF]
    return crc


def _vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length integer at ``pos``: ``(value, next position)``; None if incomplete."""
    if pos >= len(data):
        return None
    first = data[pos]
    if first == 0:
        raise ValueError("an EBML length of more than 8 bytes")
    length = 9 - first.bit_length()
    if pos + length > len(data):
        return None
    value = first if keep_marker else first & ((1 << (8 - length)) - 1)
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    return value, pos + length


class ContainerHead:
    """Checks the first unit of a ``"webm"`` or ``"ogg"`` stream (see the module docstring).

    Call :meth:`feed` with every chunk until :attr:`done`; it raises
    ``UnsupportedAudioError`` once the bytes cannot start a valid stream.
    """

    def __init__(self, format: str) -> None:
        if format not in ("webm", "ogg"):
            raise ValueError(f"format {format!r} is not a container stream format")
        self.format = format
        self.done = False
        self._buf = b""

    def feed(self, data: bytes) -> None:
        if self.done or not data:
            return
        self._buf += bytes(data[: 70000 - len(self._buf)])
        if self.format == "ogg":
            self._check_ogg()
        else:
            self._check_webm()
        if self.done:
            self._buf = b""

    def _refuse(self, why: str) -> NoReturn:
        raise UnsupportedAudioError(
            f"the {self.format} stream is not valid {self.format} ({why}): send the recorder's chunks "
            "exactly as MediaRecorder produces them, from the first one"
        )

    def _check_ogg(self) -> None:
        b = self._buf
        if len(b) < 27:
            if not b"OggS".startswith(b[:4]):
                self._refuse(f"first bytes {b[:4].hex()}, expected 4f676753 'OggS'")
            return
        if b[:4] != b"OggS":
            self._refuse(f"first bytes {b[:4].hex()}, expected 4f676753 'OggS'")
        if b[4] != 0:
            self._refuse(f"Ogg page version {b[4]}, expected 0")
        if b[5] & 0x03 != 0x02 or int.from_bytes(b[18:22], "little") != 0:
            self._refuse("the first page is not the beginning of a logical stream")
        n_segments = b[26]
        if len(b) < 27 + n_segments:
            return
        size = 27 + n_segments + sum(b[27 : 27 + n_segments])
        if len(b) < size:
            return
        page = b[:size]
        if ogg_crc32(page) != int.from_bytes(page[22:26], "little"):
            self._refuse("the first page's checksum is wrong")
        if not page[27 + n_segments :].startswith(_OGG_CODEC_HEADS):
            self._refuse("the first page carries no Opus, Vorbis, FLAC or Speex header")
        self.done = True

    def _check_webm(self) -> None:
        b = self._buf
        if not _EBML_ID.startswith(b[:4]):
            self._refuse(f"first bytes {b[:4].hex()}, expected {_EBML_ID.hex()} (EBML)")
        try:
            head = _vint(b, 4, keep_marker=False)
            if head is None:
                return
            size, pos = head
            end = pos + size
            if end > _EBML_MAX_HEADER:
                self._refuse(f"an EBML header of {size} bytes")
            if len(b) < end:
                return
            doctype = None
            while pos < end:
                element = _vint(b, pos, keep_marker=True)
                length = element and _vint(b, element[1], keep_marker=False)
                if element is None or not length or length[1] + length[0] > end:
                    self._refuse("a malformed EBML header")
                if element[0] == _EBML_DOCTYPE_ID:
                    doctype = b[length[1] : length[1] + length[0]].rstrip(b"\x00")
                pos = length[1] + length[0]
        except ValueError as error:
            self._refuse(str(error))
        if doctype not in (b"webm", b"matroska"):
            self._refuse(f"document type {doctype!r}, expected 'webm'")
        self.done = True
