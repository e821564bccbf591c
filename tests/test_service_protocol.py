"""The stream protocol's pure functions: valid messages parse, anything else is a ProtocolError."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emovox.service.stream_protocol import (
    CLOSE_INVALID_DATA,
    CLOSE_POLICY,
    CLOSE_UNSUPPORTED,
    FORMATS,
    ProtocolError,
    StreamStart,
    decode_samples,
    end_message,
    error_message,
    event_message,
    parse_control_message,
    parse_start_message,
    ready_message,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"format": "pcm16", "sample_rate_hz": 16000}', StreamStart("pcm16", 16000)),
        (
            '{"type": "start", "format": "f32", "sample_rate_hz": 48000.0, "hop_s": 0.25}',
            StreamStart("f32", 48000, None, 0.25),
        ),
        ('{"format": "webm"}', StreamStart("webm")),
        ('{"format": "ogg", "window_s": 2, "hop_s": 1}', StreamStart("ogg", None, 2.0, 1.0)),
    ],
)
def test_valid_start_messages(text, expected):
    assert parse_start_message(text) == expected


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"format": "pcm16", "sample_rate_hz": 16000, "extra": 1}', "unknown key"),
        ('{"type": "end"}', "must be a start message"),
        ('{"format": "wav"}', "not supported"),
        ('{"format": "pcm16"}', "needs an integer sample_rate_hz"),
        ('{"format": "pcm16", "sample_rate_hz": "16000"}', "needs an integer"),
        ('{"format": "pcm16", "sample_rate_hz": true}', "needs an integer"),
        ('{"format": "pcm16", "sample_rate_hz": 16000.5}', "needs an integer"),
        ('{"format": "pcm16", "sample_rate_hz": 1e309}', "needs an integer"),
        ('{"format": "pcm16", "sample_rate_hz": 400000}', "outside"),
        ('{"format": "webm", "sample_rate_hz": 48000}', "carries its own sample rate"),
        ('{"format": "webm", "window_s": -1}', r"must lie in \(0, 60\]"),
        ('{"format": "webm", "window_s": NaN}', r"must lie in \(0, 60\]"),
        ('{"format": "webm", "hop_s": "0.5"}', "number of seconds"),
        ('{"format": "webm", "window_s": 1, "hop_s": 2}', "must not exceed"),
        ("x" * 5000, "at most"),
        ("[" * 100000, "at most"),
    ],
)
def test_invalid_start_messages(text, match):
    with pytest.raises(ProtocolError, match=match) as info:
        parse_start_message(text)
    assert info.value.code == "bad_start" and info.value.close_code == CLOSE_POLICY


def test_binary_first_message_is_unsupported_data():
    with pytest.raises(ProtocolError, match="binary frame") as info:
        parse_start_message(b"\x00\x01")
    assert info.value.code == "expected_text" and info.value.close_code == CLOSE_UNSUPPORTED


def test_control_messages():
    assert parse_control_message('{"type": "end"}') == "end"
    for bad in ('{"type": "stop"}', "{}", "nope"):
        with pytest.raises(ProtocolError):
            parse_control_message(bad)


def test_decode_samples():
    pcm = StreamStart("pcm16", 16000)
    y = decode_samples(np.array([0, 1000, -32768], "<i2").tobytes(), pcm)
    assert y.dtype == np.int16 and y.tolist() == [0, 1000, -32768]
    f32 = StreamStart("f32", 16000)
    assert decode_samples(np.array([0.5], "<f4").tobytes(), f32).tolist() == [0.5]
    assert decode_samples(b"", f32).size == 0
    with pytest.raises(ProtocolError, match="whole 2-byte samples") as info:
        decode_samples(b"\x00", pcm)
    assert info.value.close_code == CLOSE_INVALID_DATA
    with pytest.raises(ProtocolError, match="NaN"):
        decode_samples(np.array([np.inf], "<f4").tobytes(), f32)


def test_server_messages_are_json_ready():
    start = StreamStart("pcm16", 16000)
    msgs = [
        ready_message(
            start,
            window_s=3.0,
            hop_s=0.5,
            labels=("a", "b"),
            threshold=0.3,
            idle_timeout_s=30,
            max_duration_s=3600,
            max_frame_bytes=1024,
        ),
        event_message({"t": 0.5, "label": "a"}),
        error_message("x", "y"),
        end_message(audio_s=1.23456, events=3),
    ]
    for m in msgs:
        assert json.loads(json.dumps(m))["type"] in {"ready", "event", "error", "end"}
    assert msgs[1] == {"type": "event", "t": 0.5, "label": "a"}
    assert msgs[3]["audio_s"] == 1.235


def test_event_messages_have_the_published_shape():
    from emovox.audio.quality import Quality
    from emovox.inference.streaming import StreamEvent
    from emovox.service.schemas import StreamEventOut

    quality = Quality(7800.0, 0.0, None, -31.0, False, False, False, False)
    silent = StreamEvent(1.0, 0.0, 1.0, False, "no_speech", 0.0, {}, 0.0, "no_speech", quality)
    short = StreamEvent(1.5, 0.0, 1.5, True, "unknown", 0.6, {"a": 0.6, "b": 0.4}, 0.19, "too_little_speech", quality)
    for event in (silent, short):
        message = json.loads(json.dumps(event_message(event.to_dict())))
        assert StreamEventOut.model_validate(message).model_dump() == message
    assert event_message(silent.to_dict())["quality"] == {
        "flags": [],
        "bandwidth_hz": 7800.0,
        "clipped_share": 0.0,
        "snr_db": None,
        "level_dbfs": -31.0,
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=12,
)
start_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["start", "end", 1, None]),
        "format": st.sampled_from([*FORMATS, "mp3", 7]),
        "sample_rate_hz": json_values | st.integers(0, 300000),
        "window_s": json_values,
        "hop_s": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(json_values.map(json.dumps), start_like.map(json.dumps), st.text(max_size=200), st.binary(max_size=50))
)
def test_any_input_parses_or_raises_protocol_error(text):
    try:
        start = parse_start_message(text)
    except ProtocolError as error:
        assert error.code in {"bad_start", "expected_text"} and error.message and "\n" not in error.message
        return
    assert start.format in FORMATS
    assert (start.sample_rate_hz is None) == start.is_container
    if start.window_s is not None and start.hop_s is not None:
        assert 0 < start.hop_s <= start.window_s
