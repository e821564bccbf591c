"""The one input gate of the feature layer."""

from __future__ import annotations

import numpy as np

from emovox.errors import FeatureError


def check_signal(y: object, sample_rate_hz: object, *, min_samples: int = 1, what: str = "features") -> np.ndarray:
    """Validate a mono waveform and return it as contiguous float32 ``(n,)``.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono float samples.
    sample_rate_hz : int
        Sample rate in Hz (a positive integer).
    min_samples : int
        Fewest samples ``what`` can be computed from.
    what : str
        Name used in the error message (e.g. ``"feature set 'classic'"``).

    Raises
    ------
    FeatureError
        Not a 1-D float array, non-finite samples, a bad sample rate, or fewer
        than ``min_samples`` samples.
    """
    if isinstance(sample_rate_hz, bool) or not isinstance(sample_rate_hz, (int, np.integer)) or sample_rate_hz <= 0:
        raise FeatureError(
            f"sample_rate_hz={sample_rate_hz!r} is not a positive integer; pass e.g. sample_rate_hz=16000"
        )
    if not isinstance(y, np.ndarray):
        raise FeatureError(
            f"expected a NumPy array of samples, got {type(y).__name__}; load audio with emovox.audio.load_audio"
        )
    if y.ndim != 1:
        raise FeatureError(
            f"expected mono samples of shape (n,), got shape {y.shape}; mix down with emovox.audio.to_mono"
        )
    if not np.issubdtype(y.dtype, np.floating):
        raise FeatureError(f"expected float samples in [-1, 1], got dtype {y.dtype}; convert integers with y / 32768")
    if y.shape[0] < min_samples:
        raise FeatureError(
            f"clip has {y.shape[0]} samples ({y.shape[0] / sample_rate_hz:.3f} s at {sample_rate_hz} Hz); "
            f"{what} needs at least {min_samples}; pad the clip or drop it"
        )
    if not np.all(np.isfinite(y)):
        raise FeatureError("samples contain NaN or infinite values; clean the signal (emovox.audio.validate_signal)")
    return np.ascontiguousarray(y, dtype=np.float32)


def check_finite(x: np.ndarray, what: str) -> np.ndarray:
    """Raise :class:`FeatureError` if ``x`` has NaN/inf values (never return NaN silently)."""
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise FeatureError(f"{what} gave {bad} non-finite value(s); the clip is probably too short or silent")
    return x
