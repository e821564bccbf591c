"""``WebSocket /v1/stream`` against a real uvicorn on 127.0.0.1, and the container decoder.

Raw PCM (int16, float32, other rates) and WebM/Ogg chunks encoded with PyAV
from a real corpus clip must give the engine's events, each of the shape
``schemas.StreamEventOut`` (speech time, reason, quality); a tone is
``no_speech`` throughout; every protocol error gives one error frame and the
documented close code.
"""

from __future__ import annotations

import asyncio
import io
import json
import time

import numpy as np
import pytest

from emovox.corpora import default_corpora_root
from emovox.inference.gate import NO_SPEECH_S

pytest.importorskip("fastapi")
websockets = pytest.importorskip("websockets")

EMODB = default_corpora_root() / "emodb" / "wav"
CLIP = EMODB / "03a01Wa.flac"
pytestmark = pytest.mark.skipif(not CLIP.is_file(), reason=f"corpus file {CLIP} is absent")


@pytest.fixture(scope="module")
def predictor():
    from emovox.inference import load_model

    return load_model(num_threads=1)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    from emovox.audio import load_audio

    return load_audio(CLIP, sample_rate_hz=16000)


def _serve(predictor, **limits):
    from emovox.service.app import create_app
    from emovox.service.limits import Limits
    from emovox.service.testing import serve_in_thread

    return serve_in_thread(create_app(predictor, limits=Limits(**limits)))


@pytest.fixture(scope="module")
def ws_url(predictor):
    with _serve(predictor) as url:
        yield url.replace("http://", "ws://") + "/v1/stream"


def encode(y: np.ndarray, sr: int, fmt: str) -> bytes:
    """``y`` as WebM/Opus or Ogg/Opus bytes (what MediaRecorder produces), encoded with PyAV."""
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="webm" if fmt == "webm" else "ogg") as out:
        stream = out.add_stream("libopus", rate=48000, layout="mono")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        pcm = (np.clip(y, -1, 1) * 32767).astype(np.int16)
        for i in range(0, pcm.size, sr // 10):
            frame = av.AudioFrame.from_ndarray(pcm[None, i : i + sr // 10], format="s16", layout="mono")
            frame.sample_rate = sr
            for f in resampler.resample(frame):
                out.mux(stream.encode(f))
        out.mux(stream.encode(None))
    return buf.getvalue()


async def _session(url, start, frames, *, end=True, read_timeout=30.0):
    """Run one stream; returns (messages received, close code)."""
    got = []
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(start if isinstance(start, (str, bytes)) else json.dumps(start))
        try:
            got.append(json.loads(await asyncio.wait_for(ws.recv(), read_timeout)))
            if got[-1]["type"] == "ready":
                for f in frames:
                    await ws.send(f)
                if end:
                    await ws.send(json.dumps({"type": "end"}))
            async for m in ws:
                got.append(json.loads(m))
        except websockets.ConnectionClosed:
            pass
        return got, ws.close_code


def run(coro):
    return asyncio.run(coro)


def _events(messages):
    """The event messages, each checked against the published event shape."""
    from emovox.service.schemas import StreamEventOut

    events = [m for m in messages if m["type"] == "event"]
    for e in events:
        StreamEventOut.model_validate(e)
        assert set(e) == set(StreamEventOut.model_fields)
    return events


# ---------------------------------------------------------------------- formats
def test_pcm16_stream_equals_the_engine(ws_url, predictor, speech):
    from emovox.inference.streaming import StreamEngine

    pcm = (speech * 32767).astype("<i2")
    frames = [pcm[i : i + 1600].tobytes() for i in range(0, pcm.size, 1600)]
    msgs, code = run(_session(ws_url, {"format": "pcm16", "sample_rate_hz": 16000}, frames))
    assert code == 1000
    ready, *rest = msgs
    assert ready["type"] == "ready" and ready["labels"] == list(predictor.labels) and ready["hop_s"] == 0.5
    assert rest[-1]["type"] == "end" and rest[-1]["events"] == len(_events(msgs))
    assert rest[-1]["audio_s"] == pytest.approx(speech.size / 16000, abs=1e-3)
    engine = StreamEngine(predictor)
    expected = engine.feed(pcm, 16000) + engine.close()
    assert [{k: v for k, v in m.items() if k != "type"} for m in _events(msgs)] == [e.to_dict() for e in expected]
    assert any(m["speech"] for m in _events(msgs))
    speech = [e for e in _events(msgs) if e["speech"]]
    assert all(e["speech_s"] >= NO_SPEECH_S and e["quality"] is not None for e in speech)
    assert any(e["label"] not in ("unknown", "no_speech") and e["reason"] is None for e in speech)


def test_a_tone_streams_no_speech_events(ws_url):
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * 16000) / 16000) * 32767).astype("<i2")
    frames = [tone[i : i + 1600].tobytes() for i in range(0, tone.size, 1600)]
    msgs, code = run(_session(ws_url, {"format": "pcm16", "sample_rate_hz": 16000}, frames))
    events = _events(msgs)
    assert code == 1000 and len(events) == 6
    for e in events:
        assert (e["speech"], e["label"], e["reason"], e["scores"], e["confidence"]) == (
            False,
            "no_speech",
            "no_speech",
            {},
            0.0,
        )
        assert e["speech_s"] < NO_SPEECH_S and "flags" in e["quality"]


def test_f32_at_48k_with_custom_hop(ws_url, speech):
    from emovox.audio import resample

    y = resample(speech, orig_hz=16000, target_hz=48000).astype("<f4")
    frames = [y[i : i + 4800].tobytes() for i in range(0, y.size, 4800)]
    msgs, code = run(
        _session(ws_url, {"format": "f32", "sample_rate_hz": 48000, "window_s": 2.0, "hop_s": 0.25}, frames)
    )
    assert code == 1000 and msgs[0]["window_s"] == 2.0 and msgs[0]["hop_s"] == 0.25
    events = _events(msgs)
    assert len(events) == int(np.ceil(speech.size / 16000 / 0.25))
    assert all(e["end_s"] - e["start_s"] <= 2.0 + 1e-6 for e in events)
    for e in events:
        if e["speech"]:
            assert e["label"] != "no_speech" and abs(sum(e["scores"].values()) - 1) < 1e-3
            assert (e["reason"] is None) == (e["label"] != "unknown")
        else:
            assert (e["label"], e["reason"], e["scores"]) == ("no_speech", "no_speech", {})


@pytest.mark.parametrize("fmt", ["webm", "ogg"])
def test_container_chunks_as_mediarecorder_sends_them(ws_url, speech, fmt):
    data = encode(speech, 16000, fmt)
    frames = [data[i : i + 700] for i in range(0, len(data), 700)]
    msgs, code = run(_session(ws_url, {"format": fmt}, frames))
    assert code == 1000, msgs[-1]
    assert msgs[-1]["type"] == "end" and msgs[-1]["audio_s"] == pytest.approx(speech.size / 16000, abs=0.03)
    assert len(_events(msgs)) >= 4 and any(e["speech"] for e in _events(msgs))


def test_container_decoder_is_incremental(speech):
    from emovox.audio.container_stream import ContainerStreamDecoder

    data = encode(speech, 16000, "webm")
    dec = ContainerStreamDecoder(format="webm")
    before_close = 0
    for i in range(0, len(data), 500):
        before_close += sum(y.size for y, rate in dec.feed(data[i : i + 500]))
    after = sum(y.size for y, rate in dec.close())
    total_s = (before_close + after) / 48000
    assert total_s == pytest.approx(speech.size / 16000, abs=0.03)
    assert before_close / 48000 > total_s - 0.2  # all but the last packets come out before close


def test_container_decoder_refuses_garbage_at_once():
    from emovox.audio.container_stream import ContainerStreamDecoder
    from emovox.errors import AudioError, UnsupportedAudioError

    with pytest.raises(UnsupportedAudioError, match="does not start like webm"):
        ContainerStreamDecoder(format="webm").feed(b"RIFF....WAVEfmt ")
    with pytest.raises(AudioError, match="cannot be streamed"):
        ContainerStreamDecoder(format="mp4")
    dec = ContainerStreamDecoder(format="ogg")
    dec.feed(b"OggS" + bytes(200))
    with pytest.raises(AudioError, match="could not be decoded"):
        dec.close()


# ---------------------------------------------------------------------- protocol errors
@pytest.mark.parametrize(
    "start, code, close",
    [
        (b"\x00\x01binary", "expected_text", 1003),
        ("not json", "bad_start", 1008),
        ('{"format": "pcm16"}', "bad_start", 1008),
        ('{"format": "pcm16", "sample_rate_hz": 1000}', "bad_start", 1008),
        ('{"format": "mp3"}', "bad_start", 1008),
        ('{"format": "webm", "sample_rate_hz": 48000}', "bad_start", 1008),
        ('{"format": "pcm16", "sample_rate_hz": 16000, "window_s": 0.2}', "bad_start", 1008),
        ('{"format": "pcm16", "sample_rate_hz": 16000, "hop_s": 0.01}', "bad_start", 1008),
    ],
)
def test_bad_start_messages(ws_url, start, code, close):
    msgs, got = run(_session(ws_url, start, []))
    assert msgs == [msgs[0]] and msgs[0]["type"] == "error" and msgs[0]["error"]["code"] == code
    assert got == close


@pytest.mark.parametrize(
    "frame, code, close",
    [
        (b"\x00\x01\x02", "bad_frame", 1007),
        ('{"type": "pause"}', "bad_message", 1008),
        ("not json", "bad_message", 1008),  # issue 19: was reported as bad_start
        ("[1, 2]", "bad_message", 1008),
    ],
)
def test_bad_frames_after_start(ws_url, frame, code, close):
    msgs, got = run(_session(ws_url, {"format": "pcm16", "sample_rate_hz": 16000}, [frame], end=False))
    assert [m["type"] for m in msgs] == ["ready", "error"] and msgs[1]["error"]["code"] == code
    assert got == close


def test_nan_samples_and_garbage_container(ws_url):
    nan = np.full(100, np.nan, "<f4").tobytes()
    msgs, got = run(_session(ws_url, {"format": "f32", "sample_rate_hz": 16000}, [nan], end=False))
    assert msgs[-1]["error"]["code"] == "bad_frame" and got == 1007
    msgs, got = run(_session(ws_url, {"format": "webm"}, [b"definitely not webm" * 10], end=False))
    assert msgs[-1]["error"]["code"] == "invalid_audio" and got == 1007


@pytest.mark.parametrize(
    "garbage",
    [
        b"OggS" + np.random.default_rng(0).bytes(4996),  # magic, then noise
        (b"OggS" + np.random.default_rng(1).bytes(496)) * 10,  # page-like noise
        b"OggS\x00\x02" + bytes(20) + b"\x01\x13OpusHead" + bytes(11) + bytes(4900),  # a page with a wrong CRC
    ],
)
def test_a_5_kb_garbage_ogg_stream_is_refused_at_once(ws_url, garbage):
    """Issue 19: it waited for the 30 s idle time-out; now the first page is checked as it arrives."""
    t0 = time.monotonic()
    msgs, code = run(asyncio.wait_for(_session(ws_url, {"format": "ogg"}, [garbage], end=False), 10))
    assert msgs[-1]["type"] == "error" and msgs[-1]["error"]["code"] == "invalid_audio" and code == 1007
    assert "not valid ogg" in msgs[-1]["error"]["message"]
    assert time.monotonic() - t0 < 3.0


def test_a_10_mb_frame_gets_the_error_frame_then_1009(ws_url):
    """Issue 19: the WebSocket layer closed with 1009 but sent no error frame; the frame is never read."""
    msgs, code = run(_session(ws_url, {"format": "pcm16", "sample_rate_hz": 16000}, [bytes(10 * 2**20)], end=False))
    assert [m["type"] for m in msgs] == ["ready", "error"] and code == 1009
    assert msgs[1]["error"]["code"] == "frame_too_large" and "1048576 bytes" in msgs[1]["error"]["message"]


def test_end_without_audio_and_client_close(ws_url, predictor):
    msgs, code = run(_session(ws_url, {"format": "pcm16", "sample_rate_hz": 16000}, []))
    assert [m["type"] for m in msgs] == ["ready", "end"] and code == 1000

    async def leave_early():
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"format": "pcm16", "sample_rate_hz": 16000}))
            await ws.recv()
            await ws.send(np.zeros(8000, "<i2").tobytes())
        # the server must release the stream: a later one is served
        return await _session(ws_url, {"format": "pcm16", "sample_rate_hz": 16000}, [])

    msgs, code = run(leave_early())
    assert code == 1000


def test_idle_total_timeouts_and_frame_size(predictor):
    with _serve(predictor, stream_idle_timeout_s=0.5, stream_max_duration_s=1.5, max_frame_kb=4) as url:
        url = url.replace("http://", "ws://") + "/v1/stream"
        start = {"format": "pcm16", "sample_rate_hz": 16000}
        msgs, code = run(_session(url, start, [], end=False))
        assert msgs[-1]["error"]["code"] == "idle_timeout" and code == 1008

        async def trickle():
            got = []
            async with websockets.connect(url) as ws:
                await ws.send(json.dumps(start))

                async def read():
                    try:
                        async for m in ws:
                            got.append(json.loads(m))
                    except websockets.ConnectionClosed:
                        pass

                reader = asyncio.create_task(read())
                try:
                    for _ in range(40):  # 0.3 s apart: never idle, but longer than 1.5 s in total
                        await ws.send(np.zeros(1600, "<i2").tobytes())
                        await asyncio.sleep(0.3)
                except websockets.ConnectionClosed:
                    pass
                await reader
            return got, ws.close_code

        msgs, code = run(trickle())
        assert msgs[-1]["error"]["code"] == "stream_too_long" and code == 1008
        msgs, code = run(_session(url, start, [bytes(8192)], end=False))
        assert msgs[-1]["error"]["code"] == "frame_too_large" and code == 1009


def test_active_streams_gauge_and_stream_counters(predictor):
    import httpx

    with _serve(predictor) as url:
        ws = url.replace("http://", "ws://") + "/v1/stream"

        async def hold_open():
            async with websockets.connect(ws) as conn:
                await conn.send(json.dumps({"format": "pcm16", "sample_rate_hz": 16000}))
                await conn.recv()
                during = httpx.get(url + "/metrics").text
                await conn.send(json.dumps({"type": "end"}))
                async for _ in conn:
                    pass
            return during

        during = run(hold_open())
        after = httpx.get(url + "/metrics").text
    assert "emovox_streams_active 1.0" in during
    assert "emovox_streams_active 0.0" in after and 'emovox_streams_total{outcome="ok"} 1.0' in after
