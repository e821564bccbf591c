"""Band-limited mel products and :func:`emovox.features.batched.frontend_features`."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from emovox.errors import AudioError, ConfigError, FeatureError
from emovox.features import LogMelFrontend, MfccFrontend
from emovox.features.batched import frontend_features

torch.set_num_threads(1)


def _tone(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    f0 = rng.uniform(100, 3000)
    return (0.3 * np.sin(2 * np.pi * f0 * t * (1 + t)) + 0.01 * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"n_mels": 40, "n_fft": 256, "hop_length": 128},
        {"n_mels": 128, "n_fft": 2048, "hop_length": 512},
        {"n_mels": 80, "n_fft": 400, "f_min_hz": 50.0, "f_max_hz": 7000.0, "log": "log"},
        {"n_mels": 64, "n_fft": 1024, "sample_rate_hz": 22050, "pad_mode": "reflect"},
        {"n_mels": 64, "n_fft": 512, "win_length": 400},
    ],
)
def test_banded_fft_mel_equals_the_dense_product(kwargs):
    fe = LogMelFrontend(**kwargs)
    y = torch.from_numpy(np.stack([_tone(20000, 0), _tone(20000, 1)]))
    with torch.inference_mode():
        banded = fe.mel_power(y)
        dense = torch.matmul(fe.mel_fb, fe.power_spectrogram(y))
    assert banded.shape == dense.shape
    torch.testing.assert_close(banded, dense, rtol=1e-5, atol=1e-6 * float(dense.max()))
    assert not any(k.startswith("_mel_band") for k in fe.state_dict())  # derived, not saved


@pytest.mark.parametrize("batch,pad_mode", [(1, "constant"), (2, "constant"), (3, "reflect")])
def test_long_inputs_in_frame_blocks_equal_one_pass(batch, pad_mode, monkeypatch):
    import emovox.features.frontend as frontend

    fe = MfccFrontend(16000, n_mfcc=20, pad_mode=pad_mode)
    y = torch.from_numpy(np.stack([_tone(16000 * 7, 20 + i) for i in range(batch)]))
    with torch.inference_mode():
        blocked = fe(y)  # 701 frames: several blocks of FRAME_BLOCK // batch
        monkeypatch.setattr(frontend, "FRAME_BLOCK", 10**9)
        whole = fe(y)
    assert blocked.shape == whole.shape == (batch, 20, 701)
    torch.testing.assert_close(blocked, whole, rtol=1e-5, atol=1e-4)


def test_fft_path_keeps_gradients_to_the_waveform():
    fe = LogMelFrontend()
    y = torch.from_numpy(_tone(8000, 2)).unsqueeze(0).requires_grad_(True)
    fe.mel_power(y).sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


@pytest.fixture()
def audio_files(tmp_path):
    """Seven FLAC/WAV files of different lengths (0.3-2.1 s) and one stereo file."""
    paths = []
    for i, n in enumerate([4800, 33600, 16000, 9000, 24000, 5000, 12345]):
        path = tmp_path / f"clip{i}.{'flac' if i % 2 else 'wav'}"
        sf.write(path, _tone(n, 10 + i), 16000)
        paths.append(path)
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([_tone(7000, 3), _tone(7000, 4)], axis=1), 16000)
    return paths + [stereo]


@pytest.mark.parametrize("workers,batch_size", [(1, 1), (1, 3), (2, 2), (2, 8)])
def test_batched_features_equal_one_clip_at_a_time(audio_files, workers, batch_size):
    from emovox.audio import load_audio

    fe = MfccFrontend(16000, n_mfcc=20)
    out = list(frontend_features(audio_files, fe, batch_size=batch_size, workers=workers))
    assert len(out) == len(audio_files)
    for path, got in zip(audio_files, out):
        y = load_audio(path, sample_rate_hz=16000)
        with torch.inference_mode():
            want = fe(torch.from_numpy(y)).numpy()
        assert got.dtype == np.float32 and got.shape == want.shape == (20, 1 + len(y) // 160)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_worker_tasks_of_several_batches_keep_the_input_order(audio_files, monkeypatch):
    import emovox.features.batched as batched

    monkeypatch.setattr(batched, "TASK_CLIPS", 3)  # 8 files -> tasks of 3, 3 and 2 clips over 2 workers
    fe = MfccFrontend(16000, n_mfcc=13)
    together = list(frontend_features(audio_files, fe, batch_size=1, workers=2))
    alone = list(frontend_features(audio_files, fe, batch_size=1, workers=1))
    assert [x.shape for x in together] == [x.shape for x in alone]
    for a, b in zip(together, alone):
        np.testing.assert_array_equal(a, b)


def test_in_process_read_ahead_keeps_order_errors_in_place_and_stops_its_thread(audio_files, tmp_path):
    import threading

    fe = MfccFrontend(16000, n_mfcc=13)
    missing = tmp_path / "gone.wav"
    got = []
    with pytest.raises(AudioError, match="gone.wav"):
        for x in frontend_features([*audio_files[:3], missing, *audio_files[3:]], fe, workers=1):
            got.append(x)
    assert len(got) == 3  # every file before the bad one, in order, then its error
    gen = frontend_features(audio_files, fe, workers=1)
    next(gen)
    gen.close()  # stopping early cancels the queued decodes and joins the thread
    assert not [t for t in threading.enumerate() if t.name.startswith("emovox-decode")]


def test_pad_batch_views_one_clip_and_zero_pads_several():
    from emovox.features.batched import pad_batch

    a, b = _tone(100, 0), _tone(60, 1)
    one = pad_batch([a])
    assert one.shape == (1, 100) and np.shares_memory(one, a)
    two = pad_batch([a, b])
    assert two.shape == (2, 100) and two.dtype == np.float32
    np.testing.assert_array_equal(two[1, :60], b)
    assert not two[1, 60:].any()
    as64 = pad_batch([a.astype(np.float64)])
    assert as64.dtype == np.float32 and not np.shares_memory(as64, a)


def test_reflect_padding_is_exact_too(audio_files):
    from emovox.audio import load_audio

    fe = LogMelFrontend(16000, pad_mode="reflect")
    out = list(frontend_features(audio_files[:3], fe, batch_size=4, workers=2))
    for path, got in zip(audio_files[:3], out):
        with torch.inference_mode():
            want = fe(torch.from_numpy(load_audio(path, sample_rate_hz=16000))).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_files_are_decoded_at_the_front_end_rate(tmp_path):
    path = tmp_path / "44k.wav"
    sf.write(path, np.tile(_tone(11025, 5), 4), 44100)  # 1 s at 44.1 kHz
    (got,) = frontend_features([path], LogMelFrontend(8000, n_fft=256, hop_length=80), workers=1)
    assert got.shape == (64, 101)  # 8000 samples at 8 kHz, hop 80


def test_bad_input_raises_clear_errors(audio_files, tmp_path):
    fe = LogMelFrontend()
    missing = tmp_path / "missing.wav"
    with pytest.raises(AudioError, match="missing.wav"):
        list(frontend_features([audio_files[0], missing], fe, workers=2))
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError, match="junk.wav"):
        list(frontend_features([junk], fe, workers=1))
    with pytest.raises(ConfigError, match="batch_size=0 must be a positive integer"):
        list(frontend_features(audio_files, fe, batch_size=0))
    with pytest.raises(ConfigError, match="workers=True must be a positive integer"):
        list(frontend_features(audio_files, fe, workers=True))
    with pytest.raises(FeatureError, match="Linear is not a LogMelFrontend or MfccFrontend"):
        list(frontend_features(audio_files, torch.nn.Linear(2, 2)))
