"""Hypothesis properties of the audio layer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emovox.audio import decode_audio, load_audio, resample
from emovox.errors import AudioError, TooShortError
from emovox.testing import encode_audio

RATES = st.integers(min_value=8000, max_value=96000)
MAGICS = st.sampled_from(
    [
        b"",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
        b"fLaC",
        b"OggS\x00\x02",
        b"ID3\x04\x00",
        b"\xff\xfb\x90\x64",
        b"\xff\xf1\x50\x80",
        b"\x1aE\xdf\xa3",
        b"\x00\x00\x00\x20ftypM4A ",
        b"FORM\x00\x00\x00\x00AIFF",
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    orig_hz=RATES,
    target_hz=RATES,
    n=st.integers(min_value=1, max_value=20000),
    channels=st.integers(min_value=1, max_value=6),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_load_audio_output_contract(orig_hz, target_hz, n, channels, seed):
    y = np.random.default_rng(seed).uniform(-1, 1, size=(channels, n)).astype(np.float32)
    data = encode_audio(y, sample_rate_hz=orig_hz, format="wav-float32")
    if round(n * target_hz / orig_hz) == 0:
        with pytest.raises(TooShortError, match="none left at"):
            load_audio(data, sample_rate_hz=target_hz, min_duration_s=0)
        return
    out = load_audio(data, sample_rate_hz=target_hz, min_duration_s=0)
    assert out.dtype == np.float32 and out.ndim == 1
    assert np.isfinite(out).all()
    assert abs(out.size - n * target_hz / orig_hz) <= 1


@settings(max_examples=40, deadline=None)
@given(
    orig_hz=RATES,
    target_hz=RATES,
    n=st.integers(min_value=0, max_value=5000),
    channels=st.integers(min_value=1, max_value=6),
)
def test_resample_shape_contract(orig_hz, target_hz, n, channels):
    y = np.random.default_rng(n).standard_normal((channels, n)).astype(np.float32)
    out = resample(y, orig_hz=orig_hz, target_hz=target_hz)
    assert out.dtype == np.float32 and out.shape[0] == channels
    assert abs(out.shape[1] - n * target_hz / orig_hz) <= 1
    assert np.isfinite(out).all()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(magic=MAGICS, body=st.binary(min_size=0, max_size=3000))
def test_random_bytes_raise_only_audio_errors(magic, body):
    try:
        y, sr = decode_audio(magic + body)
    except AudioError:
        return
    # Random bytes that happen to decode must still honour the contract.
    assert y.dtype == np.float32 and y.ndim == 2 and sr > 0 and np.isfinite(y).all()


@settings(max_examples=60, deadline=None)
@given(data=st.data(), fmt=st.sampled_from(["wav-pcm16", "flac", "ogg-vorbis", "mp3"]))
def test_corrupted_real_files_raise_only_audio_errors(data, fmt):
    clean = _ENCODED[fmt]
    cut = data.draw(st.integers(min_value=0, max_value=len(clean)))
    flips = data.draw(st.lists(st.integers(min_value=0, max_value=len(clean) - 1), max_size=8))
    corrupted = bytearray(clean[:cut] if cut else clean)
    for i in flips:
        if i < len(corrupted):
            corrupted[i] ^= 0xFF
    try:
        load_audio(bytes(corrupted), min_duration_s=0)
    except AudioError:
        pass


_ENCODED = {
    fmt: encode_audio(
        np.sin(np.linspace(0, 200 * np.pi, 8000)).astype(np.float32) * 0.5, sample_rate_hz=16000, format=fmt
    )
    for fmt in ["wav-pcm16", "flac", "ogg-vorbis", "mp3"]
}
