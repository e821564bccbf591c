"""Synthetic sounds that are not speech: tones, music, noises, and the sounds between speech.

Each generator is ``generate(n_samples, *, sample_rate_hz, rng) -> (n,)`` float32
with RMS about 0.1 (the caller sets the level) and draws every parameter from
``rng``, so one seed gives one sound. They serve two purposes:

- *music-like background* for the degradation chain
  (:class:`emovox.augment.degrade`), mixed under speech at an SNR;
- the *non-speech sets* of :mod:`emovox.evaluation.nonspeech`: inputs on which
  a speech-emotion model must answer ``no_speech``, never an emotion.

:data:`GENERATORS` maps a kind name to its generator.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from emovox.augment.noise import colored_noise
from emovox.errors import ConfigError

__all__ = ["GENERATORS", "generate", "MUSIC_KINDS"]

Generator = Callable[..., np.ndarray]
_TARGET_RMS = 0.1


def _t(n: int, sr: int) -> np.ndarray:
    return np.arange(n) / sr


def _level(y: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    return (y * (_TARGET_RMS / rms) if rms > 0 else y).astype(np.float32)


def _note(n: int, sr: int, f0: float, *, rng: np.random.Generator, decay: float, partials: int = 8) -> np.ndarray:
    """A plucked/struck note: harmonics with slightly random amplitudes, exponential decay."""
    t = _t(n, sr)
    amps = rng.uniform(0.3, 1.0, partials) / np.arange(1, partials + 1) ** rng.uniform(0.8, 2.0)
    y = np.zeros(n)
    for k, a in enumerate(amps, start=1):
        if f0 * k < sr / 2:
            y += a * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) * np.exp(-t * decay * (1 + 0.3 * k))
    attack = min(n, int(0.005 * sr))
    y[:attack] *= np.linspace(0, 1, attack)
    return y


def tone(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """A steady sine tone of 80-4000 Hz."""
    f = float(np.exp(rng.uniform(np.log(80), np.log(4000))))
    return _level(np.sin(2 * np.pi * f * _t(n, sample_rate_hz)))


def chord(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """A piano-like major or minor chord, struck once or repeatedly."""
    root = 110.0 * 2 ** (rng.integers(0, 24) / 12)
    intervals = (0, 4, 7, 12) if rng.random() < 0.5 else (0, 3, 7, 10)
    period = n if rng.random() < 0.5 else int(rng.uniform(0.4, 1.5) * sample_rate_hz)
    y = np.zeros(n)
    for start in range(0, n, max(1, period)):
        m = n - start
        y[start:] += sum(
            _note(m, sample_rate_hz, root * 2 ** (i / 12), rng=rng, decay=rng.uniform(0.5, 3)) for i in intervals
        )
    return _level(y)


def melody(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """A sequence of notes on a scale (a synthetic instrument playing a tune)."""
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
    base = 196.0 * 2 ** (rng.integers(-5, 8) / 12)
    y, pos = np.zeros(n), 0
    while pos < n:
        length = int(rng.choice([0.125, 0.25, 0.25, 0.5, 0.75]) * sample_rate_hz * rng.uniform(0.8, 1.3))
        f0 = base * 2 ** (scale[rng.integers(len(scale))] / 12)
        note = _note(min(length * 2, n - pos), sample_rate_hz, f0, rng=rng, decay=rng.uniform(1, 6))
        y[pos : pos + note.size] += note
        pos += max(1, length)
    return _level(y)


def drums(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """A drum loop: kick (decaying low sine sweep), snare (noise burst), hi-hat (high-passed clicks)."""
    sr = sample_rate_hz
    beat = int(60.0 / rng.uniform(70, 160) * sr / 2)
    y = np.zeros(n)
    pattern = rng.integers(0, 4, 16)
    for i, start in enumerate(range(0, n, max(1, beat))):
        kind = pattern[i % 16]
        m = min(n - start, int(0.3 * sr))
        t = _t(m, sr)
        if kind == 0:
            hit = np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
        elif kind == 1:
            hit = rng.standard_normal(m) * np.exp(-t * 25) * 0.6
        elif kind == 2:
            hit = np.diff(rng.standard_normal(m + 1)) * np.exp(-t * 80) * 0.4
        else:
            continue
        y[start : start + m] += hit
    return _level(y)


def music(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """A melody over chords, with drums half of the time."""
    mix = melody(n, sample_rate_hz=sample_rate_hz, rng=rng) + 0.7 * chord(n, sample_rate_hz=sample_rate_hz, rng=rng)
    if rng.random() < 0.5:
        mix = mix + 0.6 * drums(n, sample_rate_hz=sample_rate_hz, rng=rng)
    return _level(mix)


def _colour(color: str) -> Generator:
    def generate(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
        return _level(colored_noise(n, color=color, rng=rng))

    generate.__doc__ = f"Stationary {color} noise."
    return generate


def hum(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum: 50 or 60 Hz and its harmonics, with a little noise."""
    f0 = float(rng.choice([50.0, 60.0]))
    t = _t(n, sample_rate_hz)
    y = sum(rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) for k in range(1, 9))
    return _level(y + 0.01 * rng.standard_normal(n))


def clicks(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """Isolated clicks and pops (2-20 per second) over a faint noise floor."""
    y = 1e-3 * rng.standard_normal(n)
    count = max(1, int(n / sample_rate_hz * rng.uniform(2, 20)))
    y[rng.integers(0, n, count)] += rng.uniform(-1, 1, count)
    return _level(y)


def sweep(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """A logarithmic sine sweep between 50 Hz and 7 kHz (up or down)."""
    f0, f1 = float(rng.uniform(50, 400)), float(rng.uniform(2000, min(7000, sample_rate_hz / 2 - 100)))
    if rng.random() < 0.5:
        f0, f1 = f1, f0
    duration = n / sample_rate_hz
    t = _t(n, sample_rate_hz)
    k = np.log(f1 / f0) / duration
    return _level(np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k))


def dtmf(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """Telephone keypad tones (dual-tone multi-frequency), digits of 60-200 ms with pauses."""
    low, high = (697, 770, 852, 941), (1209, 1336, 1477)
    y, pos = np.zeros(n), int(rng.uniform(0, 0.2) * sample_rate_hz)
    while pos < n:
        m = min(n - pos, int(rng.uniform(0.06, 0.2) * sample_rate_hz))
        t = _t(m, sample_rate_hz)
        y[pos : pos + m] = np.sin(2 * np.pi * rng.choice(low) * t) + np.sin(2 * np.pi * rng.choice(high) * t)
        pos += m + int(rng.uniform(0.05, 0.3) * sample_rate_hz)
    return _level(y)


def ringback(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """A ring-back or busy tone: two summed sines switched on and off."""
    pair = ((440, 480), (425, 425), (400, 450), (480, 620))[rng.integers(4)]
    on, off = ((2.0, 4.0), (1.0, 3.0), (0.5, 0.5), (0.4, 0.2))[rng.integers(4)]
    t = _t(n, sample_rate_hz)
    gate = (np.mod(t + rng.uniform(0, on + off), on + off) < on).astype(float)
    return _level(gate * (np.sin(2 * np.pi * pair[0] * t) + np.sin(2 * np.pi * pair[1] * t)) + 1e-4)


def fan(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """A fan or air conditioner: low-passed noise plus a weak blade tone."""
    from scipy.signal import butter, sosfilt

    cutoff = float(rng.uniform(300, 2500))
    sos = butter(2, cutoff, btype="lowpass", fs=sample_rate_hz, output="sos")
    y = sosfilt(sos, rng.standard_normal(n))
    blade = rng.uniform(20, 120)
    y += 0.3 * y.std() * np.sin(2 * np.pi * blade * _t(n, sample_rate_hz))
    return _level(y)


def traffic(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """Road noise: brown noise whose level swells and falls as vehicles pass."""
    t = _t(n, sample_rate_hz)
    swell = 0.3 + sum(
        np.exp(-(((t - c) / rng.uniform(0.5, 2.0)) ** 2)) for c in rng.uniform(0, max(t[-1], 0.1), rng.integers(1, 5))
    )
    return _level(colored_noise(n, color="brown", rng=rng) * swell)


def applause(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """Applause or rain: dense random claps (short band-limited noise bursts)."""
    from scipy.signal import butter, sosfilt

    rate = rng.uniform(30, 300)  # claps per second
    y = np.zeros(n)
    count = max(1, int(n / sample_rate_hz * rate))
    burst = int(0.01 * sample_rate_hz)
    shape = np.exp(-np.arange(burst) / (0.002 * sample_rate_hz))
    for s in rng.integers(0, max(1, n - burst), count):
        y[s : s + burst] += rng.uniform(0.2, 1.0) * shape * rng.standard_normal(burst)
    lo = rng.uniform(300, 1500)
    sos = butter(2, [lo, min(lo * 6, sample_rate_hz / 2 - 100)], btype="bandpass", fs=sample_rate_hz, output="sos")
    return _level(sosfilt(sos, y))


def typing(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """Keyboard typing: irregular short clicks with a resonance, in bursts."""
    y = 1e-3 * rng.standard_normal(n)
    pos = 0
    m = int(0.03 * sample_rate_hz)
    t = _t(m, sample_rate_hz)
    while pos < n - m:
        f = rng.uniform(1500, 5000)
        y[pos : pos + m] += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * f * t) * np.exp(-t * rng.uniform(200, 600))
        pos += int(rng.exponential(0.15) * sample_rate_hz) + m
    return _level(y)


def chirps(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """Bird-like chirps: fast frequency glides of 2-6 kHz."""
    y, pos = np.zeros(n), 0
    while pos < n:
        m = min(n - pos, int(rng.uniform(0.03, 0.15) * sample_rate_hz))
        t = _t(m, sample_rate_hz)
        f0, f1 = rng.uniform(2000, 6000, 2).clip(max=sample_rate_hz / 2 - 200)
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * max(t[-1], 1e-3)))
        y[pos : pos + m] += np.sin(phase) * np.hanning(m)
        pos += m + int(rng.exponential(0.2) * sample_rate_hz)
    return _level(y + 1e-3 * rng.standard_normal(n))


def beeps(n: int, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """Electronic beeps (alarms, devices): square-ish tones switched on and off."""
    f = rng.uniform(500, 3500)
    t = _t(n, sample_rate_hz)
    gate = (np.mod(t, rng.uniform(0.2, 1.0)) < rng.uniform(0.05, 0.2)).astype(float)
    return _level(gate * np.tanh(3 * np.sin(2 * np.pi * f * t)) + 1e-4)


GENERATORS: dict[str, Generator] = {
    "tone": tone,
    "chord": chord,
    "melody": melody,
    "drums": drums,
    "music": music,
    "white": _colour("white"),
    "pink": _colour("pink"),
    "brown": _colour("brown"),
    "hum": hum,
    "clicks": clicks,
    "sweep": sweep,
    "dtmf": dtmf,
    "ringback": ringback,
    "fan": fan,
    "traffic": traffic,
    "applause": applause,
    "typing": typing,
    "chirps": chirps,
    "beeps": beeps,
}
#: The kinds used as music-like background noise.
MUSIC_KINDS = ("chord", "melody", "drums", "music")


def generate(kind: str, duration_s: float, *, sample_rate_hz: int = 16000, rng: np.random.Generator) -> np.ndarray:
    """One sound of ``kind`` lasting ``duration_s`` seconds: ``(round(duration_s * sample_rate_hz),)`` float32."""
    if kind not in GENERATORS:
        raise ConfigError(f"sound kind {kind!r} is unknown: expected one of {', '.join(GENERATORS)}")
    n = int(round(duration_s * sample_rate_hz))
    if n < 1:
        raise ConfigError(f"duration_s={duration_s!r} gives no samples at {sample_rate_hz} Hz")
    y = GENERATORS[kind](n, sample_rate_hz=sample_rate_hz, rng=rng)
    return np.nan_to_num(np.asarray(y, np.float32)[:n])
