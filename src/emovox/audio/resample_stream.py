"""Audio that arrives in pieces: chunks of any dtype, layout and length to mono float32 at one rate.

:class:`ChunkResampler` is the input stage of the streaming engine
(:mod:`emovox.inference.streaming`): each chunk is checked, scaled (PCM
integers to [-1, 1)), downmixed and resampled with one streaming soxr
resampler whose state runs across chunks, so the output does not depend on
how the input was cut (concatenated, it equals a one-shot
:func:`~emovox.audio.effects.resample` of the whole signal).
"""

from __future__ import annotations

import math

import numpy as np
import soxr

from emovox.audio.effects import RESAMPLE_QUALITY
from emovox.audio.validate import check_sample_rate
from emovox.errors import AudioError, ConfigError, InvalidSamplesError

__all__ = ["ChunkResampler", "chunk_to_mono"]

#: Input rates accepted by streams (Hz).
MIN_RATE_HZ, MAX_RATE_HZ = 1000, 384000


def chunk_to_mono(samples: object) -> np.ndarray:
    """One chunk as float32 mono ``(n,)``.

    Parameters
    ----------
    samples : array-like [shape=(n,) or (n, channels)]
        Floating point samples in [-1, 1], or signed PCM integers (int16,
        int32, ...) scaled by their full range; channels are averaged.

    Raises
    ------
    AudioError
        Unsupported dtype, more than two dimensions, NaN or infinite samples.
    """
    x = np.asarray(samples)
    if x.dtype.kind == "i":
        y = x.astype(np.float32) / np.float32(-float(np.iinfo(x.dtype).min))
    elif x.dtype.kind == "f":
        y = x.astype(np.float32, copy=False)
    else:
        raise AudioError(
            f"audio samples of dtype {x.dtype} are not supported: pass float32/float64 in [-1, 1] "
            "or signed PCM integers (int16)"
        )
    if y.ndim == 2:
        y = y.mean(axis=1, dtype=np.float32) if y.shape[1] != 1 else y[:, 0]
    elif y.ndim != 1:
        raise AudioError(f"an audio chunk must be shaped (n,) or (n, channels), got shape {x.shape}")
    if y.size and not np.isfinite(y).all():
        raise InvalidSamplesError("the audio chunk contains NaN or infinite samples")
    return np.ascontiguousarray(y, dtype=np.float32)


class ChunkResampler:
    """Consecutive chunks of one stream -> mono float32 at ``target_hz``, state kept across chunks.

    Parameters
    ----------
    target_hz : int
        Output rate.

    Notes
    -----
    The input rate is fixed by the first chunk; a different rate later raises
    :class:`ConfigError` (a stream has one rate). soxr delays its output by a
    few milliseconds; :meth:`flush` returns the delayed tail at the end.
    Not thread-safe: one resampler per stream.
    """

    def __init__(self, *, target_hz: int) -> None:
        self.target_hz = int(check_sample_rate(target_hz, "target_hz"))
        self.rate_hz: float | None = None
        self.samples_in = 0
        self._soxr: soxr.ResampleStream | None = None
        self._flushed = False

    def _check_rate(self, sample_rate_hz: object) -> float:
        rate = check_sample_rate(sample_rate_hz, "sample_rate_hz")
        if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
            raise ConfigError(
                f"sample_rate_hz={sample_rate_hz!r} is out of range: expected {MIN_RATE_HZ} to {MAX_RATE_HZ} Hz"
            )
        if self.rate_hz is None:
            self.rate_hz = rate
            if not math.isclose(rate, self.target_hz):
                self._soxr = soxr.ResampleStream(rate, self.target_hz, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        elif rate != self.rate_hz:
            raise ConfigError(
                f"sample_rate_hz changed from {self.rate_hz:g} to {rate:g} Hz mid-stream: "
                "a stream has one rate; start a new one"
            )
        return rate

    def push(self, samples: object, sample_rate_hz: object) -> np.ndarray:
        """Next chunk -> its resampled mono samples ``(m,)`` float32 (``m`` may be 0)."""
        if self._flushed:
            raise ConfigError("the stream was closed: start a new one")
        self._check_rate(sample_rate_hz)
        y = chunk_to_mono(samples)
        self.samples_in += y.size
        if self._soxr is None or y.size == 0:
            return y
        return self._soxr.resample_chunk(y, last=False)

    def flush(self) -> np.ndarray:
        """End of the stream: the resampler's delayed tail ``(m,)``."""
        self._flushed = True
        if self._soxr is None:
            return np.zeros(0, np.float32)
        return self._soxr.resample_chunk(np.zeros(0, np.float32), last=True)

    @property
    def seconds_in(self) -> float:
        """Seconds of input pushed so far (at the input rate)."""
        return self.samples_in / self.rate_hz if self.rate_hz else 0.0
