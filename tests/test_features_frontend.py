"""Batched log-mel / MFCC front ends (torch and NumPy) against librosa."""

from __future__ import annotations

import glob
import io
import os
import warnings

import librosa
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emovox.errors import ConfigError, FeatureError
from emovox.features import LogMelConfig, LogMelFrontend, MfccFrontend
from emovox.features.numpy_frontend import log_mel_batch, mfcc_batch

torch.set_num_threads(1)

# Measured on librosa 0.11 / torch 2.13 CPU (float32): max |dB difference|
# 5e-5 dB (conv) and 2e-4 dB (torch.stft) on RAVDESS; up to 2e-3 dB on a
# synthetic chirp in bins ~78 dB below the peak (float32 rounding of the DFT
# sum); MFCC relative error 6e-7.
DB_TOL = 5e-3  # dB, absolute, anywhere in the top_db=80 dB range
DB_TOL_TOP60 = 1e-3  # dB, absolute, for bins within 60 dB of the clip's peak
MFCC_REL_TOL = 1e-4  # max |diff| / max |librosa MFCC|


def assert_db_close(out: np.ndarray, ref: np.ndarray) -> None:
    """Front end dB values agree with librosa's within the stated tolerances."""
    assert out.shape == ref.shape
    err = np.abs(out - ref)
    assert err.max() < DB_TOL, err.max()
    top = ref >= ref.max(axis=(-2, -1), keepdims=True) - 60.0
    assert err[top].max() < DB_TOL_TOP60, err[top].max()


RAVDESS_DIR = os.path.join(
    os.environ.get("EMOVOX_CORPORA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpora")),
    "ravdess",
    "Audio_Speech_Actors_01-24",
    "Actor_01",
)


def _ravdess_clip() -> tuple[np.ndarray, int]:
    import soundfile as sf

    files = sorted(glob.glob(os.path.join(RAVDESS_DIR, "*.flac")))
    if not files:
        pytest.skip(f"RAVDESS not found under {RAVDESS_DIR}")
    y, sr = sf.read(files[5], dtype="float32", always_2d=True)
    return y.mean(axis=1), sr


def _synthetic(kind: str, sr: int = 16000, n: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(n) / sr
    if kind == "noise":
        return (0.1 * rng.standard_normal(n)).astype(np.float32)
    if kind == "chirp":
        return (0.5 * np.sin(2 * np.pi * (100 * t + 3000 * t**2))).astype(np.float32)
    if kind == "sine":
        return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    if kind == "silence":
        return np.zeros(n, dtype=np.float32)
    raise ValueError(kind)


def _librosa_db(y, sr, *, n_fft=512, hop_length=160, n_mels=64, pad_mode="constant"):
    s = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, pad_mode=pad_mode)
    return librosa.power_to_db(s)


@pytest.mark.parametrize("stft", ["conv", "fft"])
@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_logmel_matches_librosa_on_ravdess(stft, pad_mode):
    y, sr = _ravdess_clip()
    fe = LogMelFrontend(sr, n_fft=512, hop_length=160, n_mels=64, pad_mode=pad_mode, stft=stft)
    with torch.inference_mode():
        out = fe(torch.from_numpy(y)).numpy()
    ref = _librosa_db(y, sr, pad_mode=pad_mode)
    assert out.shape == ref.shape == (64, 1 + len(y) // 160)
    assert out.dtype == np.float32
    assert_db_close(out, ref)


@pytest.mark.parametrize("kind", ["noise", "chirp", "sine", "silence"])
@pytest.mark.parametrize("stft", ["conv", "fft"])
def test_logmel_and_mfcc_match_librosa_on_synthetic(kind, stft):
    y = _synthetic(kind, sr=22050, n=11025)
    kw = {"n_fft": 1024, "hop_length": 256, "n_mels": 80, "f_min_hz": 50.0, "f_max_hz": 8000.0}
    fe = LogMelFrontend(22050, stft=stft, **kw)
    ref = librosa.power_to_db(
        librosa.feature.melspectrogram(y=y, sr=22050, n_fft=1024, hop_length=256, n_mels=80, fmin=50.0, fmax=8000.0)
    )
    with torch.inference_mode():
        out = fe(torch.from_numpy(y)[None])[0].numpy()
        mf = MfccFrontend(22050, n_mfcc=20, stft=stft, **kw)(torch.from_numpy(y)[None])[0].numpy()
    assert_db_close(out, ref)
    mref = librosa.feature.mfcc(y=y, sr=22050, n_mfcc=20, n_fft=1024, hop_length=256, n_mels=80, fmin=50.0, fmax=8000.0)
    assert mf.shape == mref.shape == (20, 1 + 11025 // 256)
    assert np.abs(mf - mref).max() / np.abs(mref).max() < MFCC_REL_TOL


def test_mfcc_matches_librosa_on_ravdess():
    y, sr = _ravdess_clip()
    with torch.inference_mode():
        out = MfccFrontend(sr, n_mfcc=40)(torch.from_numpy(y)).numpy()
    ref = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40, n_fft=512, hop_length=160, n_mels=64)
    assert np.abs(out - ref).max() / np.abs(ref).max() < MFCC_REL_TOL


def test_natural_log_mode():
    y = _synthetic("noise")
    with torch.inference_mode():
        out = LogMelFrontend(16000, log="log")(torch.from_numpy(y)).numpy()
    s = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, hop_length=160, n_mels=64)
    np.testing.assert_allclose(out, np.log(np.maximum(s, 1e-10)), atol=1e-3)


def test_batch_equals_one_by_one_and_top_db_is_per_clip():
    clips = np.stack([_synthetic("sine"), 0.001 * _synthetic("noise"), _synthetic("silence")])
    fe = LogMelFrontend(16000)
    with torch.inference_mode():
        batched = fe(torch.from_numpy(clips)).numpy()
        single = np.stack([fe(torch.from_numpy(c)).numpy() for c in clips])
    assert batched.shape == (3, 64, 101)
    np.testing.assert_allclose(batched, single, atol=DB_TOL)


def test_conv_and_fft_agree_and_buffers_in_state_dict():
    y = torch.from_numpy(np.stack([_synthetic("chirp"), _synthetic("noise")]))
    conv, fft = LogMelFrontend(16000, stft="conv"), LogMelFrontend(16000, stft="fft")
    with torch.inference_mode():
        assert (conv(y) - fft(y)).abs().max() < DB_TOL
    assert {"dft_basis", "window", "mel_fb"} <= set(conv.state_dict())
    mf = MfccFrontend(16000, n_mfcc=13, n_mels=40, stft="conv")
    rebuilt = MfccFrontend(**mf.config())  # config() holds every constructor argument
    assert rebuilt.config() == mf.config() and rebuilt.config()["n_mfcc"] == 13
    assert LogMelFrontend(**conv.config()).config() == conv.config()


def test_numpy_frontend_matches_librosa():
    y, sr = _ravdess_clip()
    ref = _librosa_db(y, sr)
    assert_db_close(log_mel_batch(y, sample_rate_hz=sr), ref)
    mref = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40, n_fft=512, hop_length=160, n_mels=64)
    assert np.abs(mfcc_batch(y, sample_rate_hz=sr) - mref).max() / np.abs(mref).max() < MFCC_REL_TOL
    batch = np.stack([y[:16000], y[16000:32000]])
    assert log_mel_batch(batch, sample_rate_hz=sr).shape == (2, 64, 101)


@pytest.mark.parametrize(
    "sr,n_fft,n_mels,fmin,fmax",
    [
        (16000, 512, 64, 0.0, None),
        (16000, 400, 64, 20.0, 8000.0),
        (22050, 2048, 128, 0.0, None),
        (8000, 256, 40, 50.0, 3800.0),
        (44100, 1024, 80, 0.0, 7000.0),
        (16000, 256, 128, 0.0, None),
    ],
)
def test_mel_filterbank_equals_librosa_without_importing_it(sr, n_fft, n_mels, fmin, fmax):
    cfg = LogMelConfig(sample_rate_hz=sr, n_fft=n_fft, n_mels=n_mels, f_min_hz=fmin, f_max_hz=fmax)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # librosa warns about empty filters (last case)
        ref = librosa.filters.mel(
            sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney", dtype=np.float64
        )
    got = cfg.mel_filterbank()
    assert got.shape == ref.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15)


def test_building_a_front_end_does_not_import_scipy_signal():
    import subprocess
    import sys

    code = (
        "import sys; from emovox.features.frontend import MfccFrontend; MfccFrontend(16000); "
        "print('scipy.signal' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_config_round_trip():
    cfg = LogMelConfig(sample_rate_hz=8000, n_fft=256, hop_length=80, win_length=200, n_mels=40, f_max_hz=3800.0)
    assert LogMelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown log-mel setting"):
        LogMelConfig.from_dict({**cfg.to_dict(), "hop_s": 0.01})


def test_win_length_shorter_than_n_fft_matches_librosa():
    y = _synthetic("chirp")
    with torch.inference_mode():
        out = LogMelFrontend(16000, n_fft=512, win_length=400, hop_length=160)(torch.from_numpy(y)).numpy()
    ref = librosa.power_to_db(
        librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=64)
    )
    assert_db_close(out, ref)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_fft": 0}, r"n_fft=0 is not a positive integer"),
        ({"hop_length": 1.5}, r"hop_length=1.5 is not a positive integer"),
        ({"win_length": 1024}, r"win_length=1024 must be an integer in 1..n_fft=512"),
        ({"f_max_hz": 9000.0}, r"f_max_hz <= sample_rate_hz / 2 = 8000"),
        ({"log": "log10"}, r"log='log10' is not one of"),
        ({"pad_mode": "edge"}, r"pad_mode='edge' is not one of"),
        ({"stft": "fftw"}, r"stft='fftw' is not one of"),
    ],
)
def test_bad_settings_raise_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        LogMelFrontend(16000, **kwargs)


def test_bad_inputs_raise_feature_error():
    fe = LogMelFrontend(16000, pad_mode="reflect")
    with pytest.raises(FeatureError, match=r"needs at least 257 .*pad_mode='reflect'"):
        fe(torch.zeros(1, 100))
    with pytest.raises(FeatureError, match=r"shape \(batch, n\) or \(n,\), got shape \(1, 1, 400\)"):
        fe(torch.zeros(1, 1, 400))
    with pytest.raises(FeatureError, match=r"dtype torch.int16"):
        fe(torch.zeros(1, 400, dtype=torch.int16))
    with pytest.raises(FeatureError, match=r"torch.Tensor"):
        fe(np.zeros(400, dtype=np.float32))
    with pytest.raises(FeatureError, match=r"empty batch"):
        fe(torch.zeros(0, 400))
    with pytest.raises(ConfigError, match=r"needs log='db'"):
        MfccFrontend(16000, log="log")
    with pytest.raises(ConfigError, match=r"n_mfcc=80 must be an integer in 1..n_mels=64"):
        MfccFrontend(16000, n_mfcc=80)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample_rate_hz=st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000]),
    n=st.integers(min_value=0, max_value=6000),
    batch=st.integers(min_value=1, max_value=4),
    pad_mode=st.sampled_from(["constant", "reflect"]),
    seed=st.integers(0, 2**16),
)
def test_frontend_property_shapes_finite_or_clear_error(sample_rate_hz, n, batch, pad_mode, seed):
    fe = LogMelFrontend(sample_rate_hz, n_fft=512, hop_length=128, n_mels=40, pad_mode=pad_mode)
    y = np.random.default_rng(seed).uniform(-1, 1, size=(batch, n)).astype(np.float32)
    if n < fe.cfg.min_samples:
        with pytest.raises(FeatureError, match="needs at least"):
            fe(torch.from_numpy(y))
        return
    with torch.inference_mode():
        out = fe(torch.from_numpy(y)).numpy()
    assert out.shape == (batch, 40, fe.cfg.n_frames(n))
    assert out.dtype == np.float32 and np.isfinite(out).all()
    if n >= 600 and pad_mode == "constant":  # one clip against librosa
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # empty mel filters at low rates
            ref = _librosa_db(y[0], sample_rate_hz, hop_length=128, n_mels=40)
        assert_db_close(out[0], ref)


def test_conv_frontend_exports_to_onnx():
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    fe = LogMelFrontend(16000, stft="conv").eval()
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            fe,
            (torch.zeros(2, 16000),),
            f,
            input_names=["y"],
            output_names=["logmel"],
            dynamic_axes={"y": {0: "batch", 1: "n"}},
            dynamo=False,
            opset_version=17,
        )
    sess = ort.InferenceSession(f.getvalue())
    y = torch.from_numpy(np.stack([_synthetic("chirp", n=24000)] * 3))
    out = sess.run(None, {"y": y.numpy()})[0]
    with torch.inference_mode():
        assert np.abs(out - fe(y).numpy()).max() < DB_TOL
