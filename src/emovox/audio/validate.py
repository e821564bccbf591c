"""The one validation gate for waveforms, and checks of audio parameters.

Every decoded signal and every array handed to emovox's DSP, feature layer,
augmentations or Predictor passes :func:`validate_waveform` (directly, or
through :func:`validate_signal`, which adds the sample rate and a minimum
duration); parameters pass :func:`check_sample_rate` and
:func:`check_positive`. The feature layer and the augmentations re-raise the
gate's message as their own error type (:class:`~emovox.errors.FeatureError`,
:class:`~emovox.errors.ConfigError`). Errors are :mod:`emovox.errors` classes
with one-line messages quoting the offending value and saying what to do.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from emovox.errors import ConfigError, EmptyAudioError, InvalidSamplesError, TooShortError

#: More channels than this means the array is probably ``(n, channels)``.
MAX_CHANNELS = 64


def validate_waveform(
    y: object,
    *,
    mono: bool = False,
    min_samples: int = 1,
    sample_rate_hz: float | None = None,
    name: str | None = None,
    needed_by: str | None = None,
) -> np.ndarray:
    """The one waveform gate: check an array of samples, return it as float32.

    Every place in emovox that accepts a waveform (decoding, the DSP, the
    feature layer, augmentation, the Predictor) checks it here, so the same
    bad array gets the same one-line message everywhere.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
        Floating-point samples, nominally in [-1, 1].
    mono : bool
        Require shape ``(n,)``.
    min_samples : int >= 1
        Fewest samples accepted.
    sample_rate_hz : float > 0, optional
        Rate of ``y`` in Hz, only to quote the duration in messages.
    name : str, optional
        Where the signal came from (e.g. a file name), quoted in messages.
    needed_by : str, optional
        What needs ``min_samples`` samples (e.g. ``"feature set 'classic'"``),
        quoted in messages.

    Returns
    -------
    np.ndarray [shape=y.shape, dtype=float32]
        ``y`` itself when it already is float32, else a float32 copy.

    Raises
    ------
    ConfigError
        ``y`` is not a real floating-point array of an accepted shape.
    EmptyAudioError
        ``y`` holds no samples.
    InvalidSamplesError
        ``y`` contains NaN or infinity.
    TooShortError
        ``y`` has fewer than ``min_samples`` samples.
    """
    where = f" in {name!r}" if name else ""
    if not isinstance(y, np.ndarray):
        raise ConfigError(f"audio must be a numpy array, got {type(y).__name__}: convert it with np.asarray(y)")
    if y.dtype.kind != "f":
        raise ConfigError(
            f"audio must be floating point, got dtype {y.dtype}: scale integer PCM, "
            "e.g. y.astype(np.float32) / 32768 for int16"
        )
    if mono and y.ndim != 1:
        raise ConfigError(
            f"audio{where} must be mono samples of shape (n,), got shape {y.shape}: mix down with emovox.audio.to_mono"
        )
    if y.ndim not in (1, 2):
        raise ConfigError(f"audio must have shape (n,) or (channels, n), got shape {y.shape}")
    if y.ndim == 2 and y.shape[0] > MAX_CHANNELS:
        raise ConfigError(
            f"audio of shape {y.shape} has {y.shape[0]} channels (more than {MAX_CHANNELS}): "
            "pass (channels, n), e.g. y.T for soundfile's (n, channels)"
        )
    if y.size == 0:
        raise EmptyAudioError(f"audio{where} contains no samples: pass a recording with sound in it")
    y = y.astype(np.float32, copy=False)
    if not np.isfinite(y).all():
        bad = int(y.size - np.count_nonzero(np.isfinite(y)))
        raise InvalidSamplesError(
            f"audio{where} contains {bad} NaN or infinite samples: fix or re-export the recording"
        )
    n = y.shape[-1]
    if n < min_samples:
        at = f" ({n / sample_rate_hz:.3f} s at {sample_rate_hz:g} Hz)" if sample_rate_hz else ""
        raise TooShortError(
            f"clip{where} has {n} samples{at}; {needed_by or 'this step'} needs at least {min_samples}: "
            "pad the clip or drop it"
        )
    return y


def validate_signal(
    y: np.ndarray,
    sample_rate_hz: float,
    *,
    min_duration_s: float = 0.05,
    name: str | None = None,
    mono: bool = False,
) -> np.ndarray:
    """Check a waveform and its sample rate and return it as float32.

    :func:`validate_waveform` plus a minimum duration in seconds.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
        Floating-point samples, nominally in [-1, 1].
    sample_rate_hz : float > 0
        Sample rate of ``y``.
    min_duration_s : float >= 0
        Shortest clip accepted, in seconds.
    name : str, optional
        Where the signal came from, quoted in error messages.
    mono : bool
        Require shape ``(n,)``.

    Returns
    -------
    np.ndarray [shape=y.shape, dtype=float32]
        ``y`` itself when it already is float32, else a float32 copy.

    Raises
    ------
    ConfigError
        ``y`` is not a real floating-point 1-D or 2-D array (1-D when
        ``mono``), or the sample rate or minimum duration is invalid.
    EmptyAudioError
        ``y`` holds no samples.
    InvalidSamplesError
        ``y`` contains NaN or infinity.
    TooShortError
        ``y`` is shorter than ``min_duration_s``.
    """
    check_sample_rate(sample_rate_hz)
    check_non_negative(min_duration_s, "min_duration_s")
    y = validate_waveform(y, mono=mono, sample_rate_hz=sample_rate_hz, name=name)
    duration_s = y.shape[-1] / float(sample_rate_hz)
    if duration_s < min_duration_s:
        where = f" in {name!r}" if name else ""
        raise TooShortError(
            f"audio{where} lasts {duration_s:.3f} s, shorter than the minimum {min_duration_s:g} s: "
            "pass a longer clip or lower min_duration_s"
        )
    return y


def check_sample_rate(sample_rate_hz: object, what: str = "sample_rate_hz") -> float:
    """Require a finite, positive sample rate in Hz; return it as a float."""
    return check_positive(sample_rate_hz, what)


def check_positive(value: object, what: str) -> float:
    """Require a finite real number > 0; return it as a float."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)) or value <= 0:
        hint = ": pass a rate in Hz, e.g. 16000" if what.endswith("_hz") else ""
        raise ConfigError(f"{what} must be a positive number, got {value!r}{hint}")
    return float(value)


def check_non_negative(value: object, what: str) -> float:
    """Require a finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)) or value < 0:
        raise ConfigError(f"{what} must be a number >= 0, got {value!r}")
    return float(value)
