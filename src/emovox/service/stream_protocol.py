"""The WebSocket stream protocol of ``/v1/stream``: messages, validated by pure functions.

A client opens ``/v1/stream`` and:

1. sends one JSON **text** message declaring the audio it will send
   (:func:`parse_start_message`)::

       {"format": "pcm16", "sample_rate_hz": 16000}            # raw little-endian int16 mono
       {"format": "f32", "sample_rate_hz": 48000, "hop_s": 0.5} # raw little-endian float32 mono
       {"format": "webm"}                                      # MediaRecorder chunks (Opus in WebM)
       {"format": "ogg"}                                       # MediaRecorder chunks (Opus in Ogg)

   optionally with ``"window_s"`` and ``"hop_s"`` (analysis window and hop,
   seconds) and ``"type": "start"``;
2. receives ``{"type": "ready", ...}`` (window, hop, labels, threshold, limits
   and the model every event comes from: ``model``, ``model_version``);
3. sends **binary** frames of audio; the server answers with
   ``{"type": "event", t, start_s, end_s, speech, label, confidence, scores,
   speech_s, reason, quality}`` text frames as the analysis advances
   (``StreamEvent.to_dict()``; ``label`` is ``"no_speech"`` for a window
   without speech; shape: :class:`emovox.service.schemas.StreamEventOut`);
4. sends ``{"type": "end"}`` (or just closes): the server flushes the tail
   (the last events), sends ``{"type": "end", ...}`` and closes with 1000.

Any error is one ``{"type": "error", "error": {"code", "message"}}`` text
frame followed by a close with the code in :class:`ProtocolError`.

Everything here is a pure function of its input (no I/O), so it can be
fuzzed on its own; every bad input raises :class:`ProtocolError`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CLOSE_NORMAL",
    "CLOSE_GOING_AWAY",
    "CLOSE_PROTOCOL",
    "CLOSE_UNSUPPORTED",
    "CLOSE_INVALID_DATA",
    "CLOSE_POLICY",
    "CLOSE_TOO_BIG",
    "CLOSE_INTERNAL",
    "CLOSE_TRY_AGAIN",
    "RAW_FORMATS",
    "CONTAINER_FORMATS",
    "FORMATS",
    "ProtocolError",
    "StreamStart",
    "parse_start_message",
    "parse_control_message",
    "decode_samples",
    "ready_message",
    "event_message",
    "error_message",
    "end_message",
]

# WebSocket close codes (RFC 6455, section 7.4.1).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL = 1002
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013

#: Raw sample formats: name -> little-endian numpy dtype.
RAW_FORMATS = {"pcm16": "<i2", "f32": "<f4"}
#: Container formats (as a browser's MediaRecorder produces them).
CONTAINER_FORMATS = ("webm", "ogg")
FORMATS = tuple(RAW_FORMATS) + CONTAINER_FORMATS

#: Accepted sample rates of raw formats, Hz.
MIN_RATE_HZ = 8000
MAX_RATE_HZ = 192000
#: Longest accepted start message, characters.
MAX_START_CHARS = 4096

_START_KEYS = {"type", "format", "sample_rate_hz", "window_s", "hop_s"}


class ProtocolError(ValueError):
    """A message broke the stream protocol.

    Attributes
    ----------
    code : str
        Machine-readable error code (``"bad_start"``, ``"bad_frame"``, ...).
    message : str
        One line saying what was wrong and what to send instead.
    close_code : int
        WebSocket close code the server closes with.
    """

    def __init__(self, code: str, message: str, *, close_code: int = CLOSE_POLICY) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


@dataclass(frozen=True)
class StreamStart:
    """A validated start message.

    Attributes
    ----------
    format : str
        One of :data:`FORMATS`.
    sample_rate_hz : int or None
        Rate of raw formats; ``None`` for containers (they carry their own).
    window_s, hop_s : float or None
        Analysis window and hop; ``None`` means the server's defaults.
    """

    format: str
    sample_rate_hz: int | None = None
    window_s: float | None = None
    hop_s: float | None = None

    @property
    def is_container(self) -> bool:
        return self.format in CONTAINER_FORMATS

    @property
    def bytes_per_sample(self) -> int:
        """Bytes per sample of a raw format (0 for containers)."""
        return np.dtype(RAW_FORMATS[self.format]).itemsize if self.format in RAW_FORMATS else 0


def _bad_start(message: str) -> ProtocolError:
    return ProtocolError("bad_start", message, close_code=CLOSE_POLICY)


def _json_object(text: Any, what: str, code: str = "bad_start") -> dict:
    bad = _bad_start if code == "bad_start" else (lambda message: ProtocolError(code, message))
    if isinstance(text, (bytes, bytearray, memoryview)):
        raise ProtocolError(
            "expected_text",
            f"the {what} must be a JSON text frame, got a binary frame: "
            'send e.g. {"format": "pcm16", "sample_rate_hz": 16000} as text first',
            close_code=CLOSE_UNSUPPORTED,
        )
    if not isinstance(text, str):
        raise bad(f"the {what} must be a JSON text message, got {type(text).__name__}")
    if len(text) > MAX_START_CHARS:
        raise bad(f"the {what} is {len(text)} characters long (at most {MAX_START_CHARS})")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        example = '{"format": "pcm16", "sample_rate_hz": 16000}' if code == "bad_start" else '{"type": "end"}'
        raise bad(f"the {what} is not valid JSON: send an object such as {example}") from None
    if not isinstance(value, dict):
        raise bad(f"the {what} must be a JSON object, got {type(value).__name__}")
    return value


def _seconds(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad_start(f"{key} must be a number of seconds, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or not 0.0 < v <= 60.0:
        raise _bad_start(f"{key}={value!r} must lie in (0, 60] seconds")
    return v


def parse_start_message(text: Any) -> StreamStart:
    """Validate the first message of a stream.

    Parameters
    ----------
    text : str
        The first WebSocket message (a binary frame is refused).

    Returns
    -------
    StreamStart

    Raises
    ------
    ProtocolError
        Not JSON, not an object, unknown keys, unknown format, a raw format
        without a valid ``sample_rate_hz`` (an integer in [8000, 192000]), a
        container format with one, or a window/hop that is not a positive
        number of seconds (hop <= window).
    """
    msg = _json_object(text, "start message")
    unknown = sorted(set(map(str, msg)) - _START_KEYS)
    if unknown:
        raise _bad_start(
            f"unknown key(s) {', '.join(map(repr, unknown))} in the start message: "
            f"allowed are {', '.join(sorted(_START_KEYS))}"
        )
    if msg.get("type", "start") != "start":
        raise _bad_start(f"the first message must be a start message, got type {msg.get('type')!r}")
    fmt = msg.get("format")
    if fmt not in FORMATS:
        raise _bad_start(f"format {fmt!r} is not supported: use one of {', '.join(FORMATS)}")
    rate = msg.get("sample_rate_hz")
    if fmt in RAW_FORMATS:
        if (
            isinstance(rate, bool)
            or not isinstance(rate, (int, float))
            or rate != rate
            or rate in (math.inf, -math.inf)
            or int(rate) != rate
        ):
            raise _bad_start(f"format {fmt!r} needs an integer sample_rate_hz, got {rate!r}: e.g. 16000")
        rate = int(rate)
        if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
            raise _bad_start(f"sample_rate_hz={rate} is outside [{MIN_RATE_HZ}, {MAX_RATE_HZ}] Hz")
    elif rate is not None:
        raise _bad_start(f"format {fmt!r} carries its own sample rate: leave out sample_rate_hz")
    window_s = _seconds(msg.get("window_s"), "window_s")
    hop_s = _seconds(msg.get("hop_s"), "hop_s")
    if window_s is not None and hop_s is not None and hop_s > window_s:
        raise _bad_start(f"hop_s={hop_s} must not exceed window_s={window_s}")
    return StreamStart(format=fmt, sample_rate_hz=rate, window_s=window_s, hop_s=hop_s)


def parse_control_message(text: Any) -> str:
    """Validate a text message after the start; returns its type (only ``"end"`` exists)."""
    msg = _json_object(text, "control message", code="bad_message")
    kind = msg.get("type")
    if kind != "end":
        raise ProtocolError(
            "bad_message",
            f"unknown control message type {kind!r}: after the start send binary audio "
            'frames, and {"type": "end"} to finish',
            close_code=CLOSE_POLICY,
        )
    return kind


def decode_samples(data: bytes, start: StreamStart) -> np.ndarray:
    """Samples ``(n,)`` of one binary frame of a raw format (int16 or float32, as sent).

    Raises
    ------
    ProtocolError
        The frame length is not a whole number of samples, or float samples
        are NaN or infinite.
    """
    size = start.bytes_per_sample
    if not size:
        raise ValueError(f"format {start.format!r} is a container: feed it to the container decoder")
    if len(data) % size:
        raise ProtocolError(
            "bad_frame",
            f"a {start.format} frame must hold whole {size}-byte samples, got {len(data)} bytes",
            close_code=CLOSE_INVALID_DATA,
        )
    y = np.frombuffer(data, dtype=RAW_FORMATS[start.format])
    if y.dtype.kind == "f" and y.size and not np.isfinite(y).all():
        raise ProtocolError(
            "bad_frame", "the f32 frame contains NaN or infinite samples", close_code=CLOSE_INVALID_DATA
        )
    return y


# ---------------------------------------------------------------------- server messages
def ready_message(
    start: StreamStart,
    *,
    window_s: float,
    hop_s: float,
    labels,
    threshold: float,
    idle_timeout_s: float,
    max_duration_s: float,
    max_frame_bytes: int,
    model: str | None = None,
    model_version: str | None = None,
) -> dict:
    """The server's answer to a valid start message; it names the model every event of the stream comes from."""
    return {
        "type": "ready",
        "format": start.format,
        "sample_rate_hz": start.sample_rate_hz,
        "window_s": window_s,
        "hop_s": hop_s,
        "labels": list(labels),
        "threshold": round(float(threshold), 4),
        "model": model,
        "model_version": model_version,
        "limits": {
            "idle_timeout_s": idle_timeout_s,
            "max_duration_s": max_duration_s,
            "max_frame_bytes": max_frame_bytes,
        },
    }


def event_message(event: dict) -> dict:
    """An engine event (``StreamEvent.to_dict()``) as a message."""
    return {"type": "event", **event}


def error_message(code: str, message: str) -> dict:
    return {"type": "error", "error": {"code": code, "message": message}}


def end_message(*, audio_s: float, events: int, reason: str | None = None) -> dict:
    """The last message of a stream; ``reason`` is ``"server_shutdown"`` when the server ended it."""
    message = {"type": "end", "audio_s": round(float(audio_s), 3), "events": int(events)}
    if reason is not None:
        message["reason"] = reason
    return message
