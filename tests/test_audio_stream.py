"""stream_audio: incremental decoding equals whole-file loading."""

from __future__ import annotations

import io

import numpy as np
import pytest

from emovox.audio import load_audio, stream_audio
from emovox.testing import encode_audio, speech_like, write_audio

LONG_S = 12.0


@pytest.fixture(scope="module")
def long_signal() -> np.ndarray:
    # 12 s at 44.1 kHz stereo: several 64k-frame soundfile reads and many blocks.
    left = speech_like(LONG_S, sample_rate_hz=44100, seed=0)
    right = speech_like(LONG_S, sample_rate_hz=44100, seed=1, amplitude=0.3)
    return np.stack([left, right])


@pytest.mark.parametrize("fmt", ["flac", "wav-pcm16"])
def test_stream_equals_load_for_soundfile_formats(tmp_path, long_signal, fmt):
    path = write_audio(tmp_path / f"long.{fmt.split('-')[0]}", long_signal, sample_rate_hz=44100, format=fmt)
    whole = load_audio(path, sample_rate_hz=16000)
    blocks = list(stream_audio(path, sample_rate_hz=16000, block_s=3.0))
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    assert [b.size for b in blocks[:-1]] == [48000] * (len(blocks) - 1)
    assert 0 < blocks[-1].size <= 48000
    streamed = np.concatenate(blocks)
    assert streamed.size == whole.size == round(LONG_S * 16000)
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


@pytest.mark.parametrize("fmt", ["webm-opus", "m4a-aac", "mp3"])
def test_stream_equals_load_for_pyav_and_lossy_formats(long_signal, fmt):
    data = encode_audio(long_signal[:, : 44100 * 6], sample_rate_hz=44100, format=fmt)
    whole = load_audio(data, sample_rate_hz=16000)
    blocks = list(stream_audio(io.BytesIO(data), sample_rate_hz=16000, block_s=1.0))
    assert max(b.size for b in blocks) == 16000
    streamed = np.concatenate(blocks)
    assert abs(streamed.size - whole.size) <= 2
    n = min(streamed.size, whole.size)
    np.testing.assert_allclose(streamed[:n], whole[:n], atol=1e-4)


def test_stream_without_resampling_is_exact():
    y = speech_like(2.5, sample_rate_hz=16000)
    data = encode_audio(y, sample_rate_hz=16000, format="wav-float32")
    blocks = list(stream_audio(data, sample_rate_hz=16000, block_s=1.0))
    assert [b.size for b in blocks] == [16000, 16000, 8000]
    np.testing.assert_array_equal(np.concatenate(blocks), y)


def test_stream_block_larger_than_file():
    y = speech_like(0.3, sample_rate_hz=16000)
    data = encode_audio(y, sample_rate_hz=16000, format="flac")
    blocks = list(stream_audio(data, sample_rate_hz=8000))
    assert len(blocks) == 1 and blocks[0].size == 2400


def test_stream_is_lazy(tmp_path, long_signal):
    path = write_audio(tmp_path / "long.flac", long_signal, sample_rate_hz=44100, format="flac")
    stream = stream_audio(path, sample_rate_hz=16000, block_s=1.0)
    first = next(stream)
    assert first.size == 16000
    stream.close()  # abandoning a stream early releases the file
