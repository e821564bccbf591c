"""The speech gate and the quality flags (issue 16): no emotion without speech, honest flags.

Non-speech comes from the synthetic generators of :mod:`emovox.augment.synth`;
speech from the corpora (skipped cleanly when they are absent).
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import emovox
from emovox.audio.codecs import codec_roundtrip, telephone_band
from emovox.audio.quality import NARROWBAND_HZ, QualityMeter, assess_quality
from emovox.augment.synth import GENERATORS, generate
from emovox.corpora import default_corpora_root
from emovox.errors import ConfigError
from emovox.inference.gate import (
    MIN_EMOTION_S,
    NO_SPEECH_S,
    SPEECH_PROBABILITY,
    SpeechGate,
    gate_verdict,
    quality_warnings,
    speech_seconds,
)

SR = 16000
ROOT = default_corpora_root()
ANGRY = ROOT / "ravdess/Audio_Speech_Actors_01-24/Actor_01/03-01-05-02-01-01-01.flac"
NEUTRAL_DE = ROOT / "emodb/wav/03a01Nc.flac"
needs_corpora = pytest.mark.skipif(not ANGRY.is_file(), reason="corpora not available")


@pytest.fixture(scope="module")
def model():
    return emovox.load_model(num_threads=1)


@pytest.fixture(scope="module")
def speech():
    y, sr = sf.read(ANGRY, dtype="float32")
    assert sr == SR
    return y


def test_thresholds_are_ordered_and_verdicts_follow_them():
    assert 0 < NO_SPEECH_S < MIN_EMOTION_S < 1.0
    assert gate_verdict(0.0) == "no_speech"
    assert gate_verdict(NO_SPEECH_S) == "too_little_speech"
    assert gate_verdict(MIN_EMOTION_S) is None
    probs = np.array([0.9, 0.2, 0.5, 0.49])
    assert speech_seconds(probs, threshold=0.5) == pytest.approx(2 * 512 / SR)
    assert speech_seconds(probs) == pytest.approx(np.sum(probs >= SPEECH_PROBABILITY) * 512 / SR)
    with pytest.raises(ConfigError, match="ordered"):
        SpeechGate(no_speech_s=0.5, min_emotion_s=0.2)


@pytest.mark.parametrize(
    "kind", ["tone", "chord", "melody", "white", "pink", "brown", "hum", "clicks", "sweep", "dtmf", "fan"]
)
def test_non_speech_gets_no_emotion(model, kind):
    rng = np.random.default_rng(11)
    for seconds in (0.05, 0.3, 4.0):
        p = model.predict(generate(kind, seconds, rng=rng), sample_rate=SR)
        assert not p.is_emotion, (kind, seconds, p)
        assert p.label in ("no_speech", "unknown") and p.reason in ("no_speech", "too_little_speech")


def test_every_generator_renders_finite_audio_at_the_requested_length():
    rng = np.random.default_rng(0)
    for kind in GENERATORS:
        y = generate(kind, 1.5, rng=rng)
        assert y.shape == (int(1.5 * SR),) and y.dtype == np.float32 and np.all(np.isfinite(y))
        assert 0.05 < float(np.sqrt(np.mean(y**2))) < 0.2
    with pytest.raises(ConfigError, match="unknown"):
        generate("violin", 1.0, rng=rng)


@needs_corpora
@pytest.mark.corpora
def test_real_speech_is_answered_with_its_speech_time(model, speech):
    p = model.predict(speech, sample_rate=SR)
    assert p.is_emotion and p.reason is None
    assert 1.0 < p.speech_s < speech.size / SR
    assert p.flags == () and p.warnings == ()


@needs_corpora
@pytest.mark.corpora
def test_a_sliver_of_speech_is_too_little_for_an_emotion(model, speech):
    gate = SpeechGate()
    probs = gate.probabilities(speech)
    voiced = np.flatnonzero(probs >= SPEECH_PROBABILITY)
    start = voiced[len(voiced) // 2] * 512
    sliver = speech[start - 1600 : start + 1600]  # 0.2 s around the middle of the speech
    p = model.predict(sliver, sample_rate=SR)
    assert p.speech_s < MIN_EMOTION_S
    assert not p.is_emotion and p.reason in ("too_little_speech", "no_speech")
    if p.reason == "too_little_speech":
        assert p.label == "unknown" and sum(p.scores.values()) == pytest.approx(1.0)


@needs_corpora
@pytest.mark.corpora
def test_telephone_audio_is_flagged_narrowband_at_any_rate(model, speech):
    call = codec_roundtrip(telephone_band(speech, sample_rate_hz=SR), sample_rate_hz=SR, codec="mulaw")
    p = model.predict(call, sample_rate=SR)
    assert "narrowband" in p.flags and p.quality.bandwidth_hz <= NARROWBAND_HZ
    import soxr

    at8k = soxr.resample(speech, SR, 8000).astype(np.float32)
    up44 = soxr.resample(at8k, 8000, 44100).astype(np.float32)  # 8 kHz audio upsampled: still narrowband
    for y, sr in ((at8k, 8000), (up44, 44100)):
        assert "narrowband" in model.predict(y, sample_rate=sr).flags
    assert "narrowband" not in model.predict(speech, sample_rate=SR).flags


@needs_corpora
@pytest.mark.corpora
def test_clipping_noise_and_level_flags(speech):
    gate = SpeechGate()
    clean = gate.check(speech).quality
    assert clean.flags == ()
    clipped = np.clip(speech * 8, -1, 1)
    assert "clipping" in gate.check(clipped).quality.flags
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(speech.size).astype(np.float32)
    noisy = speech + noise * np.sqrt(np.mean(speech**2) / 10 ** (0 / 10))  # 0 dB SNR
    q = gate.check(noisy.astype(np.float32)).quality
    assert "low_snr" in q.flags and q.snr_db < 10
    quiet = gate.check(speech * 10 ** (-45 / 20)).quality
    assert "low_level" in quiet.flags and quiet.level_dbfs < -50


def test_quality_meter_equals_one_shot_assessment_block_by_block():
    rng = np.random.default_rng(3)
    y = np.concatenate([generate("pink", 2.0, rng=rng), np.clip(generate("tone", 2.0, rng=rng) * 20, -1, 1)])
    probs = (rng.random(y.size // 512) > 0.5).astype(np.float32)
    meter = QualityMeter()
    for start in range(0, y.size, 5000):  # blocks that do not align with frames
        block = y[start : start + 5000]
        first, last = start // 512, (start + block.size) // 512
        meter.update(block, probs[first:last])
    whole = assess_quality(y, speech_probs=probs)
    streamed = meter.result()
    assert streamed.flags == whole.flags
    assert streamed.bandwidth_hz == pytest.approx(whole.bandwidth_hz)
    assert streamed.clipped_share == pytest.approx(whole.clipped_share)
    assert streamed.snr_db == pytest.approx(whole.snr_db, abs=0.6)


def test_warnings_name_what_the_model_was_not_measured_on():
    from emovox.audio.quality import Quality

    q = Quality(3900.0, 0.02, 3.0, -55.0, True, True, True, True)
    unmeasured = quality_warnings(q, {})
    assert len(unmeasured) == 4 and "narrowband" in unmeasured[0]
    measured = quality_warnings(q, {"narrowband": True, "min_snr_db": 5, "clipping": True})
    assert len(measured) == 2 and "estimated SNR 3 dB" in measured[0] and "low level" in measured[1]
    fine = Quality(7750.0, 0.0, 40.0, -25.0, False, False, False, False)
    assert quality_warnings(fine, {}) == ()


@needs_corpora
@pytest.mark.corpora
def test_gate_is_independent_of_the_model_and_can_be_turned_off(speech):
    rng = np.random.default_rng(5)
    tone = generate("tone", 3.0, rng=rng)
    cnn = emovox.load_model("cnn", num_threads=1)
    assert cnn.predict(tone, sample_rate=SR).label == "no_speech"
    ungated = emovox.load_model("cnn", num_threads=1, gate=False, min_confidence=0)
    p = ungated.predict(tone, sample_rate=SR)
    assert p.is_emotion and p.quality is None  # research mode: the old behaviour, no flags


@needs_corpora
@pytest.mark.corpora
def test_timeline_of_speech_and_music_reports_shares(model, speech):
    rng = np.random.default_rng(8)
    music = generate("music", 6.0, rng=rng) * 0.5
    y = np.concatenate([music, speech, np.zeros(SR, np.float32), speech, music]).astype(np.float32)
    t = model.predict_timeline(y, sample_rate=SR)
    s = t.summary
    assert s["label"] not in ("no_speech",) and 0.4 < s["no_speech_share"] < 0.95
    assert sum(s["emotion_share"].values()) == pytest.approx(1.0, abs=1e-3) or s["label"] == "unknown"
    for seg in t.segments:  # the music is not analysed as speech
        assert seg.start_s >= 6.0 - 0.5 and seg.end_s <= y.size / SR - 6.0 + 0.5
    assert t.quality is not None and t.quality.snr_db is not None
