"""Long recordings: block-by-block decoding, voice activity detection, windows and smoothing -> a timeline.

:func:`run_timeline` is the work behind
:meth:`~emovox.inference.predictor.Predictor.predict_timeline`: the recording
arrives in blocks (:func:`signal_blocks`), a streaming voice activity detector
finds speech segments, each segment is cut into windows, the windows are
classified in batches and smoothed (:class:`~emovox.inference.timeline.SmoothingStream`),
and each segment is reported as soon as it is final. Memory holds about one
decoding block plus one speech turn (:class:`_Buffer`).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from emovox.audio.vad import VoiceDetector
from emovox.errors import ConfigError
from emovox.inference.backends import ModelInfo
from emovox.inference.gate import SPEECH_PROBABILITY, SpeechGate, quality_warnings
from emovox.inference.prepare import condition, is_array
from emovox.inference.results import Prediction, Timeline, prediction_from_probs
from emovox.inference.timeline import SmoothingStream, window_spans, window_starts
from emovox.inference.windows import fit_window

__all__ = [
    "PROGRESS_STEP_S",
    "TIMELINE_WINDOW_S",
    "ProgressCallback",
    "TimelineModel",
    "signal_blocks",
    "duration_for_progress",
    "run_timeline",
]

#: Variable-length models: default timeline window (s).
TIMELINE_WINDOW_S = 3.0
#: A timeline reports progress after at most this many seconds of audio.
PROGRESS_STEP_S = 2.0
#: ``progress(done_s, total_s)``: seconds of audio analysed, and the recording's length (``None``: unknown).
ProgressCallback = Callable[[float, "float | None"], None]


class TimelineModel(Protocol):
    """What :func:`run_timeline` needs of a predictor (a :class:`~emovox.inference.predictor.Predictor` is one)."""

    @property
    def info(self) -> ModelInfo: ...

    @property
    def labels(self) -> tuple[str, ...]: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def threshold(self) -> float: ...

    @property
    def gate(self) -> SpeechGate | None: ...

    @property
    def measured(self) -> dict[str, Any]: ...

    def probabilities(self, waveforms: np.ndarray | Sequence[np.ndarray]) -> np.ndarray: ...


class _Buffer:
    """Audio of a stream kept from sample ``start`` on (for cutting VAD segments)."""

    def __init__(self) -> None:
        self.blocks: deque[np.ndarray] = deque()
        self.start = 0
        self.size = 0

    def append(self, block: np.ndarray) -> None:
        self.blocks.append(block)
        self.size += block.size

    def get(self, s: int, e: int) -> np.ndarray:
        out, pos = [], self.start
        for b in self.blocks:
            lo, hi = max(s, pos), min(e, pos + b.size)
            if lo < hi:
                out.append(b[lo - pos : hi - pos])
            pos += b.size
            if pos >= e:
                break
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def drop_before(self, s: int) -> None:
        while self.blocks and self.start + self.blocks[0].size <= s:
            b = self.blocks.popleft()
            self.start += b.size
            self.size -= b.size


class _RecordingDetector:
    """A voice activity detector that keeps every frame's speech probability and meters the quality.

    It wraps the detector a :class:`~emovox.audio.vad.StreamingVAD` runs and
    sees exactly the blocks it is fed, so frames line up with the recording.
    """

    def __init__(self, detector: VoiceDetector) -> None:
        from emovox.audio.quality import QualityMeter

        self.detector = detector
        self.frame_samples = detector.frame_samples
        self.sample_rate_hz = getattr(detector, "sample_rate_hz", 16000)
        self.meter = QualityMeter()
        self._probs = np.zeros(1024, np.float32)  # grown by doubling: one copy per doubling, not per call
        self._n = 0

    def reset(self) -> None:
        from emovox.audio.quality import QualityMeter

        self.detector.reset()
        self.meter = QualityMeter()
        self._n = 0

    def probabilities(self, y: np.ndarray, *, final: bool = False) -> np.ndarray:
        p = self.detector.probabilities(y, final=final)
        self.meter.update(y, p if self.frame_samples == 512 else None)
        p32 = np.asarray(p, np.float32).reshape(-1)
        if self._n + p32.size > self._probs.size:
            grown = np.zeros(max(2 * self._probs.size, self._n + p32.size), np.float32)
            grown[: self._n] = self._probs[: self._n]
            self._probs = grown
        self._probs[self._n : self._n + p32.size] = p32
        self._n += p32.size
        return p

    @property
    def seconds_seen(self) -> float:
        """Seconds of the recording whose frames have a speech probability so far."""
        return self._n * self.frame_samples / self.sample_rate_hz

    def speech_seconds(self, start_s: float, end_s: float) -> float:
        """Seconds of speech frames (probability >= :data:`SPEECH_PROBABILITY`) starting in ``[start_s, end_s)``."""
        frame_s = self.frame_samples / self.sample_rate_hz
        probs = self._probs[: self._n]
        lo, hi = int(np.ceil(start_s / frame_s - 1e-9)), int(np.ceil(end_s / frame_s - 1e-9))
        return float(np.count_nonzero(probs[lo:hi] >= SPEECH_PROBABILITY) * frame_s)


def signal_blocks(
    source: Any,
    *,
    sample_rate: int | None,
    sample_rate_hz: int,
    block_s: float,
    load: Callable[[Any], np.ndarray],
) -> Iterator[np.ndarray]:
    """A recording as float32 mono blocks of about ``block_s`` seconds at ``sample_rate_hz``.

    An array is loaded whole by ``load(source)`` and cut into blocks; a path,
    bytes or a file object is decoded block by block
    (:func:`~emovox.audio.stream_audio`). ``sample_rate`` (Hz) is for arrays
    only: given for another source it is a :class:`~emovox.errors.ConfigError`.
    """
    if is_array(source):
        y = load(source)
        step = max(1, int(block_s * sample_rate_hz))
        return (y[i : i + step] for i in range(0, y.size, step))
    if sample_rate is not None:
        raise ConfigError("sample_rate applies to arrays only: a file or bytes carries its own rate")
    from emovox.audio import stream_audio

    return stream_audio(source, sample_rate_hz=sample_rate_hz, block_s=block_s)


def duration_for_progress(source: Any, sample_rate: int | None) -> float | None:
    """A recording's length in seconds before decoding it (``None`` for a file object that cannot seek)."""
    if is_array(source):
        assert sample_rate is not None  # signal_blocks() refused an array without its rate
        return float(np.asarray(source).reshape(-1).size / sample_rate)
    from emovox.audio import audio_duration_s

    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        return float(audio_duration_s(source))
    seekable = getattr(source, "seekable", None)
    if seekable is None or not seekable():
        return None
    position = source.tell()
    try:
        return float(audio_duration_s(source))
    finally:
        source.seek(position)


def run_timeline(
    model: TimelineModel,
    blocks: Iterable[np.ndarray],
    *,
    window: int,
    hop: int,
    smoother: SmoothingStream,
    detector: VoiceDetector,
    total_s: float | None = None,
    progress: ProgressCallback | None = None,
    on_segment: Callable[[int, Prediction], None] | None = None,
) -> Timeline:
    """The timeline of a recording given as blocks (see :meth:`~emovox.inference.predictor.Predictor.predict_timeline`).

    Parameters
    ----------
    model : TimelineModel
        Classifies the windows (``probabilities``) and answers (labels, threshold, gate).
    blocks : iterable of np.ndarray [shape=(n_i,)]
        The recording at ``model.info.sample_rate_hz``, in order.
    window, hop : int
        Analysis window and hop in samples (``0 < hop <= window``).
    smoother : SmoothingStream
        A fresh smoother (its size and the longest pause it smooths across).
    detector : VoiceDetector
        The voice activity detector (reset here).
    total_s : float or None
        The recording's length for ``progress`` (``None``: unknown).
    progress, on_segment : callable or None
        As ``predict_timeline`` documents them; ``progress(0, total_s)`` is the caller's.

    Returns
    -------
    Timeline
    """
    from emovox.audio.vad import StreamingVAD

    info = model.info
    sr = info.sample_rate_hz
    recorder = _RecordingDetector(detector)
    stream = StreamingVAD(sample_rate_hz=sr, vad=recorder)
    buf = _Buffer()
    spans: list[tuple[float, float]] = []
    queue: list[np.ndarray] = []
    segments: list[Prediction] = []
    gate = model.gate

    def add_segment(s: int, e: int) -> None:
        y = buf.get(s, e)
        if y.size == 0:
            return
        starts = window_starts(y.size, window=window, hop=hop)
        for (a, b), st in zip(window_spans(starts, window=window, n_samples=y.size), starts):
            queue.append(fit_window(condition(y[st : st + window], info), info))
            spans.append(((s + a) / sr, (s + b) / sr))

    def emit(end: bool = False) -> None:
        """Segments whose smoothing neighbours and speech frames are all known."""
        limit = None
        if not end:  # a segment's speech time needs the detector's frames up to its end
            seen_s = recorder.seconds_seen
            limit = smoother.n_final
            while limit < len(smoother) and spans[limit][1] <= seen_s:
                limit += 1
        for i, row in smoother.pop_final(end=end, limit=limit):
            a, b = spans[i]
            speech_s = recorder.speech_seconds(a, b)
            verdict = gate.verdict(speech_s) if gate is not None else None
            segments.append(
                prediction_from_probs(
                    row, model.labels, threshold=model.threshold, start_s=a, end_s=b, speech_s=speech_s, gate=verdict
                )
            )
            if on_segment is not None:
                on_segment(i, segments[-1])

    def run(force: bool = False) -> None:
        if queue and (force or len(queue) >= model.batch_size):
            smoother.add(model.probabilities(queue), spans[len(smoother) :])
            queue.clear()
            emit()

    step = max(1, int(PROGRESS_STEP_S * sr))
    for decoded in blocks:
        decoded = np.asarray(decoded, np.float32).reshape(-1)
        # fed in pieces of PROGRESS_STEP_S at most: the same segments, more frequent progress
        for i in range(0, decoded.size, step):
            block = decoded[i : i + step]
            buf.append(block)
            for s, e in stream.push(block):
                add_segment(s, e)
                run()
            buf.drop_before(stream.keep_from)
            if progress is not None:
                done_s = stream.total_samples / sr
                progress(min(done_s, total_s) if total_s is not None else done_s, total_s)
    for s, e in stream.finish():
        add_segment(s, e)
    run(force=True)
    emit(end=True)
    duration_s = stream.total_samples / sr
    quality = recorder.meter.result()
    warnings = quality_warnings(quality, model.measured)
    timeline = Timeline(tuple(segments), duration_s, model.labels, model.threshold, quality, warnings)
    if progress is not None:
        progress(duration_s, duration_s)
    return timeline
