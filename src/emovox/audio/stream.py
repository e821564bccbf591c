"""Decode long recordings incrementally, in bounded memory.

:func:`stream_audio` reads soundfile blocks (WAV, FLAC, ...) or PyAV packets
(everything else), downmixes each to mono, resamples it with a streaming soxr
resampler (whose output equals one-shot :func:`~.effects.resample` of the
whole file) and yields fixed-size blocks.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import soundfile as sf
import soxr

from emovox.audio.decode import DECODE_ERRORS, SF_UNKNOWN_FRAMES, check_channels, iter_pyav, use_soundfile
from emovox.audio.effects import RESAMPLE_QUALITY, to_mono
from emovox.audio.integrity import check_integrity, truncated
from emovox.audio.source import AudioSource, Source, open_source
from emovox.audio.validate import check_positive, check_sample_rate
from emovox.errors import EmptyAudioError, InvalidSamplesError

#: Native-rate frames read from soundfile per step.
_READ_FRAMES = 65536


def stream_audio(
    source: Source,
    *,
    sample_rate_hz: int = 16000,
    block_s: float = 30.0,
) -> Iterator[np.ndarray]:
    """Yield consecutive mono blocks of a recording at ``sample_rate_hz``.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object
    sample_rate_hz : int > 0
        Output sample rate.
    block_s : float > 0
        Length of each yielded block in seconds (the last one may be shorter).

    Yields
    ------
    np.ndarray [shape=(round(block_s * sample_rate_hz),), dtype=float32]
        Concatenated, the blocks equal ``load_audio(source,
        sample_rate_hz=sample_rate_hz, min_duration_s=0)`` up to float
        rounding. Memory use is bounded by a few blocks, whatever the length.

    Raises
    ------
    AudioError
        As :func:`~emovox.audio.decode_audio`; corruption found mid-stream
        raises :class:`~emovox.errors.TruncatedAudioError` after the blocks
        before it were yielded.
    """
    target_hz = check_sample_rate(sample_rate_hz)
    block = max(1, int(round(check_positive(block_s, "block_s") * target_hz)))
    src = open_source(source)
    check_integrity(src)

    resampler: soxr.ResampleStream | None = None
    pending: list[np.ndarray] = []
    n_pending = 0
    n_total = 0
    for chunk, rate in _native_chunks(src):
        if not np.isfinite(chunk).all():
            raise InvalidSamplesError(
                f"audio in {src.name!r} contains NaN or infinite samples: fix or re-export the recording"
            )
        if resampler is None and rate != target_hz:
            resampler = soxr.ResampleStream(rate, target_hz, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        mono = to_mono(chunk)
        out = resampler.resample_chunk(mono, last=False) if resampler is not None else mono
        pending.append(out)
        n_pending += out.size
        n_total += chunk.shape[-1]
        while n_pending >= block:
            joined = np.concatenate(pending)
            yield joined[:block]
            rest = joined[block:]
            pending, n_pending = ([rest] if rest.size else []), rest.size
    if n_total == 0:
        raise EmptyAudioError(f"{src.kind} input {src.name!r} contains no samples: pass a recording with sound in it")
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        pending.append(tail)
        n_pending += tail.size
    joined = np.concatenate(pending) if pending else np.zeros(0, dtype=np.float32)
    for start in range(0, joined.size, block):
        yield joined[start : start + block]


def _native_chunks(src: AudioSource) -> Iterator[tuple[np.ndarray, int]]:
    """Decoded ``(channels, n)`` float32 chunks at the native rate."""
    if use_soundfile(src):
        try:
            fh = sf.SoundFile(src.target)
        except DECODE_ERRORS:
            fh = None
            src.rewind()
        if fh is not None and fh.frames >= SF_UNKNOWN_FRAMES:  # unknown length: libsndfile fails to read on
            fh.close()
            fh = None
            src.rewind()
        if fh is not None:
            check_channels(src, fh.channels)
            yield from _soundfile_chunks(src, fh)
            return
    yield from iter_pyav(src)


def _soundfile_chunks(src: AudioSource, fh: sf.SoundFile) -> Iterator[tuple[np.ndarray, int]]:
    """Read an open SoundFile block by block, mapping failures to AudioError."""
    n_read = 0
    with fh:
        rate, declared = int(fh.samplerate), fh.frames
        while True:
            try:
                data = fh.read(_READ_FRAMES, dtype="float32", always_2d=True)
            except DECODE_ERRORS as exc:
                raise truncated(src, f"decoding stopped after {n_read / rate:.2f} s") from exc
            if data.shape[0] == 0:
                break
            n_read += data.shape[0]
            yield data.T, rate
    if declared - n_read > max(0.05 * rate, 0.02 * declared):
        raise truncated(src, f"decoded {n_read} of the {declared} frames its header declares")
