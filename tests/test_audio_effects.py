"""Resampling, downmix, normalisation, silence trimming and denoising."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.audio import (
    load_audio,
    loudness_lufs,
    normalize_loudness,
    normalize_peak,
    resample,
    spectral_gate,
    to_mono,
    trim_silence,
)
from emovox.errors import ConfigError
from emovox.testing import encode_audio, sine, speech_like


def _dominant_hz(y: np.ndarray, sample_rate_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1 / sample_rate_hz)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    ("orig_hz", "target_hz", "freq_hz"),
    [
        (44100, 16000, 1000.0),
        (16000, 44100, 3000.0),
        (48000, 8000, 440.0),
        (8000, 22050, 2500.0),
        (22050, 22050, 700.0),
    ],
)
def test_resample_keeps_frequency_and_length(orig_hz, target_hz, freq_hz):
    y = sine(freq_hz, duration_s=1.0, sample_rate_hz=orig_hz, amplitude=0.5)[0]
    out = resample(y, orig_hz=orig_hz, target_hz=target_hz)
    assert out.dtype == np.float32
    assert out.size == round(y.size * target_hz / orig_hz)
    assert _dominant_hz(out, target_hz) == pytest.approx(freq_hz, abs=1.5)
    middle = out[out.size // 4 : -out.size // 4]
    assert np.abs(middle).max() == pytest.approx(0.5, rel=0.01)


def test_resample_removes_content_above_new_nyquist():
    y = sine(7000.0, duration_s=1.0, sample_rate_hz=48000)[0]
    out = resample(y, orig_hz=48000, target_hz=8000)  # 7 kHz > 4 kHz Nyquist
    middle = out[800:-800]  # away from the filter's edge transients
    assert np.sqrt(np.mean(middle**2)) < 1e-4


def test_resample_multichannel_matches_per_channel():
    y = np.random.default_rng(0).standard_normal((3, 4410)).astype(np.float32)
    out = resample(y, orig_hz=44100, target_hz=16000)
    assert out.shape == (3, 1600)
    for c in range(3):
        np.testing.assert_allclose(out[c], resample(y[c], orig_hz=44100, target_hz=16000), atol=1e-6)


def test_to_mono():
    y = np.array([[1.0, 0.0, -1.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(to_mono(y), [0.5, 0.0, 0.0])
    np.testing.assert_array_equal(to_mono(y[0]), y[0])
    assert to_mono(y[:1]).shape == (3,)
    with pytest.raises(ConfigError, match=r"shape \(n,\) or \(channels, n\)"):
        to_mono(np.zeros((1, 2, 3)))


def test_normalize_peak():
    y = speech_like(0.5, amplitude=0.2)
    out = normalize_peak(y)
    assert np.abs(out).max() == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(out / np.abs(out).max(), y / np.abs(y).max(), atol=1e-6)
    silence = np.zeros(100, dtype=np.float32)
    np.testing.assert_array_equal(normalize_peak(silence), silence)


def test_loudness_of_reference_tone_matches_bs1770():
    # BS.1770: a 0 dBFS 997 Hz sine reads -3.01 LUFS.
    y = sine(997.0, duration_s=3.0, sample_rate_hz=48000, amplitude=1.0)[0]
    assert loudness_lufs(y, sample_rate_hz=48000) == pytest.approx(-3.01, abs=0.02)
    y16 = sine(997.0, duration_s=3.0, sample_rate_hz=16000, amplitude=1.0)[0]
    assert loudness_lufs(y16, sample_rate_hz=16000) == pytest.approx(-3.01, abs=0.1)
    assert loudness_lufs(y * 0.1, sample_rate_hz=48000) == pytest.approx(-23.01, abs=0.02)
    assert loudness_lufs(np.zeros(48000), sample_rate_hz=48000) == float("-inf")


@pytest.mark.parametrize("amplitude", [0.01, 0.1, 0.5])
def test_normalize_loudness_reaches_target(amplitude):
    y = speech_like(2.0, amplitude=amplitude, seed=1)
    out = normalize_loudness(y, sample_rate_hz=16000)
    assert loudness_lufs(out, sample_rate_hz=16000) == pytest.approx(-23.0, abs=0.05)
    assert np.abs(out).max() <= 1.0


def test_normalize_loudness_never_clips():
    y = np.zeros(16000, dtype=np.float32)
    y[8000] = 0.5  # one click: very low loudness, high peak
    out = normalize_loudness(y, sample_rate_hz=16000, target_lufs=-10)
    assert np.abs(out).max() == pytest.approx(1.0)


def test_load_audio_normalize_modes():
    data = encode_audio(speech_like(1.0, amplitude=0.05), sample_rate_hz=16000, format="wav-float32")
    assert np.abs(load_audio(data, normalize="peak")).max() == pytest.approx(1.0, rel=1e-5)
    assert loudness_lufs(load_audio(data, normalize="loudness"), sample_rate_hz=16000) == pytest.approx(-23, abs=0.1)


def test_trim_silence_cuts_leading_and_trailing_silence():
    sr = 16000
    rng = np.random.default_rng(0)
    tone = sine(300.0, duration_s=0.5, sample_rate_hz=sr)[0]
    y = np.concatenate([np.zeros(sr), tone, np.zeros(sr // 2)]).astype(np.float32)
    y += 1e-4 * rng.standard_normal(y.size).astype(np.float32)  # -74 dB floor
    out = trim_silence(y, sample_rate_hz=sr)
    assert 0.5 * sr <= out.size <= 0.5 * sr + 0.05 * sr
    start = int(np.flatnonzero(np.isin(y, out[:10]))[0])
    assert sr - 0.03 * sr <= start <= sr + 0.001 * sr
    # Nothing to trim in a signal that is loud throughout.
    assert trim_silence(tone, sample_rate_hz=sr).size == tone.size
    assert trim_silence(np.zeros(sr, dtype=np.float32), sample_rate_hz=sr).size == 0


def test_trim_silence_via_load_audio():
    sr = 16000
    y = np.concatenate([np.zeros(sr), sine(300.0, duration_s=0.5, sample_rate_hz=sr)[0], np.zeros(sr)])
    data = encode_audio(y.astype(np.float32), sample_rate_hz=sr, format="wav-pcm16")
    out = load_audio(data, trim_silence=True)
    assert 0.5 * sr <= out.size <= 0.55 * sr


def _snr_db(clean: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean**2) / np.sum((estimate - clean) ** 2)))


def test_spectral_gate_raises_snr_of_tone_bursts_in_white_noise():
    sr = 16000
    rng = np.random.default_rng(42)
    t = np.arange(3 * sr) / sr
    gate = ((t % 1.0) >= 0.4).astype(np.float32)  # 0.4 s pauses, 0.6 s tone, x3
    clean = (0.3 * np.sin(2 * np.pi * 600 * t) * gate).astype(np.float32)
    noisy = clean + (0.03 * rng.standard_normal(t.size)).astype(np.float32)
    before = _snr_db(clean, noisy)
    after = _snr_db(clean, spectral_gate(noisy, sample_rate_hz=sr))
    assert after - before > 10.0, (before, after)


def test_spectral_gate_keeps_speech_like_signal_mostly_intact():
    sr = 16000
    rng = np.random.default_rng(1)
    clean = speech_like(2.0, sample_rate_hz=sr, seed=5, amplitude=0.5)
    noisy = clean + (0.02 * rng.standard_normal(clean.size)).astype(np.float32)
    out = spectral_gate(noisy, sample_rate_hz=sr)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert _snr_db(clean, out) > _snr_db(clean, noisy) + 3.0
    assert load_audio(encode_audio(noisy, sample_rate_hz=sr, format="wav-float32"), denoise=True).size == noisy.size


def test_spectral_gate_short_input_and_bad_options():
    short = np.ones(100, dtype=np.float32)
    np.testing.assert_array_equal(spectral_gate(short, sample_rate_hz=16000), short)
    with pytest.raises(ConfigError, match="noise_fraction must be in"):
        spectral_gate(short, sample_rate_hz=16000, noise_fraction=0)
    with pytest.raises(ConfigError, match="mono audio"):
        spectral_gate(np.zeros((2, 1000), dtype=np.float32), sample_rate_hz=16000)
