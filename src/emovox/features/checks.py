"""The feature layer's input checks.

Waveforms go through the one gate, :func:`emovox.audio.validate.validate_waveform`;
its errors are re-raised as :class:`FeatureError` with the same message.
"""

from __future__ import annotations

import numpy as np

from emovox.audio.validate import validate_waveform
from emovox.errors import AudioError, ConfigError, FeatureError


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
        A bad sample rate, or anything :func:`~emovox.audio.validate.validate_waveform`
        rejects (not a mono float array, no samples, non-finite samples, fewer
        than ``min_samples`` samples), with the gate's message.
    """
    if isinstance(sample_rate_hz, bool) or not isinstance(sample_rate_hz, (int, np.integer)) or sample_rate_hz <= 0:
        raise FeatureError(
            f"sample_rate_hz={sample_rate_hz!r} is not a positive integer; pass e.g. sample_rate_hz=16000"
        )
    try:
        y = validate_waveform(
            y, mono=True, min_samples=min_samples, sample_rate_hz=float(sample_rate_hz), needed_by=what
        )
    except (AudioError, ConfigError) as error:  # the gate's message, as the feature layer's error type
        raise FeatureError(str(error)) from error
    return np.ascontiguousarray(y, dtype=np.float32)


def check_finite(x: np.ndarray, what: str) -> np.ndarray:
    """Raise :class:`FeatureError` if ``x`` has NaN/inf values (never return NaN silently)."""
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise FeatureError(f"{what} gave {bad} non-finite value(s); the clip is probably too short or silent")
    return x
