"""Room reverberation: simulated shoebox rooms (image-source method) convolved with speech.

:func:`room_impulse_response` draws a room (3-10 m by 3-8 m by 2.5-4 m), a
talker and a microphone at least 0.5 m from the walls and 1-4 m apart, and
computes the impulse response for a target reverberation time RT60 with
pyroomacoustics (wall absorption from Sabine's formula, ``pip install
'emovox[augment]'``). :class:`RoomReverb` convolves a clip with one, either
drawn from an in-memory bank (``rirs``: fast, reproducible sets for training
and evaluation) or simulated on the fly. The reverberant clip keeps the
input's length and RMS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from emovox.augment.base import (
    Transform,
    _set,
    check_range,
    check_rng,
    check_waveform,
    check_waveform_and_rng,
    register_transform,
)
from emovox.errors import ConfigError

__all__ = ["RoomReverb", "room_impulse_response", "measured_rt60_s", "reverberate"]


def room_impulse_response(rt60_s: float, *, sample_rate_hz: int = 16000, rng: np.random.Generator) -> np.ndarray:
    """Impulse response ``(m,)`` float32 of a random shoebox room with reverberation time ``rt60_s``.

    Normalised so that its energy is 1 (the direct path keeps its share).
    Raises :class:`ConfigError` when pyroomacoustics is missing or the room
    cannot reach ``rt60_s`` (a larger room is drawn up to 20 times first).
    """
    check_rng(rng)
    try:
        import pyroomacoustics as pra
    except ImportError:
        raise ConfigError("room reverberation needs pyroomacoustics: pip install 'emovox[augment]'") from None
    for _ in range(20):
        dims = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.5, 4)])
        try:
            absorption, max_order = pra.inverse_sabine(float(rt60_s), dims)
        except ValueError:  # the room is too small for this RT60
            continue
        source = np.array([rng.uniform(0.5, d - 0.5) for d in dims[:2]] + [rng.uniform(1.2, 1.9)])
        for _ in range(50):
            mic = np.array([rng.uniform(0.5, d - 0.5) for d in dims[:2]] + [rng.uniform(0.7, 1.6)])
            if 1.0 <= np.linalg.norm(mic - source) <= 4.0:
                break
        room = pra.ShoeBox(dims, fs=sample_rate_hz, materials=pra.Material(absorption), max_order=max_order)
        room.add_source(source)
        room.add_microphone(mic)
        room.compute_rir()
        h = np.asarray(room.rir[0][0], np.float64)
        h = h[max(0, int(np.argmax(np.abs(h))) - 16) :]  # start just before the direct path
        return (h / np.sqrt(np.sum(h**2))).astype(np.float32)
    raise ConfigError(f"no room of at most 10 x 8 x 4 m reaches RT60 = {rt60_s} s: choose a shorter RT60")


def measured_rt60_s(h: np.ndarray, *, sample_rate_hz: int = 16000) -> float:
    """RT60 of an impulse response from its Schroeder decay (T20 extrapolated: -5 to -25 dB, times 3)."""
    energy = np.cumsum(np.square(np.asarray(h, np.float64))[::-1])[::-1]
    db = 10 * np.log10(np.maximum(energy / energy[0], 1e-30))
    i5, i25 = int(np.argmax(db <= -5)), int(np.argmax(db <= -25))
    if i25 <= i5:
        return float("nan")
    return 3.0 * (i25 - i5) / sample_rate_hz


def reverberate(y: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``y`` ``(n,)`` convolved with ``h``, cut to ``n`` samples and scaled back to ``y``'s RMS."""
    from scipy.signal import fftconvolve

    y = np.asarray(y, np.float32)
    wet = fftconvolve(y.astype(np.float64), np.asarray(h, np.float64))[: y.size]
    rms_in, rms_out = float(np.sqrt(np.mean(y.astype(np.float64) ** 2))), float(np.sqrt(np.mean(wet**2)))
    return (wet * (rms_in / rms_out) if rms_out > 0 else wet).astype(np.float32)


@register_transform
@dataclass(frozen=True)
class RoomReverb(Transform):
    """Convolve with a room impulse response.

    Parameters
    ----------
    rt60_s : (low, high)
        Reverberation time range for simulated rooms (ignored with ``rirs``).
    rirs : sequence of np.ndarray, optional
        In-memory impulse responses at the call's rate, one drawn per call
        (runtime only: not serialised).
    """

    name: ClassVar[str] = "room_reverb"
    rt60_s: tuple = (0.2, 1.0)
    rirs: Sequence[np.ndarray] | None = field(default=None, compare=False, repr=False, metadata={"runtime": True})

    def __post_init__(self) -> None:
        _set(self, "rt60_s", check_range("rt60_s", self.rt60_s, lo=0.05, hi=3.0, unit="s"))
        if self.rirs is not None:
            bank = tuple(check_waveform(h) for h in self.rirs)
            if not bank:
                raise ConfigError("room_reverb rirs is empty: give at least one impulse response or None")
            _set(self, "rirs", bank)

    def __call__(self, y, *, sample_rate_hz: int | None = None, rng: np.random.Generator, **_):
        y = check_waveform_and_rng(y, rng)
        if self.rirs is not None:
            h = self.rirs[int(rng.integers(len(self.rirs)))]
        else:
            if sample_rate_hz is None:
                raise ConfigError("room_reverb needs sample_rate_hz=... at call time")
            h = room_impulse_response(float(rng.uniform(*self.rt60_s)), sample_rate_hz=sample_rate_hz, rng=rng)
        return reverberate(y, h)
