"""Regression: a clip of pure silence got an emotion (``sad`` at 0.72 with the CNN).

A clip with no audible sound (peak under -60 dBFS) is answered ``unknown``;
quiet but audible speech keeps its label.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import emovox
from emovox.inference.predictor import SILENCE_PEAK

SR = 16000


@pytest.fixture(scope="module")
def cnn():
    return emovox.load_model("cnn", num_threads=1)


def _voice(seconds: float, *, peak: float) -> np.ndarray:
    """A vowel-like harmonic tone with a pitch contour: audible, speech-shaped."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2)
    return (peak * y / np.max(np.abs(y))).astype(np.float32)


@pytest.mark.parametrize("signal", [np.zeros(SR, np.float32), np.full(SR, 1e-4, np.float32),
                                    np.random.default_rng(0).normal(0, 1e-4, 2 * SR).astype(np.float32)],
                         ids=["digital-zero", "tiny-dc", "noise-floor"])
def test_pure_silence_is_unknown(cnn, signal):
    p = cnn.predict(signal)
    assert p.label == "unknown"
    assert abs(sum(p.scores.values()) - 1.0) < 1e-4  # the scores are still reported


def test_only_silence_is_forced_to_unknown():
    # With the rejection threshold at 0 every audible clip gets a class; silence still does not.
    never_reject = emovox.load_model("cnn", num_threads=1, min_confidence=0)
    quiet = _voice(2.0, peak=30 * SILENCE_PEAK)  # about -30 dBFS: quiet, audible
    assert never_reject.predict(quiet).label != "unknown"
    assert never_reject.predict(np.zeros(SR, np.float32)).label == "unknown"


def test_silent_file_through_the_cli_is_unknown(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(SR, np.float32), SR)
    out = subprocess.run([sys.executable, "-m", "emovox.cli.main", "predict", "--fast", "--json", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["label"] == "unknown"
