"""On-the-fly augmentation: replayability, validation, measured properties."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emovox.augment import (
    BackgroundNoise,
    Compose,
    FrequencyMask,
    Gain,
    GaussianNoise,
    MedianBalancer,
    Mixup,
    OneOf,
    PitchShift,
    TimeMask,
    TimeShift,
    TimeStretch,
    augmentation_from_config,
    colored_noise,
    load_noise_folder,
    median_balanced_indices,
    median_target,
    transform_from_dict,
)
from emovox.errors import ConfigError

SR = 16000


def sine(freq_hz: float, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def peak_hz(y: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1 / sr)[np.argmax(spec)])


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2))


WAVE_TRANSFORMS = [
    GaussianNoise(snr_db=(5, 20)),
    BackgroundNoise(snr_db=(0, 10)),
    PitchShift(semitones=(-3, 3)),
    PitchShift(semitones=(-3, 3), method="librosa"),
    TimeStretch(rate=(0.8, 1.2)),
    TimeShift(shift_s=(-0.2, 0.2), mode="zero"),
    Gain(gain_db=(-6, 6)),
    Compose([(GaussianNoise(), 0.5), (Gain(), 0.5), TimeShift()]),
    OneOf((GaussianNoise(), BackgroundNoise()), p=0.4),
]


# ----------------------------------------------------------------------------- replay + serialisation
@pytest.mark.parametrize("t", WAVE_TRANSFORMS, ids=lambda t: t.name)
def test_waveform_transforms_replay_with_same_generator_state(t):
    y = sine(220) + 0.01 * np.random.default_rng(1).standard_normal(SR).astype(np.float32)
    a = t(y, sample_rate_hz=SR, rng=np.random.default_rng(42))
    b = t(y, sample_rate_hz=SR, rng=np.random.default_rng(42))
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(a))


@pytest.mark.parametrize("t", WAVE_TRANSFORMS + [FrequencyMask(), TimeMask(), Mixup(alpha=0.3)], ids=lambda t: t.name)
def test_config_round_trips_through_json(t):
    data = json.loads(json.dumps(t.to_dict()))
    assert transform_from_dict(data) == t
    assert transform_from_dict(data).to_dict() == t.to_dict()


def test_different_seeds_give_different_draws():
    y = sine(220)
    a = GaussianNoise()(y, sample_rate_hz=SR, rng=np.random.default_rng(0))
    b = GaussianNoise()(y, sample_rate_hz=SR, rng=np.random.default_rng(1))
    assert not np.array_equal(a, b)


def test_compose_probabilities_zero_and_one():
    y = sine(220)
    assert Compose([(Gain(gain_db=(6, 6)), 0.0)])(y, sample_rate_hz=SR, rng=np.random.default_rng(0)) is y
    out = Compose([(Gain(gain_db=(6, 6)), 1.0)])(y, sample_rate_hz=SR, rng=np.random.default_rng(0))
    np.testing.assert_allclose(out, y * 10 ** (6 / 20), rtol=1e-6)


def test_compose_probability_is_respected_on_average():
    y = sine(220)
    chain = Compose([(Gain(gain_db=(6, 6)), 0.3)])
    rng = np.random.default_rng(0)
    fired = sum(chain(y, sample_rate_hz=SR, rng=rng) is not y for _ in range(2000))
    assert 0.26 < fired / 2000 < 0.34


def test_augmentation_from_config_list_builds_a_compose():
    chain = augmentation_from_config(
        [{"type": "gain", "gain_db": [-3, 3]}, {"p": 0.5, "transform": {"type": "gaussian_noise", "snr_db": [10, 20]}}]
    )
    assert isinstance(chain, Compose) and [p for _, p in chain.steps] == [1.0, 0.5]
    assert augmentation_from_config(None) is None


# ----------------------------------------------------------------------------- validation errors
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: GaussianNoise(snr_db=(30, 10)), r"snr_db range \(30, 10\) is reversed: give \(low, high\)"),
        (lambda: GaussianNoise(snr_db=(10, 500)), r"snr_db range .* is outside \[-30, 100\]"),
        (lambda: GaussianNoise(snr_db="loud"), r"snr_db 'loud' is not a range"),
        (lambda: BackgroundNoise(colors=("purple",)), r"color 'purple' is not one of"),
        (lambda: PitchShift(semitones=(-20, 0)), r"semitones range .* outside \[-12, 12\]"),
        (lambda: PitchShift(method="rubberband"), r"method 'rubberband' is not one of"),
        (lambda: TimeStretch(rate=(1.5, 0.5)), r"rate range \(1.5, 0.5\) is reversed"),
        (lambda: TimeStretch(rate=(0, 1)), r"rate range .* outside \[0.25, 4\]"),
        (lambda: TimeShift(mode="wrap"), r"mode 'wrap' is not one of 'roll', 'zero'"),
        (lambda: Gain(gain_db=(6, -6)), r"gain_db range \(6, -6\) is reversed"),
        (lambda: TimeMask(width=(10, 2)), r"time_mask width range \(10, 2\) is reversed"),
        (lambda: FrequencyMask(width=(1.5, 3)), r"must be whole numbers of bins"),
        (lambda: FrequencyMask(n_masks=-1), r"n_masks -1 is outside"),
        (lambda: Mixup(alpha=0), r"mixup alpha 0 is outside \(0, 100\]"),
        (lambda: Compose([(Gain(), 1.5)]), r"compose step 0 probability 1.5 is outside \[0, 1\]"),
        (lambda: Compose([Gain(), TimeMask()]), r"mixes spectrogram and waveform transforms"),
        (lambda: OneOf(()), r"one_of needs at least one transform"),
        (lambda: MedianBalancer(strategy="max"), r"strategy 'max' is not one of"),
    ],
)
def test_invalid_parameters_raise_config_error(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_unknown_type_and_option_in_config():
    with pytest.raises(ConfigError, match=r"unknown augmentation 'reverb': expected one of"):
        transform_from_dict({"type": "reverb"})
    with pytest.raises(ConfigError, match=r"'gain' has no option\(s\) snr_db"):
        transform_from_dict({"type": "gain", "snr_db": [1, 2]})


def test_call_time_errors():
    with pytest.raises(ConfigError, match="rng must be a numpy.random.Generator"):
        GaussianNoise()(sine(100), sample_rate_hz=SR, rng=42)
    with pytest.raises(ConfigError, match=r"must be mono samples of shape \(n,\), got shape \(2, 100\)"):
        Gain()(np.zeros((2, 100)), sample_rate_hz=SR, rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="NaN or infinite"):
        Gain()(np.array([0.0, np.nan]), sample_rate_hz=SR, rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="pitch_shift needs a positive sample_rate_hz"):
        PitchShift()(sine(100), rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match=r"needs a spectrogram of shape"):
        TimeMask()(np.zeros(10), rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="mixup with integer labels needs n_classes"):
        Mixup()(np.zeros((4, 3)), np.array([0, 1, 0, 1]), rng=np.random.default_rng(0))


# ----------------------------------------------------------------------------- measured properties
@pytest.mark.parametrize(
    "t",
    [
        GaussianNoise(snr_db=(12, 12)),
        BackgroundNoise(snr_db=(12, 12), colors=("pink",)),
        BackgroundNoise(snr_db=(12, 12), colors=("brown",)),
    ],
    ids=["gauss", "pink", "brown"],
)
def test_noise_is_added_at_the_requested_snr(t):
    y = sine(300, seconds=2.0)
    out = t(y, sample_rate_hz=SR, rng=np.random.default_rng(3))
    assert abs(snr_db(y, out) - 12.0) < 0.5


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snr=st.floats(-10, 60), n=st.integers(64, 20000), seed=st.integers(0, 2**32 - 1))
def test_gaussian_snr_property(snr, n, seed):
    rng = np.random.default_rng(seed)
    y = (0.3 * rng.standard_normal(n)).astype(np.float32)
    out = GaussianNoise(snr_db=(snr, snr))(y, sample_rate_hz=SR, rng=rng)
    assert out.shape == y.shape
    assert abs(snr_db(y, out) - snr) < 0.5


def test_silence_is_left_unchanged_by_noise():
    y = np.zeros(1000, dtype=np.float32)
    np.testing.assert_array_equal(GaussianNoise()(y, sample_rate_hz=SR, rng=np.random.default_rng(0)), y)


@pytest.mark.parametrize("color, slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_colored_noise_has_the_right_spectral_slope(color, slope):
    x = colored_noise(2**16, color=color, rng=np.random.default_rng(0))
    assert x.dtype == np.float32 and abs(np.sqrt(np.mean(x.astype(np.float64) ** 2)) - 1) < 1e-3
    psd = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size)
    band = (f > 1e-3) & (f < 0.4)
    fitted = np.polyfit(np.log10(f[band]), np.log10(psd[band]), 1)[0]
    assert abs(fitted - slope) < 0.15


def test_background_noise_from_in_memory_clips_and_folder(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    clip = colored_noise(4000, color="pink", rng=np.random.default_rng(0)) * 0.1
    t = BackgroundNoise(snr_db=(6, 6), noises=[clip])
    y = sine(440)
    out = t(y, sample_rate_hz=SR, rng=np.random.default_rng(0))  # clip shorter than y: tiled
    assert abs(snr_db(y, out) - 6) < 0.5
    assert "noises" not in t.to_dict()
    soundfile.write(tmp_path / "hum.wav", clip, SR)
    clips = load_noise_folder(tmp_path, sample_rate_hz=SR)
    assert len(clips) == 1 and clips[0].shape == (4000,)
    t2 = BackgroundNoise(snr_db=(6, 6), noise_dir=str(tmp_path))
    assert abs(snr_db(y, t2(y, sample_rate_hz=SR, rng=np.random.default_rng(0))) - 6) < 0.5
    with pytest.raises(ConfigError, match="holds no audio files"):
        load_noise_folder(_empty(tmp_path), sample_rate_hz=SR)
    with pytest.raises(ConfigError, match="does not exist"):
        load_noise_folder(tmp_path / "missing", sample_rate_hz=SR)


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


@pytest.mark.parametrize("method", ["resample", "librosa"])
@pytest.mark.parametrize("steps", [-4.0, 3.0, 7.0])
def test_pitch_shift_moves_the_fft_peak_by_the_semitone_ratio(method, steps):
    y = sine(440.0, seconds=1.0)
    out = PitchShift(semitones=(steps, steps), method=method)(y, sample_rate_hz=SR, rng=np.random.default_rng(0))
    assert out.shape == y.shape
    n = int(SR * 0.5)  # the first half is non-zero in every case (the resample method pads at the end)
    expected = 440.0 * 2 ** (steps / 12)
    assert abs(peak_hz(out[:n]) - expected) < 0.02 * expected


@settings(max_examples=20, deadline=None)
@given(n=st.integers(300, 12000), rate=st.floats(0.5, 2.0))
def test_time_stretch_changes_length_by_the_rate(n, rate):
    y = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.1
    out = TimeStretch(rate=(rate, rate))(y, sample_rate_hz=SR, rng=np.random.default_rng(0))
    assert out.shape == (max(1, round(n / rate)),)
    kept = TimeStretch(rate=(rate, rate), keep_length=True)(y, sample_rate_hz=SR, rng=np.random.default_rng(0))
    assert kept.shape == (n,)


def test_time_stretch_keeps_pitch():
    y = sine(500.0, seconds=1.0)
    out = TimeStretch(rate=(1.25, 1.25))(y, sample_rate_hz=SR, rng=np.random.default_rng(0))
    assert abs(peak_hz(out) - 500.0) < 10


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 5000), sr=st.sampled_from([8000, 16000, 22050, 44100]), shift_s=st.floats(-0.2, 0.2))
def test_time_shift_roll_and_zero(n, sr, shift_s):
    y = np.arange(1, n + 1, dtype=np.float32)
    k = int(round(shift_s * sr))
    rolled = TimeShift(shift_s=(shift_s, shift_s))(y, sample_rate_hz=sr, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(rolled, np.roll(y, k))
    zeroed = TimeShift(shift_s=(shift_s, shift_s), mode="zero")(y, sample_rate_hz=sr, rng=np.random.default_rng(0))
    assert zeroed.shape == y.shape
    assert int(np.count_nonzero(zeroed)) == max(0, n - abs(k))


def test_gain_scales_by_decibels():
    y = sine(100)
    out = Gain(gain_db=(-20, -20))(y, sample_rate_hz=SR, rng=np.random.default_rng(0))
    np.testing.assert_allclose(out, y * 0.1, rtol=1e-5)
    loud = Gain(gain_db=(20, 20), clip=True)(y, sample_rate_hz=SR, rng=np.random.default_rng(0))
    assert np.abs(loud).max() <= 1.0


# ----------------------------------------------------------------------------- spectrogram masks
@pytest.mark.parametrize("width", [1, 5, 12])
def test_frequency_mask_zeroes_exactly_width_bins_per_example(width):
    x = torch.rand(4, 2, 32, 50) + 1.0  # strictly positive so zeros are the mask
    out = FrequencyMask(width=(width, width))(x, rng=torch.Generator().manual_seed(0))
    assert torch.equal(x > 0, torch.ones_like(x, dtype=torch.bool))  # input untouched
    for b in range(4):
        zero_rows = (out[b] == 0).all(dim=-1)  # (channels, freq)
        assert zero_rows.sum(dim=-1).tolist() == [width, width]  # same band in both channels
        assert torch.equal(zero_rows[0], zero_rows[1])
    assert int((out == 0).sum()) == 4 * 2 * width * 50


@settings(max_examples=30, deadline=None)
@given(frames=st.integers(1, 200), width=st.integers(0, 60), batch=st.integers(1, 4), seed=st.integers(0, 1000))
def test_time_mask_zeroes_min_width_frames(frames, width, batch, seed):
    x = np.random.default_rng(seed).random((batch, 16, frames)) + 1.0
    out = TimeMask(width=(width, width))(x, rng=np.random.default_rng(seed))
    assert out.shape == x.shape
    assert int((out == 0).sum()) == batch * 16 * min(width, frames)


def test_masks_replay_and_differ_per_example():
    x = torch.ones(8, 64, 100)
    m = Compose([TimeMask(width=(5, 20), n_masks=2), FrequencyMask(width=(3, 10))])
    a = m(x, rng=torch.Generator().manual_seed(5))
    b = m(x, rng=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert len({tuple((a[i] == 0).flatten().nonzero().flatten().tolist()[:5]) for i in range(8)}) > 1


def test_mask_fill_mean():
    x = np.arange(20, dtype=np.float32).reshape(1, 4, 5)
    out = TimeMask(width=(5, 5), fill="mean")(x, rng=np.random.default_rng(0))
    np.testing.assert_allclose(out, np.full_like(x, x.mean()))


# ----------------------------------------------------------------------------- mixup
@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 16),
    n_classes=st.integers(2, 9),
    alpha=st.floats(0.05, 2.0),
    per_example=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_mixup_soft_labels_sum_to_one(batch, n_classes, alpha, per_example, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, 7)).astype(np.float32)
    y = rng.integers(0, n_classes, batch)
    xm, ym = Mixup(alpha=alpha, per_example=per_example)(x, y, rng=np.random.default_rng(seed), n_classes=n_classes)
    assert xm.shape == x.shape and ym.shape == (batch, n_classes)
    np.testing.assert_allclose(ym.sum(axis=1), 1.0, atol=1e-5)
    assert (ym >= 0).all()


def test_mixup_on_tensors_replays_and_mixes_consistently():
    x = torch.eye(4)
    y = torch.tensor([0, 1, 2, 3])
    a = Mixup(alpha=0.4)(x, y, rng=np.random.default_rng(1), n_classes=4)
    b = Mixup(alpha=0.4)(x, y, rng=np.random.default_rng(1), n_classes=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # with one-hot x == one-hot y, the mixed input equals the mixed label
    torch.testing.assert_close(a[0], a[1].to(a[0].dtype))
    np.testing.assert_allclose(a[1].sum(dim=1).numpy(), 1.0, atol=1e-6)


# ----------------------------------------------------------------------------- median balancing
def test_median_balancing_counts():
    labels = np.array([0] * 10 + [1] * 6 + [2] * 3 + [3] * 1 + [4] * 8)
    assert median_target(labels) == 6
    idx, extra = median_balanced_indices(labels, rng=np.random.default_rng(0))
    counts = np.bincount(labels[idx])
    assert counts.tolist() == [10, 6, 6, 6, 8]
    np.testing.assert_array_equal(idx[: labels.size], np.arange(labels.size))
    assert extra.sum() == 3 + 5 and not extra[: labels.size].any()
    idx2, _ = median_balanced_indices(labels, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(idx, idx2)


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(1, 30), min_size=1, max_size=8), seed=st.integers(0, 1000))
def test_median_balancing_property(counts, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    idx, extra = MedianBalancer()(labels, rng=np.random.default_rng(seed))
    target = int(np.floor(np.median(counts)))
    after = np.bincount(labels[idx], minlength=len(counts))
    assert after.tolist() == [max(c, target) for c in counts]
    assert (labels[idx[extra]] == labels[idx[extra]]).all()


def test_median_balancing_rejects_empty_labels():
    with pytest.raises(ConfigError, match="non-empty 1-D array"):
        median_balanced_indices([], rng=np.random.default_rng(0))


def test_engine_hook_applies_waveform_transforms_per_row_and_replays():
    from emovox.augment import engine_hook

    hook = engine_hook(Compose([GaussianNoise(snr_db=(10, 10)), TimeStretch(rate=(1.2, 1.2))]), sample_rate_hz=SR)
    x = np.stack([sine(200), sine(300)])
    a = hook(x, np.random.default_rng(0))
    b = hook(x, np.random.default_rng(0))
    assert a.shape == x.shape and np.array_equal(a, b) and hook.name == "compose"
    assert not a[:, -100:].any()  # the faster rows were zero-padded back to length
    spec = engine_hook(TimeMask(width=(3, 3)))(np.ones((2, 8, 10), dtype=np.float32), np.random.default_rng(0))
    assert int((spec == 0).sum()) == 2 * 8 * 3
    with pytest.raises(ConfigError, match="engine_hook needs an augmentation transform"):
        engine_hook(lambda x: x)
