"""Classic frame-level features, computed by librosa (the reference).

Arrays in, arrays out: every function takes a mono float waveform ``y`` and
its ``sample_rate_hz`` and returns a ``(n_features, frames)`` matrix, with
librosa's defaults (``n_fft=2048``, ``hop_length=512``, ``center=True``), as
the seed systems' per-file pipelines used them. :func:`classic_frames`
computes them all from one STFT, which gives the same values as calling the
functions one by one.

Clips shorter than ``n_fft // 2 + 1`` samples raise
:class:`~emovox.errors.FeatureError` (librosa would pad them far beyond their
length); a librosa parameter error (e.g. spectral contrast bands above
Nyquist at 8 kHz) is re-raised as ``FeatureError``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import librosa
import numpy as np

from emovox.errors import FeatureError
from emovox.features.checks import check_finite, check_signal

N_FFT = 2048
HOP_LENGTH = 512


@contextmanager
def _librosa_errors(what: str) -> Iterator[None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "n_fft too large", "empty filters"
            yield
    except librosa.util.exceptions.ParameterError as exc:
        raise FeatureError(f"{what}: {exc}") from exc


def _gate(y: np.ndarray, sample_rate_hz: int, n_fft: int, what: str) -> np.ndarray:
    return check_signal(y, sample_rate_hz, min_samples=n_fft // 2 + 1, what=what)


def add_deltas(x: np.ndarray, *, width: int = 9) -> np.ndarray:
    """Stack ``x`` with its first and second deltas: ``(d, t)`` -> ``(3 d, t)``.

    ``librosa.feature.delta`` with ``width`` frames (odd); with fewer frames
    the width shrinks to the largest odd number that fits, and with fewer than
    3 frames the deltas are 0.
    """
    t = x.shape[-1]
    w = min(width, t if t % 2 else t - 1)
    if w < 3:
        zeros = np.zeros_like(x)
        return np.concatenate([x, zeros, zeros], axis=0)
    d1 = librosa.feature.delta(x, width=w, order=1)
    d2 = librosa.feature.delta(x, width=w, order=2)
    return np.concatenate([x, d1, d2], axis=0)


def mfcc(
    y: np.ndarray,
    *,
    sample_rate_hz: int,
    n_mfcc: int = 40,
    n_mels: int = 128,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    deltas: bool = False,
) -> np.ndarray:
    """MFCC (``librosa.feature.mfcc``), optionally with Δ and ΔΔ.

    Returns
    -------
    np.ndarray [shape=(n_mfcc, frames) or (3 * n_mfcc, frames)], float32
    """
    y = _gate(y, sample_rate_hz, n_fft, "mfcc")
    with _librosa_errors("mfcc"):
        m = librosa.feature.mfcc(
            y=y, sr=sample_rate_hz, n_mfcc=n_mfcc, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length
        )
        out = add_deltas(m) if deltas else m
    return check_finite(out.astype(np.float32), "mfcc")


def zero_crossing_rate(
    y: np.ndarray, *, sample_rate_hz: int, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH
) -> np.ndarray:
    """Fraction of sign changes per frame (``librosa.feature.zero_crossing_rate``), ``(1, frames)``."""
    y = _gate(y, sample_rate_hz, n_fft, "zero_crossing_rate")
    with _librosa_errors("zero_crossing_rate"):
        z = librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop_length)
    return z.astype(np.float32)


def rms(y: np.ndarray, *, sample_rate_hz: int, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Root-mean-square energy per frame (``librosa.feature.rms``), ``(1, frames)``, sample units."""
    y = _gate(y, sample_rate_hz, n_fft, "rms")
    with _librosa_errors("rms"):
        r = librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop_length)
    return r.astype(np.float32)


def log_mel(
    y: np.ndarray,
    *,
    sample_rate_hz: int,
    n_mels: int = 128,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Log-mel spectrogram in dB (``power_to_db(melspectrogram)``, ``ref=1``), ``(n_mels, frames)``."""
    y = _gate(y, sample_rate_hz, n_fft, "log_mel")
    with _librosa_errors("log_mel"):
        s = librosa.feature.melspectrogram(y=y, sr=sample_rate_hz, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
        db = librosa.power_to_db(s, top_db=top_db)
    return check_finite(db.astype(np.float32), "log_mel")


def chroma(
    y: np.ndarray, *, sample_rate_hz: int, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH, tuning: float | None = 0.0
) -> np.ndarray:
    """Chromagram (``librosa.feature.chroma_stft``), ``(12, frames)``, each frame max-normalised.

    ``tuning=0.0`` skips librosa's pitch-tuning estimate (meaningless for
    speech, and slow); ``None`` estimates it as librosa does by default.
    """
    y = _gate(y, sample_rate_hz, n_fft, "chroma")
    with _librosa_errors("chroma"):
        c = librosa.feature.chroma_stft(y=y, sr=sample_rate_hz, n_fft=n_fft, hop_length=hop_length, tuning=tuning)
    return check_finite(c.astype(np.float32), "chroma")


def spectral_contrast(
    y: np.ndarray, *, sample_rate_hz: int, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH
) -> np.ndarray:
    """Spectral contrast in dB (``librosa.feature.spectral_contrast``), ``(7, frames)``.

    Needs the top octave band (from 12.8 kHz) below Nyquist: 16 kHz works, 8 kHz raises.
    """
    y = _gate(y, sample_rate_hz, n_fft, "spectral_contrast")
    with _librosa_errors("spectral_contrast"):
        c = librosa.feature.spectral_contrast(y=y, sr=sample_rate_hz, n_fft=n_fft, hop_length=hop_length)
    return check_finite(c.astype(np.float32), "spectral_contrast")


def classic_frames(
    y: np.ndarray,
    *,
    sample_rate_hz: int,
    n_mfcc: int = 40,
    n_mels: int = 128,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    deltas: bool = False,
) -> dict[str, np.ndarray]:
    """All classic frame features from one STFT.

    Returns
    -------
    dict
        ``"mfcc"`` ``(n_mfcc or 3 n_mfcc, t)``, ``"zcr"`` ``(1, t)``, ``"rms"`` ``(1, t)``,
        ``"chroma"`` ``(12, t)``, ``"contrast"`` ``(7, t)``; float32, same values as the
        single functions.
    """
    y = _gate(y, sample_rate_hz, n_fft, "classic features")
    with _librosa_errors("classic features"):
        mag = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length))
        power = mag**2
        mel = librosa.feature.melspectrogram(S=power, sr=sample_rate_hz, n_mels=n_mels)
        m = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=n_mfcc)
        out = {
            "mfcc": add_deltas(m) if deltas else m,
            "zcr": librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop_length),
            "rms": librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop_length),
            "chroma": librosa.feature.chroma_stft(S=power, sr=sample_rate_hz, tuning=0.0),
            "contrast": librosa.feature.spectral_contrast(S=mag, sr=sample_rate_hz),
        }
    return {k: check_finite(v.astype(np.float32), f"classic feature {k!r}") for k, v in out.items()}
