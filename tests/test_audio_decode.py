"""Decoding every format, every input kind, and the real corpus."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from emovox.audio import audio_duration_s, decode_audio, load_audio, sniff_container, stream_audio
from emovox.testing import (
    ALL_FORMATS,
    LOSSY_FORMATS,
    encode_audio,
    sine,
    speech_like,
    write_all_formats,
    write_tone,
)

CORPUS_ACTOR = Path(__file__).resolve().parents[1].parent / "shared/corpora/ravdess/Audio_Speech_Actors_01-24/Actor_01"
STEREO_CLIP = CORPUS_ACTOR / "03-01-02-01-01-02-01.flac"  # one of RAVDESS's 5 stereo files

SR = 22050
DURATION_S = 0.5
TONE = sine(440.0, duration_s=DURATION_S, sample_rate_hz=SR, amplitude=0.5, channels=2)


@pytest.fixture(scope="module")
def all_files(tmp_path_factory) -> dict[str, Path]:
    return write_all_formats(tmp_path_factory.mktemp("formats"), TONE, sample_rate_hz=SR)


def _dominant_hz(y: np.ndarray, sample_rate_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1 / sample_rate_hz)[np.argmax(spectrum)])


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_decode_every_format_keeps_length_rate_and_level(all_files, fmt):
    y, sr = decode_audio(all_files[fmt])
    assert y.dtype == np.float32 and y.ndim == 2 and y.shape[0] == 2
    duration_s = y.shape[1] / sr
    if fmt in LOSSY_FORMATS:
        # Encoders may pad (AAC priming adds 1024+ samples); never lose audio.
        assert DURATION_S - 0.01 <= duration_s <= DURATION_S + 0.1
        assert _rms(y[0]) == pytest.approx(_rms(TONE[0]), rel=0.15)
        assert _rms(y[1]) == pytest.approx(_rms(TONE[1]), rel=0.15)
        assert _dominant_hz(y[0], sr) == pytest.approx(440.0, abs=5.0)
    else:
        assert sr == SR
        assert y.shape[1] == TONE.shape[1]
        tol = 1 / 64 if fmt == "wav-pcm8" else 1e-3
        np.testing.assert_allclose(y, TONE, atol=tol)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_load_audio_every_format_to_16k_mono(all_files, fmt):
    y = load_audio(all_files[fmt], sample_rate_hz=16000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert 0.49 * 16000 <= y.size <= 0.6 * 16000
    # Mean of the two channels (0.5 and 0.25 in phase) is a 0.375 tone.
    assert np.abs(y).max() == pytest.approx(0.375, rel=0.15)
    assert _dominant_hz(y, 16000) == pytest.approx(440.0, abs=5.0)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_duration_from_header(all_files, fmt):
    expected = DURATION_S
    got = audio_duration_s(all_files[fmt])
    if fmt in LOSSY_FORMATS:
        assert expected - 0.01 <= got <= expected + 0.1
    else:
        assert got == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("fmt", ["wav-pcm16", "flac", "mp3", "webm-opus", "m4a-aac"])
def test_bytes_and_file_objects_decode_like_paths(all_files, fmt):
    path = all_files[fmt]
    from_path = load_audio(path)
    data = path.read_bytes()
    np.testing.assert_array_equal(load_audio(data), from_path)
    np.testing.assert_array_equal(load_audio(bytearray(data)), from_path)
    np.testing.assert_array_equal(load_audio(io.BytesIO(data)), from_path)
    with open(path, "rb") as fh:
        np.testing.assert_array_equal(load_audio(fh), from_path)
        assert not fh.closed


def test_non_seekable_file_object_is_read_whole(all_files):
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes):
            self._buf = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, b) -> int:
            chunk = self._buf.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    data = all_files["flac"].read_bytes()
    np.testing.assert_array_equal(load_audio(io.BufferedReader(Pipe(data))), load_audio(data))


def test_str_path_and_pathlike_are_equivalent(all_files):
    path = all_files["wav-pcm16"]
    np.testing.assert_array_equal(load_audio(str(path)), load_audio(path))


def test_stereo_downmix_is_the_channel_mean():
    y = np.stack([np.full(1600, 0.6, dtype=np.float32), np.full(1600, -0.2, dtype=np.float32)])
    data = encode_audio(y, sample_rate_hz=16000, format="wav-float32")
    out = load_audio(data, sample_rate_hz=16000)
    np.testing.assert_allclose(out, 0.2, atol=1e-6)


def test_many_channels_and_rates_via_write_tone(tmp_path):
    path = write_tone(tmp_path / "six.wav", sample_rate_hz=48000, channels=6, duration_s=0.3)
    y, sr = decode_audio(path)
    assert (y.shape, sr) == ((6, 14400), 48000)
    out = load_audio(path, sample_rate_hz=8000)
    assert out.shape == (2400,)


def test_speech_like_is_deterministic_and_bounded():
    a = speech_like(1.0, sample_rate_hz=16000, seed=3)
    b = speech_like(1.0, sample_rate_hz=16000, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (16000,)
    assert np.abs(a).max() == pytest.approx(0.5)
    assert not np.array_equal(a, speech_like(1.0, sample_rate_hz=16000, seed=4))


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "wav"),
        (b"fLaC\x00\x00\x00\x22", "flac"),
        (b"OggS\x00\x02", "ogg"),
        (b"ID3\x04\x00", "mp3"),
        (b"\xff\xfb\x90\x64", "mp3"),
        (b"\xff\xf1\x50\x80", "adts"),
        (b"\x1aE\xdf\xa3\x9fB\x86", "matroska"),
        (b"\x00\x00\x00\x20ftypM4A ", "mp4"),
        (b"hello, world", None),
        (b"", None),
    ],
)
def test_sniff_container(head, expected):
    assert sniff_container(head) == expected


corpus = pytest.mark.skipif(not CORPUS_ACTOR.is_dir(), reason="RAVDESS corpus not available")


@pytest.mark.corpora
@corpus
def test_real_ravdess_clip_loads():
    path = sorted(CORPUS_ACTOR.glob("*.flac"))[0]
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert 2.5 < y.size / 16000 < 6.0
    assert 0.01 < np.abs(y).max() <= 1.0
    assert audio_duration_s(path) == pytest.approx(y.size / 16000, abs=1e-3)
    trimmed = load_audio(path, trim_silence=True)
    assert trimmed.size < y.size  # RAVDESS clips start with ~1 s of room tone


@pytest.mark.corpora
@pytest.mark.skipif(not STEREO_CLIP.is_file(), reason="RAVDESS stereo clip not available")
def test_real_ravdess_stereo_clip_is_downmixed():
    y, sr = decode_audio(STEREO_CLIP)
    assert y.shape[0] == 2 and sr == 16000
    mono = load_audio(STEREO_CLIP, sample_rate_hz=16000)
    np.testing.assert_allclose(mono, y.mean(axis=0), atol=1e-7)
    assert load_audio(STEREO_CLIP, sample_rate_hz=8000).size == pytest.approx(y.shape[1] / 2, abs=1)


def test_vbr_mp3_without_xing_tag_is_decoded_completely():
    """Regression: libsndfile stops at its length estimate for untagged VBR MP3."""
    import av

    y = speech_like(5.0, sample_rate_hz=44100)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp3", options={"write_xing": "0"}) as container:
        stream = container.add_stream("libmp3lame", rate=44100)
        stream.layout = "mono"
        stream.codec_context.qscale = 9  # VBR: the first frame's bitrate misleads estimates
        frame = av.AudioFrame.from_ndarray(y[None], format="flt", layout="mono")
        frame.sample_rate = 44100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    data = buf.getvalue()
    assert b"Xing" not in data[:4096] and b"Info" not in data[:4096]
    decoded, sr = decode_audio(data)
    assert sr == 44100 and 5.0 <= decoded.shape[1] / sr <= 5.1
    assert 5.0 <= audio_duration_s(data) <= 5.1
    assert 5.0 * 16000 <= sum(b.size for b in stream_audio(data, block_s=1.0)) <= 5.1 * 16000
