"""The one entry point from an audio source to an analysable waveform."""

from __future__ import annotations

import numpy as np

import emovox.audio.effects as effects
from emovox.audio.decode import decode_audio
from emovox.audio.denoise import spectral_gate
from emovox.audio.source import Source
from emovox.audio.validate import check_non_negative, check_sample_rate, validate_signal
from emovox.errors import ConfigError, TooShortError

#: Accepted values of ``load_audio(normalize=...)``.
NORMALIZE_MODES = (None, "peak", "loudness")


def load_audio(
    source: Source,
    *,
    sample_rate_hz: int = 16000,
    normalize: str | None = None,
    trim_silence: bool = False,
    denoise: bool = False,
    min_duration_s: float = 0.05,
) -> np.ndarray:
    """Decode, check and prepare audio for analysis.

    Steps, in order: decode (:func:`decode_audio`), downmix by mean, resample
    with soxr HQ, optional spectral-gating denoise, optional silence trim
    (40 dB below the loudest 25 ms frame), optional normalisation, and the
    minimum-duration check on the result.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object
        WAV, FLAC, Ogg Vorbis/Opus, MP3, WebM/Opus, M4A/AAC, ...
    sample_rate_hz : int > 0
        Output sample rate.
    normalize : {None, "peak", "loudness"}
        ``"peak"`` scales the largest sample to 1.0; ``"loudness"`` scales to
        -23 LUFS (ITU-R BS.1770-4 K-weighted, gated), lowering the gain if
        the peak would exceed 1.0.
    trim_silence : bool
        Cut leading and trailing silence (see :func:`~emovox.audio.effects.trim_silence`).
    denoise : bool
        Apply :func:`~emovox.audio.denoise.spectral_gate`.
    min_duration_s : float >= 0
        Shortest result accepted, in seconds.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
        Finite mono samples at ``sample_rate_hz``.

    Raises
    ------
    ConfigError
        Invalid ``sample_rate_hz``, ``normalize`` or ``min_duration_s``.
    AudioError
        Missing file, and the subclasses raised by :func:`decode_audio`.
    TooShortError
        The (trimmed) result is shorter than ``min_duration_s``.
    """
    target_hz = check_sample_rate(sample_rate_hz)
    check_non_negative(min_duration_s, "min_duration_s")
    if normalize not in NORMALIZE_MODES:
        raise ConfigError(f"normalize must be None, 'peak' or 'loudness', got {normalize!r}")

    y, native_hz = decode_audio(source)
    n_native = y.shape[-1]
    y = effects.resample(effects.to_mono(y), orig_hz=native_hz, target_hz=target_hz)
    if y.size == 0:
        raise TooShortError(
            f"audio in {_name(source)!r} has {n_native} samples at {native_hz} Hz, none left at "
            f"{target_hz:g} Hz: pass a longer clip"
        )
    if denoise:
        y = spectral_gate(y, sample_rate_hz=target_hz)
    if trim_silence:
        before_s = y.size / target_hz
        y = effects.trim_silence(y, sample_rate_hz=target_hz)
        if y.size / target_hz < min_duration_s:
            raise TooShortError(
                f"only {y.size / target_hz:.3f} s of {before_s:.3f} s remain after trimming silence, "
                f"less than min_duration_s={min_duration_s:g}: the clip is (nearly) silent; "
                "check the recording or pass trim_silence=False"
            )
    if normalize == "peak":
        y = effects.normalize_peak(y)
    elif normalize == "loudness":
        y = effects.normalize_loudness(y, sample_rate_hz=target_hz)
    return validate_signal(y, target_hz, min_duration_s=min_duration_s, name=_name(source))


def _name(source: Source) -> str:
    """Name of a source for messages, without reopening it."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if hasattr(source, "read"):
        return str(getattr(source, "name", "<file object>"))
    return str(source)
