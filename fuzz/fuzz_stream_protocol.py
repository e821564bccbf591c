"""Fuzz the WebSocket stream protocol's message parsers.

:func:`emovox.service.stream_protocol.parse_start_message` and
:func:`~emovox.service.stream_protocol.parse_control_message` get fuzzed text
(and, for mode bytes divisible by 3, a binary frame); the bytes after
``FRAME_SEPARATOR`` are a frame for a raw start message, checked by :func:`~emovox.service.stream_protocol.decode_samples`.
Contract: a valid :class:`StreamStart` (format known, raw rates in range,
hop <= window) or a :class:`ProtocolError` with a code and a one-line message.

    python fuzz/fuzz_stream_protocol.py CORPUS_DIR SEEDS_DIR -max_total_time=600
"""

from __future__ import annotations

import math

import atheris

import common  # noqa: F401

with atheris.instrument_imports(include=["emovox"]):
    import numpy as np

    from emovox.service import stream_protocol as sp


#: Separates the text message from a binary frame in the fuzz input.
FRAME_SEPARATOR = b"\n\x00"


def _check_error(error: "sp.ProtocolError") -> None:
    assert error.code and isinstance(error.code, str)
    assert error.message and "\n" not in error.message, error.message
    assert len(error.message) < 8192


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
        for value in (start.window_s, start.hop_s):
            assert value is None or (math.isfinite(value) and 0 < value <= 60)
    try:
        assert sp.parse_control_message(message) == "end"
    except sp.ProtocolError as error:
        _check_error(error)


if __name__ == "__main__":
    common.start(test_one_input)
