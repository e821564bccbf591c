"""Preparing a signal for a model: decode and validate any input, then the artifact's preprocessing.

:func:`load_signal` turns a path, ``bytes``, a file object or an array of
samples into float32 mono ``(n,)`` at the model's rate (decoded, resampled,
validated: the one waveform gate of :mod:`emovox.audio.validate`).
:func:`prepare` applies what the artifact says training did to a whole clip
(silence trim, then :func:`condition`: band limit and normalisation);
:func:`condition` alone is what each window of a long recording gets.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from emovox.errors import AudioError, ConfigError
from emovox.inference.backends import ModelInfo

__all__ = ["is_array", "load_signal", "condition", "prepare"]


def is_array(source: Any) -> bool:
    """Whether ``source`` is an array of samples (anything with ``__array__`` but not a path or bytes)."""
    return isinstance(source, np.ndarray) or (
        hasattr(source, "__array__") and not isinstance(source, (str, bytes, os.PathLike))
    )


def load_signal(source: Any, *, sample_rate: int | None, sample_rate_hz: int) -> np.ndarray:
    """Any accepted input as float32 mono ``(n,)`` at ``sample_rate_hz`` (untrimmed).

    Parameters
    ----------
    source : path, bytes, file object or np.ndarray [shape=(n,) or (n, 1) or (1, n)]
        Integer PCM arrays are scaled to ``[-1, 1)``.
    sample_rate : int or None
        Rate of an array source in Hz (required for arrays, refused for the
        others, which carry their own rate).
    sample_rate_hz : int
        The model's rate in Hz.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]

    Raises
    ------
    ConfigError
        ``sample_rate`` missing for an array, or given for a file.
    AudioError
        The input cannot be decoded, is not mono, or is not a valid signal.
    """
    from emovox.audio import load_audio, resample, validate_signal
    from emovox.audio.validate import check_sample_rate

    sr = sample_rate_hz
    if is_array(source) and sample_rate is None:
        raise ConfigError(
            f"an array of samples carries no sample rate: pass it in Hz, e.g. "
            f"predict(y, sample_rate=48000) (the model resamples to its {sr} Hz)"
        )
    if is_array(source):
        raw = np.asarray(source)
        if np.issubdtype(raw.dtype, np.integer):  # PCM integers: scale to [-1, 1)
            y = raw.astype(np.float32) / float(-np.iinfo(raw.dtype).min)
        else:
            y = raw.astype(np.float32)
        if y.ndim == 2 and 1 in y.shape:
            y = y.reshape(-1)
        if y.ndim != 1:
            raise AudioError(f"a signal must be mono (n,), got shape {y.shape}: average the channels first")
        rate = int(check_sample_rate(sample_rate, "sample_rate"))
        if rate != sr:
            y = resample(y, orig_hz=rate, target_hz=sr)
        return validate_signal(np.asarray(y, np.float32), sr)
    if sample_rate is not None:
        raise ConfigError("sample_rate applies to arrays only: a file or bytes carries its own rate")
    return load_audio(source, sample_rate_hz=sr)


def condition(y: np.ndarray, info: ModelInfo) -> np.ndarray:
    """The artifact's per-window input conditioning of ``y`` ``(n,)``: band limit, then normalisation (as in training)."""
    if info.band_limit_hz:
        from emovox.audio.effects import band_limit

        y = band_limit(y, sample_rate_hz=info.sample_rate_hz, rate_hz=info.band_limit_hz)
    if info.normalize == "peak":
        from emovox.audio import normalize_peak

        return normalize_peak(y)
    if info.normalize == "loudness":
        from emovox.audio import normalize_loudness

        return normalize_loudness(y, sample_rate_hz=info.sample_rate_hz)
    return y


def prepare(y: np.ndarray, info: ModelInfo) -> np.ndarray:
    """The model's preprocessing of a whole clip ``(n,)``: silence trim, band limit, normalisation."""
    if info.trim_silence:
        from emovox.audio import trim_for_model

        y = trim_for_model(y, sample_rate_hz=info.sample_rate_hz)
    return condition(y, info)
