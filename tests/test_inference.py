"""The predictor core (emovox.inference): one result shape for signals, files, bytes, timelines."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from test_vad import SR, bursts

from emovox.errors import AudioError, ConfigError, ModelError
from emovox.inference import Prediction, Timeline, load_model
from emovox.inference.results import summarize
from emovox.inference.timeline import plot_timeline, smooth_probabilities, window_spans, window_starts

LABELS = ("neutral", "happy", "sad", "angry")


def make_artifact(path, *, seed: int = 0, threshold=None, temperature=None, preprocessing=None):
    """A small untrained flagship saved as a real artifact (waveform in, logits out)."""
    import torch

    from emovox.models.artifact import make_config, save_artifact
    from emovox.models.registry import build_model
    from emovox.models.spec import TaskSpec

    torch.manual_seed(seed)
    spec = TaskSpec(labels=LABELS, sample_rate_hz=SR, clip_s=3.0)
    params = {"n_mels": 32, "stem_channels": 8, "channels": [8, 16], "embed_dim": 16}
    model = build_model("flagship", spec, **params).eval()
    with torch.no_grad():  # make the untrained head decisive enough to see calibration act
        model.head.weight.mul_(20.0)
    config = make_config(
        spec,
        "flagship",
        params,
        preprocessing=preprocessing or {},
        calibration={"temperature": temperature},
        threshold=threshold,
    )
    return save_artifact(path, model, config)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return make_artifact(tmp_path_factory.mktemp("model") / "art")


@pytest.fixture(scope="module")
def model(artifact):
    return load_model(artifact, backend="torch")


@pytest.fixture(scope="module")
def clip():
    return bursts(seed=5, n=1)[0][: SR * 4]


def _check_prediction(p: Prediction, *, end_s: float):
    assert isinstance(p, Prediction)
    assert set(p.scores) == set(LABELS)
    assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert p.confidence == pytest.approx(max(p.scores.values()))
    assert p.label in LABELS or p.label == "unknown"
    assert p.start_s == 0.0 and p.end_s == pytest.approx(end_s, abs=1e-3)
    d = p.to_dict()
    assert list(d) == ["start_s", "end_s", "label", "confidence", "scores", "speech_s", "reason", "quality", "warnings"]
    assert 0 < d["speech_s"] <= end_s and set(d["quality"]) >= {"flags", "bandwidth_hz", "snr_db"}
    json.dumps(d)


def test_array_file_bytes_and_file_object_give_the_same_prediction(model, clip, tmp_path):
    path = tmp_path / "clip.wav"
    sf.write(path, clip, SR, subtype="FLOAT")
    p_array = model.predict(clip, sample_rate=SR)
    _check_prediction(p_array, end_s=clip.size / SR)
    for source in (str(path), path, path.read_bytes(), io.BytesIO(path.read_bytes())):
        p = model.predict(source)
        assert p.label == p_array.label
        for k in LABELS:
            assert p.scores[k] == pytest.approx(p_array.scores[k], abs=1e-5)


def test_array_at_another_rate_is_resampled(model, clip):
    import soxr

    p16 = model.predict(clip, sample_rate=SR)
    p8 = model.predict(soxr.resample(clip, SR, 8000).astype(np.float32), sample_rate=8000)
    assert p8.end_s == pytest.approx(p16.end_s, abs=1e-3)
    assert max(abs(p8.scores[k] - p16.scores[k]) for k in LABELS) < 0.1


def test_batch_equals_single_and_long_clips_are_windowed(model, clip):
    rng = np.random.default_rng(0)
    clips = [clip, clip[:SR], (0.05 * rng.standard_normal(SR * 10)).astype(np.float32)]
    batch = model.predict_batch(clips, sample_rate=SR)
    for c, p in zip(clips, batch):
        single = model.predict(c, sample_rate=SR)
        assert single.scores == pytest.approx(p.scores, abs=1e-5)
    assert batch[2].end_s == pytest.approx(10.0)


def test_variable_length_model_gets_the_trimmed_clip_at_its_own_length(tmp_path, clip):
    import torch

    from emovox.audio import trim_silence
    from emovox.inference.calibration import softmax
    from emovox.models.artifact import load_artifact

    art = make_artifact(tmp_path / "var", preprocessing={"crop": "none", "trim_silence": True})
    m = load_model(art, backend="torch")
    assert not m.info.fixed_length and m.info.trim_silence
    padded = np.concatenate([np.zeros(SR, np.float32), clip, np.zeros(SR // 2, np.float32)])
    p = m.predict(padded, sample_rate=SR)
    assert p.end_s == pytest.approx(padded.size / SR)
    module, _ = load_artifact(art)
    with torch.no_grad():
        want = softmax(module(torch.from_numpy(trim_silence(padded, sample_rate_hz=SR))[None]).numpy())[0]
    np.testing.assert_allclose([p.scores[k] for k in LABELS], want, atol=1e-5)
    # windows of a timeline are fed unpadded, short ones at least 0.5 s long
    t = m.predict_timeline(bursts(seed=0, n=2)[0], sample_rate=SR, vad="webrtc")
    assert len(t.segments) >= 2


def test_min_confidence_turns_low_confidence_into_unknown(artifact, clip):
    strict = load_model(artifact, backend="torch", min_confidence=1.0)
    p = strict.predict(clip, sample_rate=SR)
    assert p.label == "unknown"
    assert p.top_class in LABELS and p.confidence < 1.0
    lax = load_model(artifact, backend="torch", min_confidence=0.0)
    assert lax.predict(clip, sample_rate=SR).label == p.top_class


def test_artifact_temperature_and_threshold_are_applied(tmp_path, clip, model):
    hot = load_model(make_artifact(tmp_path / "hot", temperature=50.0, threshold=0.9), backend="torch")
    p, p_raw = hot.predict(clip, sample_rate=SR), model.predict(clip, sample_rate=SR)
    assert p.top_class == p_raw.top_class
    assert p.confidence < p_raw.confidence and p.confidence < 0.3  # T=50: nearly uniform
    assert p.label == "unknown"


def test_errors_are_emovox_errors(model, artifact, tmp_path, monkeypatch):
    import emovox.inference.locate as locate_module

    monkeypatch.setattr(locate_module, "default_model_dir", lambda: tmp_path / "missing")
    with pytest.raises(ModelError, match="no bundled model"):
        load_model()
    monkeypatch.undo()
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="model.onnx"):
        load_model(artifact, backend="onnx")
    with pytest.raises(ConfigError, match="backend='tf' is unknown"):
        load_model(artifact, backend="tf")
    with pytest.raises(AudioError):
        model.predict(b"this is not audio at all")
    with pytest.raises(AudioError, match="mono"):
        model.predict(np.zeros((2, SR), np.float32), sample_rate=SR)
    with pytest.raises(ConfigError, match="arrays only"):
        model.predict(b"RIFF", sample_rate=8000)
    bad = tmp_path / "features"
    bad.mkdir()
    (bad / "config.json").write_text(
        json.dumps({"task": {"labels": ["a", "b"], "input_kind": "features", "feature": "mfcc", "feature_dims": [40]}})
    )
    with pytest.raises(ModelError, match="input_kind='features'"):
        load_model(bad)


def test_timeline_finds_the_bursts_of_a_long_file(model, tmp_path):
    y, truth = bursts(seed=0, n=4)
    path = tmp_path / "long.flac"
    sf.write(path, y, SR)
    t = model.predict_timeline(path, vad="webrtc", block_s=2.0)
    assert isinstance(t, Timeline)
    assert t.duration_s == pytest.approx(y.size / SR, abs=1e-3)
    for seg in t.segments:  # every segment lies in a burst
        assert any(a - 0.3 <= seg.start_s < seg.end_s <= b + 0.3 for a, b in truth), seg
    for a, b in truth:  # every burst is covered
        covered = sum(min(b, s.end_s) - max(a, s.start_s) for s in t.segments if s.end_s > a and s.start_s < b)
        assert covered > 0.9 * (b - a)
    # the 4.5 s burst is longer than a 3 s window: several consecutive segments
    assert sum(1 for s in t.segments if truth[3][0] - 0.3 <= s.start_s <= truth[3][1]) >= 2
    starts = [s.start_s for s in t.segments]
    assert starts == sorted(starts)
    assert all(a.end_s <= b.start_s + 1e-9 for a, b in zip(t.segments, t.segments[1:]))
    s = t.summary
    assert s["speech_s"] == pytest.approx(sum(x.speech_s for x in t.segments), abs=1e-2)
    assert sum(s["distribution"].values()) == pytest.approx(1.0, abs=1e-3)
    assert s["dominant"] in LABELS + ("mixed", "unknown")
    assert s["no_speech_share"] == pytest.approx(1 - s["speech_s"] / t.duration_s, abs=1e-3)
    assert all(0 < seg.speech_s <= seg.duration_s + 0.1 for seg in t.segments)
    d = t.to_dict()
    assert set(d) == {"duration_s", "summary", "segments", "merged", "quality", "warnings"}
    json.dumps(d)
    png = plot_timeline(t, tmp_path / "plots" / "timeline.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same from an array, and from bytes
    t2 = model.predict_timeline(y, sample_rate=SR, vad="webrtc")
    assert [(a.start_s, a.end_s) for a in t2.segments] == [(a.start_s, a.end_s) for a in t.segments]


def test_timeline_of_silence_is_empty_and_no_speech(model):
    t = model.predict_timeline(np.zeros(SR * 8, np.float32), sample_rate=SR, vad="webrtc")
    assert t.segments == () and t.dominant == "no_speech"
    assert t.summary["reason"] == "no_speech" and t.summary["no_speech_share"] == 1.0
    overall = t.overall()
    assert overall.label == "no_speech" and overall.scores == {} and overall.speech_s == 0.0


def test_window_placement_partitions_the_segment():
    starts = window_starts(10 * SR, window=3 * SR, hop=SR * 3 // 2)
    assert starts[0] == 0 and starts[-1] == 7 * SR
    assert np.all(np.diff(starts) <= SR * 3 // 2)
    spans = window_spans(starts, window=3 * SR, n_samples=10 * SR)
    assert spans[0][0] == 0 and spans[-1][1] == 10 * SR
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert list(window_starts(2 * SR, window=3 * SR, hop=SR)) == [0]
    with pytest.raises(ConfigError, match="hop"):
        window_starts(10, window=3, hop=4)


def test_smoothing_averages_neighbours_but_not_across_long_pauses():
    p = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    spans = [(0, 1), (1, 2), (2, 3), (10, 11)]
    out = smooth_probabilities(p, spans, size=3, max_gap_s=1.0)
    np.testing.assert_allclose(out[1], [2 / 3, 1 / 3])
    np.testing.assert_allclose(out[0], [0.5, 0.5])
    np.testing.assert_allclose(out[3], [1.0, 0.0])  # isolated by a 7 s pause
    np.testing.assert_allclose(smooth_probabilities(p, spans, size=1), p)
    with pytest.raises(ConfigError, match="odd"):
        smooth_probabilities(p, spans, size=2)


def test_summary_describes_shares_of_speech_time():
    a = Prediction("happy", 0.9, {"happy": 0.9, "sad": 0.1}, 0.0, 3.0, 3.0)
    b = Prediction("sad", 0.6, {"happy": 0.4, "sad": 0.6}, 5.0, 6.0, 1.0)
    c = Prediction("unknown", 0.5, {"happy": 0.5, "sad": 0.5}, 6.0, 8.5, 2.0, reason="low_confidence")
    s = summarize([a, b, c], ("happy", "sad"), duration_s=10.0)
    assert s["speech_s"] == pytest.approx(6.0)
    assert s["distribution"]["happy"] == pytest.approx((0.9 * 3 + 0.4 + 0.5 * 2) / 6, abs=1e-4)
    assert s["label"] == s["dominant"] == "happy" and s["reason"] is None
    assert s["emotion_share"] == {"happy": 0.75, "sad": 0.25}
    assert s["confident_share"] == pytest.approx(4 / 6, abs=1e-4)
    assert s["unknown_share"] == pytest.approx(2 / 6, abs=1e-4)
    assert s["no_speech_share"] == pytest.approx(0.4)


def test_a_long_recording_with_confident_segments_is_not_headlined_unknown():
    """Regression (issue 16): 10 of 11 confident, mostly angry segments were summarised as ``unknown``."""
    labels = ("angry", "happy", "sad")
    segs = [
        Prediction(
            "angry" if i % 5 else "sad", 0.5, {"angry": 0.5, "happy": 0.2, "sad": 0.3}, 4.0 * i, 4.0 * i + 3.5, 3.5
        )
        for i in range(10)
    ]
    segs.append(
        Prediction(
            "unknown", 0.35, {"angry": 0.35, "happy": 0.33, "sad": 0.32}, 40.0, 42.0, 2.0, reason="low_confidence"
        )
    )
    t = Timeline(tuple(segs), 42.0, labels, threshold=0.45)
    assert t.dominant == "angry"
    assert t.summary["emotion_share"]["angry"] == pytest.approx(0.8)
    overall = t.overall()
    assert overall.label == "angry" and overall.confidence == pytest.approx(0.5)
    assert overall.speech_s == pytest.approx(37.0)


def test_summary_says_mixed_unknown_or_no_speech_with_a_reason():
    labels = ("angry", "sad")
    tie = [
        Prediction("angry", 0.8, {"angry": 0.8, "sad": 0.2}, 0, 2, 2.0),
        Prediction("sad", 0.8, {"angry": 0.2, "sad": 0.8}, 2, 3.9, 1.9),
    ]
    s = summarize(tie, labels)
    assert s["label"] == "mixed" and s["reason"] == "mixed" and "angry" in s["detail"]
    unsure = [Prediction("unknown", 0.4, {"angry": 0.4, "sad": 0.6}, 0, 3, 3.0, reason="low_confidence")]
    s = summarize(unsure, labels)
    assert s["label"] == "unknown" and s["reason"] == "no_confident_speech" and s["emotion_share"] == {}
    mostly_unsure = unsure * 9 + [Prediction("angry", 0.9, {"angry": 0.9, "sad": 0.1}, 30, 33, 3.0)]
    s = summarize(mostly_unsure, labels)  # 10 % confident: not enough to name the recording
    assert s["label"] == "unknown" and s["emotion_share"] == {"angry": 1.0} and "10%" in s["detail"]
    s = summarize([], labels, duration_s=5.0)
    assert s["label"] == "no_speech" and s["no_speech_share"] == 1.0


def test_merged_segments_join_agreeing_neighbours():
    from emovox.inference.results import merge_segments

    labels = ("angry", "sad")
    segs = [
        Prediction("angry", 0.6, {"angry": 0.6, "sad": 0.4}, 0, 1, 1.0),
        Prediction("angry", 0.8, {"angry": 0.8, "sad": 0.2}, 1, 3, 2.0),
        Prediction("sad", 0.7, {"angry": 0.3, "sad": 0.7}, 3, 4, 1.0),
        Prediction("sad", 0.7, {"angry": 0.3, "sad": 0.7}, 9, 10, 1.0),
    ]  # after a 5 s pause: separate
    merged = merge_segments(segs, max_gap_s=1.0)
    assert [(m.label, m.start_s, m.end_s) for m in merged] == [("angry", 0, 3), ("sad", 3, 4), ("sad", 9, 10)]
    assert merged[0].confidence == pytest.approx((0.6 + 0.8 * 2) / 3)
    assert merged[0].speech_s == pytest.approx(3.0) and sum(merged[0].scores.values()) == pytest.approx(1.0)
    assert Timeline(tuple(segs), 10.0, labels).to_dict()["merged"][0]["end_s"] == 3


def test_timeline_keeps_only_a_block_and_a_turn_of_audio(model, tmp_path, monkeypatch):
    from emovox.inference import long_audio

    y = np.concatenate([bursts(seed=s, n=4)[0] for s in range(3)])  # 75 s
    path = tmp_path / "long.flac"
    sf.write(path, y, SR)
    sizes = []
    original = long_audio._Buffer.append

    def spy(self, block):
        original(self, block)
        sizes.append(self.size)

    monkeypatch.setattr(long_audio._Buffer, "append", spy)
    t = model.predict_timeline(path, vad="webrtc", block_s=2.0)
    assert len(t.segments) >= 12
    # whole blocks are dropped: at most the longest turn (4.5 s) + two blocks + VAD lag
    assert max(sizes) <= (4.5 + 2 * 2.0 + 1.0) * SR


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 20 * SR), window=st.integers(SR // 2, 4 * SR), frac=st.floats(0.1, 1.0))
def test_window_spans_always_partition_the_segment(n, window, frac):
    hop = max(1, int(window * frac))
    starts = window_starts(n, window=window, hop=hop)
    assert starts[0] == 0 and np.all(np.diff(starts) > 0) and np.all(np.diff(starts) <= hop)
    assert starts[-1] + window >= n
    spans = window_spans(starts, window=window, n_samples=n)
    assert spans[0][0] == 0 and spans[-1][1] == n
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(spans, spans[1:]))
