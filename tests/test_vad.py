"""Voice activity detection (emovox.audio.vad): Silero via onnxruntime, WebRTC fallback."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import lfilter

from emovox.audio.vad import (
    Segmenter,
    SileroVAD,
    get_vad,
    iter_speech_segments,
    silero_model_path,
    speech_segments,
)
from emovox.errors import ConfigError

SR = 16000


def vowelish(dur_s: float, rng: np.random.Generator) -> np.ndarray:
    """A speech-like burst: glottal pulse train through three formants, 4 Hz syllables."""
    n = int(dur_s * SR)
    t = np.arange(n) / SR
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t) + 10 * rng.standard_normal()
    pulses = np.diff(np.floor(np.cumsum(f0) / SR), prepend=0) > 0
    y = pulses.astype(np.float64) + 0.02 * rng.standard_normal(n)
    for f, bw in ((700, 130), (1220, 70), (2600, 160)):
        r, th = np.exp(-np.pi * bw / SR), 2 * np.pi * f / SR
        y = lfilter([1 - r], [1, -2 * r * np.cos(th), r * r], y)
    y *= 0.3 + 0.7 * 0.5 * (1 - np.cos(2 * np.pi * 4 * t))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def bursts(seed: int = 0, n: int = 4):
    """Speech-like bursts separated by near-silence; returns (signal, true spans in s)."""
    rng = np.random.default_rng(seed)
    parts, spans, pos = [], [], 0
    for i in range(n):
        gap = (0.001 * rng.standard_normal(int(SR * (2 + 0.5 * i)))).astype(np.float32)
        burst = vowelish(1.5 + i, rng)
        parts += [gap, burst]
        spans.append(((pos + gap.size) / SR, (pos + gap.size + burst.size) / SR))
        pos += gap.size + burst.size
    parts.append(np.zeros(2 * SR, np.float32))
    return np.concatenate(parts), spans


def _matches(found, truth, tol_s=0.3):
    return len(found) == len(truth) and all(
        abs(a - ta) < tol_s and abs(b - tb) < tol_s for (a, b), (ta, tb) in zip(found, truth)
    )


def test_webrtc_finds_the_bursts():
    y, truth = bursts()
    assert _matches(speech_segments(y, vad="webrtc"), truth)


def test_silence_and_noise_have_no_speech():
    rng = np.random.default_rng(1)
    quiet = (0.001 * rng.standard_normal(5 * SR)).astype(np.float32)
    assert speech_segments(quiet, vad="webrtc") == []
    assert speech_segments(quiet, vad="silero") == []
    assert speech_segments(np.zeros(0, np.float32), vad="silero") == []


RAVDESS = sorted(
    glob.glob(
        os.path.join(
            os.environ.get("EMOVOX_CORPORA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpora")),
            "ravdess",
            "Audio_Speech_Actors_01-24",
            "Actor_01",
            "*.flac",
        )
    )
)


@pytest.mark.skipif(not RAVDESS, reason="RAVDESS corpus not available")
@pytest.mark.parametrize("vad", ["silero", "webrtc"])
def test_real_speech_is_found_between_silences(vad):
    import soundfile as sf

    parts, spans, pos = [], [], 0
    for f in RAVDESS[:3]:
        y, sr = sf.read(f, dtype="float32")
        assert sr == SR
        y = y if y.ndim == 1 else y.mean(axis=1)
        parts += [np.zeros(2 * SR, np.float32), y]
        spans.append(((pos + 2 * SR) / SR, (pos + 2 * SR + y.size) / SR))
        pos += 2 * SR + y.size
    found = speech_segments(np.concatenate(parts), vad=vad)
    assert len(found) == 3
    for (a, b), (ca, cb) in zip(found, spans):  # each segment lies inside its clip
        assert ca - 0.1 <= a < b <= cb + 0.1
        assert b - a > 0.8


@settings(max_examples=8, deadline=None)
@given(block_s=st.floats(0.05, 7.0))
def test_segments_do_not_depend_on_the_block_size(block_s):
    y, _ = bursts(seed=2, n=3)
    whole = speech_segments(y, vad="silero", block_s=60.0)
    assert speech_segments(y, vad="silero", block_s=block_s) == whole
    assert speech_segments(y, vad="webrtc", block_s=block_s) == speech_segments(y, vad="webrtc")


def test_segmenter_hysteresis_minimum_durations_and_max_speech():
    seg = Segmenter(
        frame_samples=160, sample_rate_hz=16000, min_speech_s=0.1, min_silence_s=0.05, pad_s=0.0, max_speech_s=1.0
    )
    probs = np.array(
        [0.0] * 10
        + [0.9] * 30
        + [0.4] * 3
        + [0.9] * 10
        + [0.1] * 10  # one turn
        + [0.9] * 5
        + [0.0] * 20  # 50 ms blip: too short, dropped
        + [0.9] * 150,
        np.float32,
    )  # 1.5 s turn: split at max_speech_s
    out = seg.push(probs) + seg.finish(probs.size * 160)
    assert out[0] == (10 * 160, 53 * 160)
    assert len(out) == 3
    assert out[1][0] == 88 * 160 and out[1][1] - out[1][0] <= 16000
    assert out[2][1] == probs.size * 160


def test_unknown_detector_and_wrong_rate_are_config_errors():
    with pytest.raises(ConfigError, match="vad='nope' is unknown"):
        get_vad("nope")
    with pytest.raises(ConfigError, match="16000 Hz"):
        list(iter_speech_segments([np.zeros(100, np.float32)], sample_rate_hz=8000))


def test_silero_runs_without_torch():
    assert silero_model_path() is not None
    code = (
        "import sys, numpy as np\n"
        "from emovox.audio.vad import SileroVAD\n"
        "p = SileroVAD().probabilities(np.zeros(16000, np.float32))\n"
        "assert p.shape == (31,), p.shape\n"
        "assert 'torch' not in sys.modules and 'silero_vad.utils_vad' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_silero_state_carries_across_calls():
    v = SileroVAD()
    y, _ = bursts(seed=3, n=1)
    whole = v.probabilities(y, final=True)
    v.reset()
    parts = np.concatenate([v.probabilities(y[:7000]), v.probabilities(y[7000:], final=True)])
    np.testing.assert_allclose(parts, whole, atol=1e-6)
