"""Regression: a clip of pure silence got an emotion (``sad`` at 0.72 with the CNN).

Silence, whatever its form, holds no speech: the speech gate answers
``no_speech`` (never an emotion, no scores); quiet but audible real speech
keeps an emotion.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import emovox
from emovox.corpora import default_corpora_root

SR = 16000
RAVDESS_ANGRY = default_corpora_root() / "ravdess/Audio_Speech_Actors_01-24/Actor_01/03-01-05-02-01-01-01.flac"


@pytest.fixture(scope="module")
def cnn():
    return emovox.load_model("cnn", num_threads=1)


@pytest.mark.parametrize(
    "signal",
    [
        np.zeros(SR, np.float32),
        np.full(SR, 1e-4, np.float32),
        np.random.default_rng(0).normal(0, 1e-4, 2 * SR).astype(np.float32),
    ],
    ids=["digital-zero", "tiny-dc", "noise-floor"],
)
def test_pure_silence_is_no_speech(cnn, signal):
    p = cnn.predict(signal, sample_rate=SR)
    assert p.label == "no_speech" and p.reason == "no_speech"
    assert p.scores == {} and p.confidence == 0.0 and p.speech_s == 0.0
    assert "low_level" in p.flags


@pytest.mark.corpora
@pytest.mark.skipif(not RAVDESS_ANGRY.is_file(), reason="corpora not available")
def test_quiet_real_speech_keeps_an_emotion():
    never_reject = emovox.load_model("cnn", num_threads=1, min_confidence=0)
    y, sr = sf.read(RAVDESS_ANGRY, dtype="float32")
    quiet = y / np.max(np.abs(y)) * 10 ** (-30 / 20)  # peak -30 dBFS: quiet, audible
    p = never_reject.predict(quiet, sample_rate=sr)
    assert p.is_emotion and p.speech_s > 0.5
    assert never_reject.predict(np.zeros(SR, np.float32), sample_rate=SR).label == "no_speech"


def test_silent_file_through_the_cli_is_no_speech(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(SR, np.float32), SR)
    out = subprocess.run(
        [sys.executable, "-m", "emovox.cli.main", "predict", "--fast", "--json", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)[0]
    assert row["label"] == "no_speech" and row["reason"] == "no_speech" and row["speech_s"] == 0.0
