"""Fuzz the WebSocket stream protocol's message parsers.

:func:`emovox.service.stream_protocol.parse_start_message` and
:func:`~emovox.service.stream_protocol.parse_control_message` get fuzzed text
(and, for mode bytes divisible by 3, a binary frame); the bytes after
``FRAME_SEPARATOR`` are a frame for a raw start message, checked by
:func:`~emovox.service.stream_protocol.decode_samples`.
Container formats (``webm``, ``ogg``) feed the frame bytes in chunks to
:class:`emovox.audio.container_stream.ContainerStreamDecoder`, the incremental
decoder behind the stream. Contract: a valid :class:`StreamStart` (format
known, raw rates in range, hop <= window) or a :class:`ProtocolError` with a
code and a one-line message; decoded blocks finite float32 or an
:class:`~emovox.errors.AudioError`; no hang (libFuzzer ``-timeout``).

    python fuzz/fuzz_stream_protocol.py CORPUS_DIR SEEDS_DIR -max_total_time=600
"""

from __future__ import annotations

import math

import atheris
import common  # noqa: F401

with atheris.instrument_imports(include=["emovox"]):
    import numpy as np

    from emovox.audio.container_stream import ContainerStreamDecoder
    from emovox.errors import AudioError
    from emovox.service import stream_protocol as sp


#: Separates the text message from a binary frame in the fuzz input.
FRAME_SEPARATOR = b"\n\x00"


def _check_error(error: sp.ProtocolError) -> None:
    assert error.code and isinstance(error.code, str)
    assert error.message and "\n" not in error.message, error.message
    assert len(error.message) < 8192


def _decode_container(fmt: str, data: bytes, *, chunk: int) -> None:
    """Feed ``data`` in chunks to the incremental WebM/Ogg decoder the WebSocket stream uses."""
    decoder = ContainerStreamDecoder(format=fmt, wait_s=5.0)
    try:
        blocks = []
        for start in range(0, len(data), chunk):
            blocks += decoder.feed(data[start : start + chunk])
        blocks += decoder.close(timeout_s=10.0)
        for y, rate in blocks:
            assert y.dtype == np.float32 and y.ndim == 1 and rate > 0 and np.isfinite(y).all()
    except AudioError as error:
        assert "\n" not in str(error), str(error)
    finally:
        decoder.abort()


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0], data[1:]
    body, _, frame = rest.partition(FRAME_SEPARATOR)
    text = body.decode("utf-8", "surrogateescape") if mode % 2 else body.decode("utf-8", "replace")
    message = body if mode % 3 == 0 else text
    try:
        start = sp.parse_start_message(message)
    except sp.ProtocolError as error:
        _check_error(error)
        start = None
    if start is not None:
        assert start.format in sp.FORMATS
        if start.format in sp.RAW_FORMATS:
            assert sp.MIN_RATE_HZ <= start.sample_rate_hz <= sp.MAX_RATE_HZ
            try:
                y = sp.decode_samples(frame, start)
                assert y.ndim == 1 and np.isfinite(y).all()
            except sp.ProtocolError as error:
                _check_error(error)
        else:
            assert start.sample_rate_hz is None
            _decode_container(start.format, frame, chunk=256 + 64 * (mode % 16))
        for value in (start.window_s, start.hop_s):
            assert value is None or (math.isfinite(value) and 0 < value <= 60)
    try:
        assert sp.parse_control_message(message) == "end"
    except sp.ProtocolError as error:
        _check_error(error)


if __name__ == "__main__":
    common.start(test_one_input)
