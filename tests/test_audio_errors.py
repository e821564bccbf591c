"""Every way audio input can be wrong ends in one specific emovox error."""

from __future__ import annotations

import io

import numpy as np
import pytest

from emovox.audio import (
    audio_duration_s,
    load_audio,
    resample,
    stream_audio,
    validate_signal,
)
from emovox.errors import (
    AudioError,
    ConfigError,
    EmptyAudioError,
    InvalidSamplesError,
    TooShortError,
    TruncatedAudioError,
    UnsupportedAudioError,
)
from emovox.testing import ALL_FORMATS, encode_audio, speech_like

SR = 16000
CLIP = speech_like(1.0, sample_rate_hz=SR)


@pytest.fixture(scope="module")
def encoded() -> dict[str, bytes]:
    return {fmt: encode_audio(CLIP, sample_rate_hz=SR, format=fmt) for fmt in ALL_FORMATS}


# --- missing, empty, not audio -------------------------------------------------


def test_missing_file_says_path_does_not_exist(tmp_path):
    missing = tmp_path / "nope.wav"
    with pytest.raises(AudioError, match=r"nope\.wav.*does not exist"):
        load_audio(missing)
    with pytest.raises(AudioError, match="does not exist"):
        audio_duration_s(str(missing))
    with pytest.raises(AudioError, match="does not exist"):
        next(stream_audio(missing))


def test_folder_is_not_a_file(tmp_path):
    with pytest.raises(AudioError, match="is a folder"):
        load_audio(tmp_path)


@pytest.mark.parametrize("source", [b"", bytearray(), io.BytesIO(b"")])
def test_empty_input(source):
    with pytest.raises(EmptyAudioError, match=r"empty|no bytes"):
        load_audio(source)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(EmptyAudioError, match=r"empty \(0 bytes\)"):
        load_audio(path)


@pytest.mark.parametrize("fmt", ["wav-pcm16", "wav-float32"])
def test_valid_file_without_samples_is_empty(fmt):
    data = encode_audio(np.zeros((1, 0), dtype=np.float32), sample_rate_hz=SR, format=fmt)
    with pytest.raises(EmptyAudioError, match="contains no samples"):
        load_audio(data)
    with pytest.raises(EmptyAudioError, match="contains no samples"):
        list(stream_audio(data))


@pytest.mark.parametrize(
    "data",
    [
        b"this is a text file, not a recording\n" * 40,
        bytes(range(256)) * 8,
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 500,
        b"\x00" * 4096,
    ],
)
def test_non_audio_bytes_are_unsupported(data, tmp_path):
    with pytest.raises(UnsupportedAudioError, match="^<bytes>: not an audio file or an unsupported format"):
        load_audio(data)
    path = tmp_path / "notes.wav"  # a misleading suffix changes nothing
    path.write_bytes(data)
    with pytest.raises(UnsupportedAudioError, match="pass WAV, FLAC"):
        load_audio(path)
    with pytest.raises(UnsupportedAudioError):
        list(stream_audio(path))
    with pytest.raises(UnsupportedAudioError):
        audio_duration_s(path)


@pytest.mark.parametrize("source", [123, 4.5, None, ["a.wav"], np.zeros(10)])
def test_wrong_source_type(source):
    with pytest.raises(AudioError, match="pass a path, bytes or a binary file object"):
        load_audio(source)


def test_text_mode_file_object(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("RIFF....")
    with open(path) as fh, pytest.raises(AudioError, match="text mode"):
        load_audio(fh)


# --- truncated and corrupt -----------------------------------------------------


def test_wav_cut_mid_header(encoded):
    data = encoded["wav-pcm16"]
    with pytest.raises(
        TruncatedAudioError, match=r"<bytes>: the file ends early: a truncated or damaged WAV file .*'data' chunk"
    ):
        load_audio(data[:22])
    with pytest.raises(TruncatedAudioError, match="truncated"):
        load_audio(data[:6])


@pytest.mark.parametrize("fmt", ["wav-pcm8", "wav-pcm16", "wav-pcm24", "wav-float32"])
def test_wav_cut_mid_data_is_not_silently_shortened(encoded, fmt):
    data = encoded[fmt]
    with pytest.raises(TruncatedAudioError, match=r"declares \d+ bytes of samples but only \d+ are present"):
        load_audio(data[: len(data) // 2])
    with pytest.raises(TruncatedAudioError):
        audio_duration_s(data[: len(data) // 2])
    with pytest.raises(TruncatedAudioError):
        list(stream_audio(data[: len(data) - 100]))


def test_wav_with_unknown_streaming_size_is_accepted(encoded):
    data = bytearray(encoded["wav-pcm16"])
    at = data.index(b"data")
    data[at + 4 : at + 8] = b"\xff\xff\xff\xff"  # what writers to pipes put there
    assert load_audio(bytes(data)).size == SR


@pytest.mark.parametrize("fmt", ["flac", "flac-24", "ogg-vorbis", "ogg-opus", "mp3", "webm-opus", "m4a-aac"])
@pytest.mark.parametrize("keep", [0.02, 0.5, 0.9])
def test_compressed_file_cut_short(encoded, fmt, keep):
    data = encoded[fmt]
    cut = data[: max(8, int(len(data) * keep))]
    with pytest.raises(
        TruncatedAudioError, match="the file ends early: a truncated or damaged .*; re-export or re-download"
    ):
        load_audio(cut)


def test_flac_with_bytes_chopped_off_the_end(encoded, tmp_path):
    path = tmp_path / "cut.flac"
    path.write_bytes(encoded["flac"][:-1000])
    with pytest.raises(TruncatedAudioError, match=r"cut\.flac: the file ends early: a truncated or damaged FLAC file"):
        load_audio(path)
    with pytest.raises(TruncatedAudioError):
        list(stream_audio(path, block_s=0.1))


def test_flac_with_garbage_in_the_middle(encoded):
    data = bytearray(encoded["flac"])
    mid = len(data) // 2
    data[mid : mid + 2000] = bytes(2000)
    with pytest.raises(TruncatedAudioError, match="FLAC"):
        load_audio(bytes(data))


# --- sample values and duration ------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_wav_with_nan_or_inf(bad):
    y = CLIP.copy()
    y[100] = bad
    data = encode_audio(y, sample_rate_hz=SR, format="wav-float32")
    with pytest.raises(InvalidSamplesError, match="1 NaN or infinite samples"):
        load_audio(data)
    with pytest.raises(InvalidSamplesError, match="NaN or infinite"):
        list(stream_audio(data))


def test_too_short_clip():
    data = encode_audio(CLIP[:400], sample_rate_hz=SR, format="wav-pcm16")  # 25 ms
    with pytest.raises(TooShortError, match=r"lasts 0\.025 s, shorter than the minimum 0\.05 s"):
        load_audio(data)
    assert load_audio(data, min_duration_s=0.02).size == 400


def test_silent_clip_trimmed_to_nothing_is_too_short():
    data = encode_audio(np.zeros(SR, dtype=np.float32), sample_rate_hz=SR, format="wav-pcm16")
    assert load_audio(data).size == SR
    with pytest.raises(TooShortError, match="after trimming silence"):
        load_audio(data, trim_silence=True)


# --- parameters ----------------------------------------------------------------


@pytest.mark.parametrize("rate", [0, -16000, float("nan"), float("inf"), "16k", True])
def test_bad_sample_rate_is_config_error(encoded, rate):
    with pytest.raises(ConfigError, match=r"sample_rate_hz must be a positive number"):
        load_audio(encoded["wav-pcm16"], sample_rate_hz=rate)
    with pytest.raises(ConfigError, match="sample_rate_hz"):
        next(stream_audio(encoded["wav-pcm16"], sample_rate_hz=rate))


def test_unknown_normalize_mode(encoded):
    with pytest.raises(ConfigError, match=r"normalize must be None, 'peak' or 'loudness', got 'rms'"):
        load_audio(encoded["wav-pcm16"], normalize="rms")


def test_negative_min_duration(encoded):
    with pytest.raises(ConfigError, match="min_duration_s must be a number >= 0"):
        load_audio(encoded["wav-pcm16"], min_duration_s=-1)


def test_bad_block_size(encoded):
    with pytest.raises(ConfigError, match="block_s must be a positive number, got 0"):
        next(stream_audio(encoded["wav-pcm16"], block_s=0))


def test_resample_bad_rates():
    with pytest.raises(ConfigError, match="orig_hz must be a positive number"):
        resample(CLIP, orig_hz=0, target_hz=16000)
    with pytest.raises(ConfigError, match="target_hz must be a positive number"):
        resample(CLIP, orig_hz=16000, target_hz=-1)


# --- the array gate --------------------------------------------------------------


def test_validate_signal_accepts_and_converts():
    out = validate_signal(CLIP.astype(np.float64), SR)
    assert out.dtype == np.float32
    assert validate_signal(CLIP, SR) is CLIP


@pytest.mark.parametrize(
    ("y", "error", "match"),
    [
        (np.zeros(0, dtype=np.float32), EmptyAudioError, "contains no samples"),
        (np.array([0.0, np.nan] * 1000, dtype=np.float32), InvalidSamplesError, "1000 NaN or infinite"),
        (np.zeros(100, dtype=np.float32), TooShortError, r"lasts 0\.006 s"),
        (np.zeros(16000, dtype=np.int16), ConfigError, "must be floating point.*int16"),
        (np.zeros((2, 2, 8000), dtype=np.float32), ConfigError, r"shape \(n,\) or \(channels, n\)"),
        (np.zeros((16000, 2), dtype=np.float32), ConfigError, r"pass \(channels, n\)"),
        ([0.0] * 16000, ConfigError, "must be a numpy array"),
    ],
)
def test_validate_signal_rejects(y, error, match):
    with pytest.raises(error, match=match):
        validate_signal(y, SR)


def test_validate_signal_bad_rate():
    with pytest.raises(ConfigError, match="sample_rate_hz must be a positive number, got 0"):
        validate_signal(CLIP, 0)
