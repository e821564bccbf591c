"""Waveform transforms: pitch shift, time stretch, time shift and gain.

All take ``y`` (float32, shape ``(n,)``) with ``sample_rate_hz`` and an explicit
``rng``, and return float32.

CPU cost (one 3 s clip at 16 kHz, one core, measured on the project machine):
``PitchShift(method="resample")`` about 2 ms (one soxr resample; pitch *and*
tempo change, the result is cropped or zero-padded to the input length, like
speed perturbation); ``PitchShift(method="librosa")`` about 9 ms (phase
vocoder + resample, duration kept); ``TimeStretch`` about 7 ms (phase
vocoder); ``TimeShift`` and ``Gain`` well under 1 ms. Feature extraction of
the same clip (40 MFCC) costs a few ms, so on-the-fly augmentation at most
doubles the per-epoch input cost. Run
``python -m emovox.augment.waveform`` to re-measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from emovox.augment.base import (
    Transform,
    _set,
    check_choice,
    check_range,
    check_waveform_and_rng,
    register_transform,
)
from emovox.errors import ConfigError


def _need_rate(sample_rate_hz, what: str) -> int:
    if sample_rate_hz is None or isinstance(sample_rate_hz, bool) or int(sample_rate_hz) <= 0:
        raise ConfigError(f"{what} needs a positive sample_rate_hz at call time, got {sample_rate_hz!r}")
    return int(sample_rate_hz)


def _fix_length(y: np.ndarray, n: int) -> np.ndarray:
    if y.shape[0] >= n:
        return y[:n]
    return np.pad(y, (0, n - y.shape[0]))


def pitch_shift_resample(y: np.ndarray, *, semitones: float, sample_rate_hz: int) -> np.ndarray:
    """Shift pitch by resampling (speed perturbation), keeping the array length.

    The signal is resampled from ``sample_rate_hz * r`` to ``sample_rate_hz``
    with ``r = 2 ** (semitones / 12)``: played back at ``sample_rate_hz``, every
    frequency is multiplied by ``r`` and the duration divided by ``r``. The
    output is cropped or zero-padded to ``len(y)``.
    """
    import soxr

    ratio = 2.0 ** (semitones / 12.0)
    if ratio == 1.0:
        return y.copy()
    out = soxr.resample(y, sample_rate_hz * ratio, sample_rate_hz, quality="HQ")
    return _fix_length(np.asarray(out, dtype=np.float32), y.shape[0])


@register_transform
@dataclass(frozen=True)
class PitchShift(Transform):
    """Shift the pitch by a number of semitones drawn uniformly from ``semitones``.

    Parameters
    ----------
    semitones : (low, high)
        Within [-12, 12].
    method : {"resample", "librosa"}
        ``"resample"`` (fast, ~2 ms per 3 s clip): speed perturbation, pitch and
        tempo change together, length kept by crop/zero-pad. ``"librosa"``
        (``librosa.effects.pitch_shift``, phase vocoder, ~9 ms): duration kept.
    """

    name: ClassVar[str] = "pitch_shift"
    semitones: tuple = (-2.0, 2.0)
    method: str = "resample"

    def __post_init__(self) -> None:
        _set(self, "semitones", check_range("semitones", self.semitones, lo=-12, hi=12, unit="semitones"))
        check_choice("pitch_shift method", self.method, ("resample", "librosa"))

    def __call__(self, y, *, sample_rate_hz: int | None = None, rng: np.random.Generator, **_):
        y = check_waveform_and_rng(y, rng)
        sr = _need_rate(sample_rate_hz, "pitch_shift")
        steps = float(rng.uniform(*self.semitones))
        if steps == 0.0:
            return y.copy()
        if self.method == "resample":
            return pitch_shift_resample(y, semitones=steps, sample_rate_hz=sr)
        import librosa

        n_fft = _n_fft_for(y.shape[0])
        out = librosa.effects.pitch_shift(y, sr=sr, n_steps=steps, n_fft=n_fft, res_type="soxr_hq")
        return _fix_length(np.asarray(out, dtype=np.float32), y.shape[0])


def _n_fft_for(n: int) -> int:
    """librosa's default n_fft (2048) or the largest power of two <= n for short clips."""
    n_fft = 2048
    while n_fft > 16 and n_fft > n:
        n_fft //= 2
    return n_fft


@register_transform
@dataclass(frozen=True)
class TimeStretch(Transform):
    """Change tempo by a rate drawn from ``rate`` without changing pitch.

    ``rate > 1`` speeds up (output length ``round(n / rate)``), ``rate < 1``
    slows down. Phase vocoder (``librosa.effects.time_stretch``). With
    ``keep_length=True`` the output is cropped / zero-padded back to ``n``.

    Parameters
    ----------
    rate : (low, high)
        Within [0.25, 4].
    keep_length : bool
    """

    name: ClassVar[str] = "time_stretch"
    rate: tuple = (0.8, 1.25)
    keep_length: bool = False

    def __post_init__(self) -> None:
        _set(self, "rate", check_range("rate", self.rate, lo=0.25, hi=4.0))
        if not isinstance(self.keep_length, bool):
            raise ConfigError(f"time_stretch keep_length {self.keep_length!r} must be True or False")

    def __call__(self, y, *, sample_rate_hz: int | None = None, rng: np.random.Generator, **_):
        y = check_waveform_and_rng(y, rng)
        rate = float(rng.uniform(*self.rate))
        out = stretch(y, rate=rate)
        return _fix_length(out, y.shape[0]) if self.keep_length else out


def stretch(y: np.ndarray, *, rate: float) -> np.ndarray:
    """Phase-vocoder time stretch of ``y`` to exactly ``max(1, round(n / rate))`` samples."""
    import librosa

    n = y.shape[0]
    target = max(1, int(round(n / rate)))
    if rate == 1.0:
        return y.copy()
    n_fft = _n_fft_for(n)
    out = librosa.effects.time_stretch(y, rate=rate, n_fft=n_fft)
    return _fix_length(np.asarray(out, dtype=np.float32), target)


@register_transform
@dataclass(frozen=True)
class TimeShift(Transform):
    """Shift the signal in time by a duration drawn from ``shift_s``.

    Parameters
    ----------
    shift_s : (low, high)
        Shift in seconds; positive delays the signal (moves it right).
    mode : {"roll", "zero"}
        ``"roll"`` wraps around; ``"zero"`` fills the vacated samples with zeros.
    """

    name: ClassVar[str] = "time_shift"
    shift_s: tuple = (-0.5, 0.5)
    mode: str = "roll"

    def __post_init__(self) -> None:
        _set(self, "shift_s", check_range("shift_s", self.shift_s, lo=-60, hi=60, unit="s"))
        check_choice("time_shift mode", self.mode, ("roll", "zero"))

    def __call__(self, y, *, sample_rate_hz: int | None = None, rng: np.random.Generator, **_):
        y = check_waveform_and_rng(y, rng)
        sr = _need_rate(sample_rate_hz, "time_shift")
        k = int(round(rng.uniform(*self.shift_s) * sr))
        return shift(y, k, mode=self.mode)


def shift(y: np.ndarray, k: int, *, mode: str = "roll") -> np.ndarray:
    """Shift ``y`` by ``k`` samples (positive = later), rolling or zero-filling."""
    if mode == "roll":
        return np.roll(y, k)
    out = np.zeros_like(y)
    n = y.shape[0]
    if abs(k) >= n:
        return out
    if k >= 0:
        out[k:] = y[: n - k]
    else:
        out[:k] = y[-k:]
    return out


@register_transform
@dataclass(frozen=True)
class Gain(Transform):
    """Scale the amplitude by a gain drawn from ``gain_db`` (dB; 6 dB ~ x2).

    Parameters
    ----------
    gain_db : (low, high)
        Within [-60, 40].
    clip : bool
        Clip the result to [-1, 1].
    """

    name: ClassVar[str] = "gain"
    gain_db: tuple = (-6.0, 6.0)
    clip: bool = False

    def __post_init__(self) -> None:
        _set(self, "gain_db", check_range("gain_db", self.gain_db, lo=-60, hi=40, unit="dB"))

    def __call__(self, y, *, sample_rate_hz: int | None = None, rng: np.random.Generator, **_):
        y = check_waveform_and_rng(y, rng)
        g = 10.0 ** (rng.uniform(*self.gain_db) / 20.0)
        out = (y * g).astype(np.float32)
        return np.clip(out, -1.0, 1.0) if self.clip else out


@register_transform
@dataclass(frozen=True)
class HardClip(Transform):
    """Overdrive a clip into hard clipping, as a recorder whose input gain is set too high.

    The clip is scaled so that its peak lies ``drive_db`` (drawn from the
    range) above full scale, clipped to [-1, 1], and scaled back to its
    original peak: the level stays, the waveform's tops are flat.
    """

    name: ClassVar[str] = "hard_clip"
    drive_db: tuple = (1.0, 15.0)

    def __post_init__(self) -> None:
        _set(self, "drive_db", check_range("drive_db", self.drive_db, lo=0, hi=40, unit="dB"))

    def __call__(self, y, *, sample_rate_hz: int | None = None, rng: np.random.Generator, **_):
        y = check_waveform_and_rng(y, rng)
        peak = float(np.max(np.abs(y)))
        if peak == 0.0:
            return y.copy()
        g = 10.0 ** (rng.uniform(*self.drive_db) / 20.0) / peak
        return (np.clip(y * g, -1.0, 1.0) * peak).astype(np.float32)


def _benchmark() -> None:  # pragma: no cover - manual measurement helper
    import time

    sr = 16000
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(3 * sr)).astype(np.float32)
    for t in (PitchShift(method="resample"), PitchShift(method="librosa"), TimeStretch(), TimeShift(), Gain()):
        t(y, sample_rate_hz=sr, rng=rng)
        t0 = time.perf_counter()
        for _ in range(10):
            t(y, sample_rate_hz=sr, rng=rng)
        print(f"{t!r}: {(time.perf_counter() - t0) / 10 * 1e3:.1f} ms per 3 s clip")


if __name__ == "__main__":  # pragma: no cover
    _benchmark()
