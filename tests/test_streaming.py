"""The streaming engine (emovox.inference.streaming): chunks in, one event per hop out.

Real model (the bundled one) and real corpus clips where the result matters;
synthetic signals where only the plumbing does.
"""

from __future__ import annotations

import math
import threading
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emovox.audio import resample
from emovox.audio.resample_stream import ChunkResampler
from emovox.corpora import default_corpora_root
from emovox.errors import AudioError, ConfigError
from emovox.inference import default_model_dir, load_model
from emovox.inference.streaming import StreamEngine, StreamEvent

SR = 16000
CORPORA = default_corpora_root()
RAVDESS_CLIP = CORPORA / "ravdess/Audio_Speech_Actors_01-24/Actor_01/03-01-05-02-01-01-01.flac"  # angry
RAVDESS_SAD = CORPORA / "ravdess/Audio_Speech_Actors_01-24/Actor_02/03-01-04-02-02-01-02.flac"
EMODB_CLIP = CORPORA / "emodb/wav/03a01Wa.flac"
KEYS = {"t", "start_s", "end_s", "speech", "label", "confidence", "scores", "speech_s", "reason", "quality"}

needs_model = pytest.mark.skipif(not (default_model_dir() / "config.json").is_file(), reason="no bundled model")
needs_corpora = pytest.mark.skipif(
    not RAVDESS_CLIP.is_file() or not EMODB_CLIP.is_file(), reason=f"RAVDESS/EMO-DB clips not under {CORPORA}"
)


def read(path) -> np.ndarray:
    import soundfile as sf

    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    assert sr == SR
    return y.mean(axis=1)


def _load(name=None, **options):
    """A shipped model by name (``None``: the default), on one thread (onnx where it ships one)."""
    return load_model(name, num_threads=1, **options)


@pytest.fixture(scope="module")
def model():
    """The bundled default model (whatever it is: fixed- or variable-length)."""
    return _load()


@pytest.fixture(scope="module")
def fast():
    """The small shipped CNN (plumbing tests)."""
    return _load("cnn")


def run(model, y, sr=SR, chunks=None, **options) -> list[StreamEvent]:
    """Feed ``y`` in chunks of the given sizes (one chunk when None), then close."""
    engine = StreamEngine(model, **options)
    events = []
    sizes = [y.shape[0]] if chunks is None else chunks
    i = 0
    for size in sizes:
        events += engine.feed(y[i : i + size], sr)
        i += size
    assert i >= y.shape[0], "chunk sizes must cover the signal"
    events += engine.close()
    assert engine.events_emitted == len(events)
    return events


def assert_same(a: list[StreamEvent], b: list[StreamEvent], *, atol: float = 1e-5) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.t, x.start_s, x.end_s, x.speech, x.label) == pytest.approx(
            (y.t, y.start_s, y.end_s, y.speech, y.label)
        )
        assert x.confidence == pytest.approx(y.confidence, abs=atol)
        assert x.scores.keys() == y.scores.keys()
        for k in x.scores:
            assert x.scores[k] == pytest.approx(y.scores[k], abs=atol)


def speech_clip(paths=(RAVDESS_CLIP, EMODB_CLIP)) -> np.ndarray:
    return np.concatenate([read(p) for p in paths])


# --------------------------------------------------------------------------- chunking
@needs_model
@needs_corpora
@pytest.mark.corpora
def test_events_do_not_depend_on_chunk_sizes(fast):
    y = speech_clip()
    whole = run(fast, y)
    assert any(e.speech for e in whole) and any(not e.speech for e in whole)
    rng = np.random.default_rng(0)
    random_sizes = list(rng.integers(0, 9000, size=y.size // 2000))
    for sizes in ([1] * y.size, [160] * (y.size // 160 + 1), [4000] * (y.size // 4000 + 1), random_sizes + [y.size]):
        assert_same(run(fast, y, chunks=sizes), whole)


@needs_model
@settings(max_examples=12, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 2 * SR), max_size=12),
    rate=st.sampled_from([16000, 22050, 44100]),
    hop_s=st.sampled_from([0.25, 0.5, 1.0]),
)
def test_any_split_of_the_stream_gives_the_same_events(fast, cuts, rate, hop_s):
    rng = np.random.default_rng(len(cuts))
    y = (0.2 * rng.standard_normal(2 * rate)).astype(np.float32)
    y[rate // 2 : rate] = 0.0  # a pause: the WebRTC detector sees speech, then none, then speech
    bounds = sorted(c * rate // SR for c in cuts)
    sizes = np.diff([0, *bounds, y.size]).tolist()
    options = {"vad": "webrtc", "hop_s": hop_s, "window_s": 1.0}
    assert_same(run(fast, y, sr=rate, chunks=sizes, **options), run(fast, y, sr=rate, **options))


@needs_model
@needs_corpora
@pytest.mark.corpora
@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_other_rates_give_events_close_to_16k(model, rate):
    y = read(RAVDESS_CLIP)
    ref = run(model, y)
    x = resample(y, orig_hz=SR, target_hz=rate)
    events = run(model, x, sr=rate, chunks=[int(rate * 0.1)] * (x.size // int(rate * 0.1) + 1))
    # the incremental resampler gives what one-shot resampling of the whole signal gives
    assert_same(events, run(model, resample(x, orig_hz=rate, target_hz=SR)), atol=1e-4)
    assert len(events) == len(ref)
    for a, b in zip(events, ref):
        assert a.t == pytest.approx(b.t, abs=2e-3)
    both = [(a, b) for a, b in zip(events, ref) if a.speech and b.speech]
    assert len(both) >= sum(b.speech for b in ref) - 1  # the VAD agrees (one edge window may flip)
    if rate == 8000:  # telephone band: the model hears less (how much is the model's business)
        return
    assert all(a.label == b.label for a, b in both)
    for a, b in both:
        assert max(abs(a.scores[k] - b.scores[k]) for k in b.scores) < 0.03, (rate, a.t)


@needs_model
@needs_corpora
@pytest.mark.corpora
def test_int16_and_stereo_chunks_match_float_mono(model):
    y = read(RAVDESS_CLIP)
    ref = run(model, y, chunks=[1600] * (y.size // 1600 + 1))
    pcm = np.round(np.clip(y, -1, 1) * 32767).astype(np.int16)
    # 16-bit quantisation noise (-96 dB) moves a model's probabilities by well under 0.01
    assert_same(run(model, pcm, chunks=[1600] * (y.size // 1600 + 1)), ref, atol=1e-2)
    stereo = np.stack([y, y], axis=1).astype(np.float64)
    assert_same(run(model, stereo, chunks=[1600] * (y.size // 1600 + 1)), ref, atol=1e-5)


# --------------------------------------------------------------------------- semantics
@needs_model
@needs_corpora
@pytest.mark.corpora
def test_speech_windows_use_the_file_predictions_calibration_and_threshold(model):
    y = read(RAVDESS_CLIP)[: int(2.8 * SR)]
    # vad off, smoothing off, one window spanning the whole clip: the closing event is predict()
    last = run(model, y, vad="off", smoothing=1, window_s=3.0, hop_s=0.5)[-1]
    p = model.predict(y, sample_rate=SR)
    assert (last.start_s, last.end_s) == (0.0, pytest.approx(y.size / SR))
    assert last.label == p.label
    assert last.confidence == pytest.approx(p.confidence, abs=1e-5)
    for k, v in p.scores.items():
        assert last.scores[k] == pytest.approx(v, abs=1e-5)
    # a threshold of 1 turns every speech window into "unknown"
    strict = _load(min_confidence=1.0)
    events = run(strict, y, vad="off")
    assert {e.label for e in events} == {"unknown"}
    assert all(0 < e.confidence < 1 for e in events)


@needs_model
@needs_corpora
@pytest.mark.corpora
def test_smoothing_is_a_causal_mean_over_speech_windows(fast):
    y = read(RAVDESS_CLIP)
    raw = run(fast, y, smoothing=1)
    smooth = run(fast, y, smoothing=3)
    history = []
    for r, s in zip(raw, smooth):
        assert r.speech == s.speech
        if not r.speech:
            history.clear()
            continue
        history = (history + [r.scores])[-3:]
        for k in r.scores:
            assert s.scores[k] == pytest.approx(np.mean([h[k] for h in history]), abs=1e-4)


@needs_model
def test_silence_gives_events_without_speech(fast):
    rng = np.random.default_rng(1)
    for y in (np.zeros(5 * SR, np.float32), (1e-4 * rng.standard_normal(5 * SR)).astype(np.float32)):
        events = run(fast, y, chunks=[3200] * 25)
        assert len(events) == 10
        for e in events:
            d = e.to_dict()
            assert {k: d[k] for k in KEYS - {"quality"}} == {
                "t": e.t,
                "start_s": e.start_s,
                "end_s": e.end_s,
                "speech": False,
                "label": "no_speech",
                "confidence": 0.0,
                "scores": {},
                "speech_s": 0.0,
                "reason": "no_speech",
            }
            assert "low_level" in d["quality"]["flags"]


@needs_model
@needs_corpora
@pytest.mark.corpora
@pytest.mark.parametrize("hop_s,window_s", [(0.5, 3.0), (0.25, 2.0), (1.0, 1.0)])
def test_event_timing_and_close_flushes_the_tail(model, hop_s, window_s):
    y = read(RAVDESS_CLIP)
    duration = y.size / SR
    engine = StreamEngine(model, hop_s=hop_s, window_s=window_s)
    events = engine.feed(y, SR)
    assert len(events) == math.floor(duration / hop_s + 1e-9)
    tail = engine.close()
    assert len(tail) == 1 and tail[0].end_s == pytest.approx(duration)
    assert engine.close() == [] and engine.closed
    events += tail
    assert len(events) == math.ceil(duration / hop_s - 1e-9)
    for i, e in enumerate(events[:-1]):
        assert e.t == e.end_s == pytest.approx((i + 1) * hop_s)
    for e in events:
        assert e.end_s - e.start_s == pytest.approx(min(window_s, e.end_s))
        d = e.to_dict()
        assert set(d) == KEYS
        if e.speech:
            assert sum(d["scores"].values()) == pytest.approx(1.0, abs=1e-3)
            assert d["label"] in set(model.labels) | {"unknown"}
    assert engine.seconds_fed == pytest.approx(duration)
    with pytest.raises(ConfigError, match="after close"):
        engine.feed(y[:100], SR)


@needs_model
def test_short_and_empty_streams(fast):
    engine = StreamEngine(fast)
    assert engine.vad in ("silero", "webrtc")  # "auto" resolved
    assert StreamEngine(fast, vad="webrtc").vad == "webrtc" and StreamEngine(fast, vad="off").vad == "off"
    assert engine.feed(np.zeros(0, np.float32), SR) == []
    assert engine.close() == []  # nothing fed: nothing to report
    one = run(fast, np.full(10, 0.1, np.float32), vad="off")  # 10 samples: one tiny window, classified
    assert len(one) == 1 and one[0].speech and one[0].end_s == pytest.approx(10 / SR)


@needs_model
def test_memory_stays_bounded_over_ten_minutes(fast):
    rng = np.random.default_rng(2)
    engine = StreamEngine(fast, vad="webrtc", hop_s=1.0)
    # noise bursts (the WebRTC detector calls them speech) alternating with silence
    burst = (0.2 * rng.standard_normal(2 * SR)).astype(np.float32)
    block = np.concatenate([burst, np.zeros(SR, np.float32)])  # 3 s
    ring_bytes = engine.buffer_bytes
    tracemalloc.start()
    try:
        sizes, speech = [], 0
        for i in range(200):  # 10 minutes in 0.25 s .. 3 s chunks
            for j in range(0, block.size, 4000 * (1 + i % 12)):
                speech += sum(e.speech for e in engine.feed(block[j : j + 4000 * (1 + i % 12)], SR))
                assert engine.buffer_s <= engine.max_buffer_s
            if i in (20, 199):
                sizes.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert engine.seconds_fed == pytest.approx(600.0)
    assert engine.events_emitted == 600 and speech > 300  # the model ran on most windows
    assert engine.buffer_bytes == ring_bytes
    assert len(engine._history) <= engine.smoothing
    assert sizes[1] - sizes[0] < 64 * 1024, f"memory grew by {sizes[1] - sizes[0]} bytes over 9 minutes"


# --------------------------------------------------------------------------- models and threads
def test_fixed_length_model_and_torch_backend(tmp_path):
    pytest.importorskip("torch")
    from test_inference import make_artifact

    art = make_artifact(tmp_path / "fixed")  # crop "center": 3 s fixed input
    fixed = load_model(art, backend="torch")
    assert fixed.info.fixed_length
    rng = np.random.default_rng(3)
    y = (0.1 * rng.standard_normal(4 * SR)).astype(np.float32)
    events = run(fixed, y, vad="off", window_s=2.0, hop_s=0.5)
    assert len(events) == 8 and all(e.speech for e in events)
    assert_same(run(fixed, y, vad="off", window_s=2.0, hop_s=0.5, chunks=[777] * 83), events)
    wide = run(fixed, y, vad="off", window_s=8.0, hop_s=2.0, smoothing=1)  # windows > clip: averaged
    # noise: the gate would answer no_speech
    p = load_model(art, backend="torch", gate=False).predict(y, sample_rate=SR)
    assert wide[-1].confidence == pytest.approx(p.confidence, abs=1e-5)


def _threads_match_sequential(model, clips, options):
    sequential = [run(model, y, chunks=[1024] * (y.size // 1024 + 1), **options) for y in clips]
    results: list = [None] * len(clips)
    errors = []
    start = threading.Barrier(len(clips))

    def work(i):
        try:
            start.wait()
            results[i] = run(model, clips[i], chunks=[1024] * (clips[i].size // 1024 + 1), **options)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(clips))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    for got, want in zip(results, sequential):
        assert_same(got, want)


@needs_model
@needs_corpora
@pytest.mark.corpora
def test_engines_on_threads_share_one_onnx_predictor(fast):
    clips = [read(RAVDESS_CLIP), read(RAVDESS_SAD), read(EMODB_CLIP), speech_clip()]
    _threads_match_sequential(fast, clips, {})


@needs_model
@needs_corpora
@pytest.mark.corpora
def test_engines_on_threads_share_one_torch_predictor():
    pytest.importorskip("torch")
    model = load_model("cnn", backend="torch", num_threads=1)
    clips = [read(RAVDESS_CLIP), read(RAVDESS_SAD), read(EMODB_CLIP)]
    _threads_match_sequential(model, clips, {"vad": "webrtc"})


# --------------------------------------------------------------------------- errors
@needs_model
@pytest.mark.parametrize(
    "options,match",
    [
        ({"window_s": 0.2}, r"window_s=0.2 must be in \[0.5, 30\]"),
        ({"window_s": 31}, r"window_s=31 must be in \[0.5, 30\]"),
        ({"window_s": float("nan")}, r"window_s=nan must be a number"),
        ({"window_s": "3"}, r"window_s='3' must be a number"),
        ({"hop_s": 0.05}, r"hop_s=0.05 must be >= 0.1"),
        ({"hop_s": -1}, r"hop_s=-1 must be >= 0.1"),
        ({"hop_s": True}, r"hop_s=True must be a number"),
        ({"hop_s": 2.0, "window_s": 1.5}, r"hop_s=2 must not exceed window_s=1.5"),
        ({"max_buffer_s": 2.0}, r"max_buffer_s=2.0 must be in \[3, 3600\]"),
        ({"smoothing": 0}, r"smoothing=0 must be an integer"),
        ({"smoothing": 2.5}, r"smoothing=2.5 must be an integer"),
        ({"vad": "bogus"}, r"vad='bogus' is unknown: expected one of auto, silero, webrtc, off"),
        ({"vad_threshold": 1.0}, r"vad_threshold=1.0 must lie in \(0, 1\)"),
        ({"min_speech_s": 4.0}, r"min_speech_s=4.0 must be in \[0, 3\]"),
    ],
)
def test_bad_options_raise_config_errors(fast, options, match):
    with pytest.raises(ConfigError, match=match):
        StreamEngine(fast, **options)


@needs_model
def test_bad_chunks_raise_clear_errors(fast):
    engine = StreamEngine(fast, vad="off")
    with pytest.raises(ConfigError, match="sample_rate_hz must be a positive number, got 0"):
        engine.feed(np.zeros(10, np.float32), 0)
    with pytest.raises(ConfigError, match=r"sample_rate_hz=500 is out of range"):
        engine.feed(np.zeros(10, np.float32), 500)
    engine.feed(np.zeros(10, np.float32), 48000)
    with pytest.raises(ConfigError, match="changed from 48000 to 44100 Hz mid-stream"):
        engine.feed(np.zeros(10, np.float32), 44100)
    with pytest.raises(AudioError, match="dtype uint8 are not supported"):
        engine.feed(np.zeros(10, np.uint8), 48000)
    with pytest.raises(AudioError, match=r"shaped \(n,\) or \(n, channels\), got shape \(2, 3, 4\)"):
        engine.feed(np.zeros((2, 3, 4), np.float32), 48000)
    with pytest.raises(AudioError, match="NaN or infinite"):
        engine.feed(np.array([0.0, np.nan], np.float32), 48000)
    engine.close()
    with pytest.raises(ConfigError, match=r"feed\(\) after close\(\)"):
        engine.feed(np.zeros(10, np.float32), 48000)


def test_chunk_resampler_equals_one_shot_resampling():
    rng = np.random.default_rng(4)
    x = (0.1 * rng.standard_normal(44100 * 2)).astype(np.float32)
    r = ChunkResampler(target_hz=SR)
    out, i = [], 0
    for size in rng.integers(1, 3000, size=200):
        out.append(r.push(x[i : i + size], 44100))
        i += size
    out.append(r.push(x[i:], 44100))
    out.append(r.flush())
    y = np.concatenate(out)
    np.testing.assert_allclose(y, resample(x, orig_hz=44100, target_hz=SR), atol=1e-6)
    assert r.seconds_in == pytest.approx(2.0)
