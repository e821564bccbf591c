"""Additive noise at a chosen signal-to-noise ratio: Gaussian, coloured and background.

The SNR is exact for the drawn noise: the noise is scaled with its own measured
power, so ``10 * log10(P(y) / P(noise)) == snr_db`` up to float32 rounding.
A silent input (zero power) is returned unchanged, because no noise level has
the requested SNR against silence.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from emovox.augment.base import (
    Transform,
    _set,
    check_choice,
    check_rng,
    check_snr_db,
    check_waveform,
    check_waveform_and_rng,
    register_transform,
)
from emovox.errors import ConfigError

#: Spectral slope per colour: power density ~ 1 / f**exponent.
NOISE_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".aiff", ".aif")


def colored_noise(n: int, *, color: str = "white", rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with a power spectrum ~ 1/f**k (white k=0, pink 1, brown 2).

    Parameters
    ----------
    n : int
        Number of samples (>= 1).
    color : {"white", "pink", "brown"}
    rng : numpy.random.Generator

    Returns
    -------
    noise : np.ndarray [shape=(n,), dtype=float32]
        Zero-mean (apart from white), RMS 1.

    Notes
    -----
    Spectral shaping of white Gaussian noise: its rFFT is multiplied by
    ``f**(-k/2)`` (the DC bin set to 0 for k > 0), then inverted.
    """
    check_choice("noise color", color, tuple(NOISE_EXPONENTS))
    check_rng(rng)
    if n < 1:
        raise ConfigError(f"noise length {n} must be >= 1 sample")
    white = rng.standard_normal(n)
    k = NOISE_EXPONENTS[color]
    if k == 0.0 or n < 4:
        noise = white
    else:
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n)
        scale = np.zeros_like(f)
        scale[1:] = f[1:] ** (-k / 2.0)
        noise = np.fft.irfft(spec * scale, n=n)
    rms = np.sqrt(np.mean(noise**2))
    if rms == 0:
        return np.zeros(n, dtype=np.float32)
    return (noise / rms).astype(np.float32)


def mix_at_snr(y: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Return ``y + g * noise`` with ``g`` chosen so that the SNR is ``snr_db`` dB.

    ``y`` and ``noise`` have the same shape ``(n,)``. Silence (or silent noise)
    leaves ``y`` unchanged.
    """
    p_signal = float(np.mean(np.square(y, dtype=np.float64)))
    p_noise = float(np.mean(np.square(noise, dtype=np.float64)))
    if p_signal == 0.0 or p_noise == 0.0:
        return y.copy()
    gain = np.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (y + gain * noise).astype(np.float32)


@register_transform
@dataclass(frozen=True)
class GaussianNoise(Transform):
    """Add white Gaussian noise at an SNR drawn uniformly from ``snr_db``.

    Parameters
    ----------
    snr_db : (low, high)
        SNR range in dB; ``low <= high``, within [-30, 100].

    Notes
    -----
    Call: ``t(y, *, sample_rate_hz, rng) -> y_noisy`` (float32, same shape).
    """

    name: ClassVar[str] = "gaussian_noise"
    snr_db: tuple = (10.0, 30.0)

    def __post_init__(self) -> None:
        _set(self, "snr_db", check_snr_db(self.snr_db))

    def __call__(self, y, *, sample_rate_hz: int | None = None, rng: np.random.Generator, **_):
        y = check_waveform_and_rng(y, rng)
        snr = rng.uniform(*self.snr_db)
        noise = rng.standard_normal(y.shape[0])
        return mix_at_snr(y, noise, snr)


def load_noise_folder(folder: str | os.PathLike, *, sample_rate_hz: int) -> list[np.ndarray]:
    """Read every audio file under ``folder`` (recursively) as float32 mono.

    Uses :func:`emovox.audio.load_audio` (the one place that reads audio);
    files are sorted by path so the list, and thus the augmentation, is
    reproducible.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"noise folder {str(root)!r} does not exist: give a folder of noise recordings")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not paths:
        raise ConfigError(
            f"noise folder {str(root)!r} holds no audio files ({', '.join(AUDIO_SUFFIXES)}): "
            f"add some or leave noise_dir unset to use coloured noise"
        )
    try:
        from emovox.audio import load_audio
    except ImportError:  # pragma: no cover - emovox.audio is part of the package
        raise ConfigError("emovox.audio is not available: install emovox completely") from None
    return [load_audio(p, sample_rate_hz=sample_rate_hz) for p in paths]


@register_transform
@dataclass(frozen=True)
class BackgroundNoise(Transform):
    """Mix in background noise at an SNR drawn from ``snr_db``.

    Parameters
    ----------
    snr_db : (low, high)
        SNR range in dB.
    noise_dir : str or None
        Folder of noise recordings (read once, at first use, with
        :func:`load_noise_folder`). ``None``: a coloured-noise source is used.
    colors : tuple of {"white", "pink", "brown"}
        Colours drawn from (uniformly) when there is no ``noise_dir``.
    noises : sequence of np.ndarray, optional
        In-memory noise clips at the call's sample rate (runtime only: not
        serialised, not compared). Takes precedence over ``noise_dir``.

    Notes
    -----
    A random excerpt of a random clip is used; clips shorter than ``y`` are
    tiled. Loaded clips are cached per sample rate inside the object.
    """

    name: ClassVar[str] = "background_noise"
    snr_db: tuple = (5.0, 25.0)
    noise_dir: str | None = None
    colors: tuple = ("white", "pink", "brown")
    noises: Sequence[np.ndarray] | None = field(default=None, compare=False, repr=False, metadata={"runtime": True})
    _cache: dict = field(default_factory=dict, init=False, compare=False, repr=False, metadata={"runtime": True})

    def __post_init__(self) -> None:
        _set(self, "snr_db", check_snr_db(self.snr_db))
        colors = (self.colors,) if isinstance(self.colors, str) else tuple(self.colors)
        if not colors:
            raise ConfigError("background_noise colors is empty: give e.g. ('white', 'pink', 'brown')")
        for c in colors:
            check_choice("background_noise color", c, tuple(NOISE_EXPONENTS))
        _set(self, "colors", colors)
        if self.noise_dir is not None:
            _set(self, "noise_dir", os.fspath(self.noise_dir))
        if self.noises is not None:
            clips = [check_waveform(n) for n in self.noises]
            if not clips:
                raise ConfigError("background_noise noises is empty: give at least one clip or None")
            _set(self, "noises", tuple(clips))

    def _clips(self, sample_rate_hz: int | None) -> Sequence[np.ndarray] | None:
        if self.noises is not None:
            return self.noises
        if self.noise_dir is None:
            return None
        if sample_rate_hz is None:
            raise ConfigError("background_noise with noise_dir needs sample_rate_hz=... at call time")
        if sample_rate_hz not in self._cache:
            self._cache[sample_rate_hz] = load_noise_folder(self.noise_dir, sample_rate_hz=sample_rate_hz)
        return self._cache[sample_rate_hz]

    def __call__(self, y, *, sample_rate_hz: int | None = None, rng: np.random.Generator, **_):
        y = check_waveform_and_rng(y, rng)
        n = y.shape[0]
        snr = rng.uniform(*self.snr_db)
        clips = self._clips(sample_rate_hz)
        if clips is None:
            color = self.colors[int(rng.integers(len(self.colors)))]
            noise = colored_noise(n, color=color, rng=rng)
        else:
            clip = clips[int(rng.integers(len(clips)))]
            if clip.shape[0] < n:
                clip = np.tile(clip, int(np.ceil(n / clip.shape[0])) + 1)
            start = int(rng.integers(0, clip.shape[0] - n + 1))
            noise = clip[start : start + n]
        return mix_at_snr(y, noise, snr)
