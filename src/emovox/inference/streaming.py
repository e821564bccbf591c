"""Emotion of audio that arrives in pieces: a push-style streaming engine over the one Predictor.

>>> engine = StreamEngine(load_model())                       # doctest: +SKIP
>>> for chunk in microphone_chunks():                         # doctest: +SKIP
...     for event in engine.feed(chunk, 48000):
...         print(event.t, event.label, event.confidence)
>>> engine.close()                                            # doctest: +SKIP

Every ``hop_s`` seconds of audio the engine emits one :class:`StreamEvent`
for the window of the last ``window_s`` seconds (shorter at the start of the
stream). Input chunks may have any length, dtype and rate: they are converted
and resampled once, incrementally (:class:`~emovox.audio.resample_stream.ChunkResampler`).
The audio is cut at exact hop boundaries before it reaches the voice activity
detector and the model, so the events do not depend on how the input was
chunked. Voice activity detection runs incrementally (Silero, its recurrent
state carried between chunks, or WebRTC as fallback) with hysteresis; a
window with at least ``min_speech_s`` of speech is classified exactly as
:meth:`Predictor.predict` classifies a clip (the model's preprocessing,
calibrated softmax), its probabilities are averaged with those of the
preceding speech windows (``smoothing``, causal) and the ``unknown`` rule is
applied by :func:`~emovox.inference.results.prediction_from_probs`. Every
event carries the window's speech time (``speech_s``), the reason for a
non-answer and the window's quality flags. The speech gate's rules
(:mod:`emovox.inference.gate`) apply to each window: under
:data:`~emovox.inference.gate.NO_SPEECH_S` of speech it is reported as
``speech=False, label="no_speech", reason="no_speech", confidence=0.0,
scores={}`` and resets the smoothing; under ``min_speech_s`` it is
``unknown`` with reason ``too_little_speech``. See ``docs/streaming.md``.

Memory is bounded: a ring buffer of ``max_buffer_s`` seconds, the speech
flags of one window and the smoothing history, whatever the stream length.

Thread-safety: an engine holds the state of one stream and is not thread-safe
(one engine per stream, fed from one thread at a time). Many engines in many
threads may share one :class:`Predictor`: it is stateless for
:meth:`Predictor.probabilities`, ONNX Runtime's ``InferenceSession.run`` is
thread-safe, and the torch backend runs an eval-mode module under
``torch.inference_mode`` (no state written). Each engine has its own voice
activity detector state (the Silero session itself is shared).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import TYPE_CHECKING

import numpy as np

from emovox.audio.resample_stream import ChunkResampler
from emovox.audio.vad import VoiceDetector
from emovox.errors import ConfigError
from emovox.inference.gate import MIN_EMOTION_S, NO_SPEECH_S, SPEECH_PROBABILITY
from emovox.inference.results import NO_SPEECH, prediction_from_probs
from emovox.inference.scores import softmax

if TYPE_CHECKING:
    from emovox.audio.quality import Quality
    from emovox.inference.predictor import Predictor

__all__ = ["StreamEngine", "StreamEvent", "STREAM_VADS"]

#: Accepted ``vad`` values: a detector name, or ``"off"`` (every window is speech).
STREAM_VADS = ("auto", "silero", "webrtc", "off")
#: Shortest hop (s): one model call per hop.
MIN_HOP_S = 0.1
#: Shortest window (s): the predictor's minimum input (shorter input is tiled up to it).
MIN_WINDOW_S = 0.5
#: Longest window (s): what a variable-length model takes whole.
MAX_WINDOW_S = 30.0
#: VAD hysteresis: speech starts at ``threshold`` and continues above ``threshold - _HYSTERESIS``.
_HYSTERESIS = 0.15


@dataclass(frozen=True)
class StreamEvent:
    """The emotion of one window of a stream.

    Attributes
    ----------
    t : float
        Stream time (s of audio, at the model's rate, since the start) at
        which the event was emitted: the end of its window.
    start_s, end_s : float
        The window, ``end_s - start_s <= window_s`` (shorter at the start).
    speech : bool
        Whether the voice activity detector found speech in the window (at
        least :data:`~emovox.inference.gate.NO_SPEECH_S`).
    label : str
        Smoothed top class; ``"unknown"`` under the model's threshold or with
        less than ``min_speech_s`` of speech; ``"no_speech"`` when ``speech``
        is false.
    confidence : float
        Smoothed calibrated probability of the top class; 0.0 without speech.
    scores : Mapping[str, float]
        Smoothed calibrated probability of every class (sums to 1); empty
        without speech.
    speech_s : float
        Seconds of speech in the window.
    reason : str or None
        Why there is no emotion (:data:`emovox.inference.results.REASONS`).
    quality : Quality or None
        The window's quality flags (:mod:`emovox.audio.quality`); ``None`` with ``vad="off"``.
    """

    t: float
    start_s: float
    end_s: float
    speech: bool
    label: str
    confidence: float
    scores: Mapping[str, float] = field(default_factory=dict)
    speech_s: float = 0.0
    reason: str | None = None
    quality: Quality | None = None

    def to_dict(self, *, digits: int = 4) -> dict:
        """JSON-ready ``{t, start_s, end_s, speech, label, confidence, scores, speech_s, reason, quality}``."""
        return {
            "t": round(float(self.t), 3),
            "start_s": round(float(self.start_s), 3),
            "end_s": round(float(self.end_s), 3),
            "speech": bool(self.speech),
            "label": self.label,
            "confidence": round(float(self.confidence), digits),
            "scores": {k: round(float(v), digits) for k, v in self.scores.items()},
            "speech_s": round(float(self.speech_s), 3),
            "reason": self.reason,
            "quality": self.quality.to_dict() if self.quality is not None else None,
        }


def _seconds(value: object, what: str, *, lo: float, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ConfigError(f"{what}={value!r} must be a number of seconds")
    if not lo <= float(value) <= hi:
        bound = f"in [{lo:g}, {hi:g}]" if math.isfinite(hi) else f">= {lo:g}"
        raise ConfigError(f"{what}={value!r} must be {bound} seconds")
    return float(value)


class StreamEngine:
    """Push audio chunks in, get an emotion event per hop out.

    Parameters
    ----------
    predictor : Predictor
        The model (fixed-length or variable-length); may be shared by engines
        in other threads.
    window_s : float
        Analysis window in seconds, in [0.5, 30] (a fixed-length model pads or
        windows it as :meth:`Predictor.predict` does).
    hop_s : float
        One event every ``hop_s`` seconds of audio; in [0.1, ``window_s``].
    vad : str
        ``"auto"`` (Silero, else WebRTC), ``"silero"``, ``"webrtc"`` or
        ``"off"`` (every window counts as speech).
    smoothing : int
        Probabilities are averaged over this many consecutive speech windows,
        the current one and those before it (1 = off).
    max_buffer_s : float or None
        Audio kept in the ring buffer (default ``window_s + hop_s``); at least
        ``window_s``.
    min_speech_s : float
        Speech a window needs for an emotion (less is ``unknown``, reason
        ``too_little_speech``); in [0, ``window_s``]. Under
        :data:`~emovox.inference.gate.NO_SPEECH_S` (or ``min_speech_s`` if
        smaller) a window is ``no_speech``.
    vad_threshold : float
        Speech probability that starts speech, in (0, 1); speech continues
        down to 0.15 under it. The default (0.45) ends speech where the
        speech gate stops counting frames (:data:`~emovox.inference.gate.SPEECH_PROBABILITY`).

    Attributes
    ----------
    vad : str
        The detector in use: ``"silero"``, ``"webrtc"`` (``"auto"`` resolved) or ``"off"``.
    sample_rate_hz : int
        The model's rate: the engine's time axis.
    events_emitted : int
        Events returned so far by :meth:`feed` and :meth:`close`.
    seconds_fed, buffer_s, buffer_bytes
        Input seconds so far; seconds held in the ring buffer; its fixed size.

    Notes
    -----
    Not thread-safe: one engine per stream. See the module docstring.
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        window_s: float = 3.0,
        hop_s: float = 0.5,
        vad: str = "auto",
        smoothing: int = 3,
        max_buffer_s: float | None = None,
        min_speech_s: float = MIN_EMOTION_S,
        vad_threshold: float = SPEECH_PROBABILITY + 0.15,
    ) -> None:
        window_s = _seconds(window_s, "window_s", lo=MIN_WINDOW_S, hi=MAX_WINDOW_S)
        hop_s = _seconds(hop_s, "hop_s", lo=MIN_HOP_S)
        if hop_s > window_s:
            raise ConfigError(f"hop_s={hop_s:g} must not exceed window_s={window_s:g}")
        if max_buffer_s is None:
            max_buffer_s = window_s + hop_s
        max_buffer_s = _seconds(max_buffer_s, "max_buffer_s", lo=window_s, hi=3600.0)
        min_speech_s = _seconds(min_speech_s, "min_speech_s", lo=0.0, hi=window_s)
        if isinstance(smoothing, bool) or not isinstance(smoothing, int) or not 1 <= smoothing <= 100:
            raise ConfigError(f"smoothing={smoothing!r} must be an integer in [1, 100] (1 = off)")
        if isinstance(vad_threshold, bool) or not isinstance(vad_threshold, Real) or not 0.0 < vad_threshold < 1.0:
            raise ConfigError(f"vad_threshold={vad_threshold!r} must lie in (0, 1)")
        if vad not in STREAM_VADS:
            raise ConfigError(f"vad={vad!r} is unknown: expected one of {', '.join(STREAM_VADS)}")
        self.predictor: Predictor = predictor
        sr = int(predictor.sample_rate_hz)
        self.sample_rate_hz: int = sr
        self.window_s, self.hop_s, self.max_buffer_s = window_s, hop_s, max_buffer_s
        self.smoothing, self.min_speech_s = smoothing, min_speech_s
        self._window: int = int(round(window_s * sr))
        self._hop: int = int(round(hop_s * sr))
        self._min_speech: int = int(round(min_speech_s * sr))
        self._no_speech: int = min(self._min_speech, int(round(NO_SPEECH_S * sr)))
        self._resampler: ChunkResampler = ChunkResampler(target_hz=sr)
        self._ring: np.ndarray = np.zeros(max(self._window, int(round(max_buffer_s * sr))), np.float32)
        self._n: int = 0  # samples (model rate) processed
        self._next: int = self._hop  # sample where the next event is due
        self._last_event: int = 0
        self._history: deque[np.ndarray] = deque(maxlen=smoothing)
        self._closed: bool = False
        self.events_emitted: int = 0
        self.vad: str = vad
        self._detector: VoiceDetector | None = None
        if vad != "off":
            if sr != 16000:
                raise ConfigError(
                    f"voice activity detection runs at 16000 Hz but the model takes {sr} Hz: use vad='off'"
                )
            from emovox.audio.vad import get_vad

            self._detector = get_vad(vad)  # one detector state per engine (the Silero session is shared)
            self._detector.reset()
            self.vad = "silero" if type(self._detector).__name__ == "SileroVAD" else "webrtc"
            frame = self._detector.frame_samples
            self._frame: int = frame
            self._on: float = float(vad_threshold)
            self._off: float = max(0.01, float(vad_threshold) - _HYSTERESIS)
            self._flags: np.ndarray = np.zeros(self._window // frame + 3, bool)  # speech flag per frame, ring
            self._frames: int = 0  # frames decided so far
            self._speaking: bool = False

    # ------------------------------------------------------------------ state
    @property
    def seconds_fed(self) -> float:
        """Seconds of audio fed so far, at the input's own rate."""
        return self._resampler.seconds_in

    @property
    def buffer_s(self) -> float:
        """Seconds of audio held in the ring buffer (at most ``max_buffer_s``)."""
        return min(self._n, self._ring.size) / self.sample_rate_hz

    @property
    def buffer_bytes(self) -> int:
        """Bytes of the ring buffer and speech flags (fixed at construction)."""
        return self._ring.nbytes + (self._flags.nbytes if self._detector is not None else 0)

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ input
    def feed(self, samples: np.ndarray, sample_rate_hz: float) -> list[StreamEvent]:
        """Push the next chunk; return the events now due (often none, or several for a long chunk).

        Parameters
        ----------
        samples : np.ndarray [shape=(n,) or (n, channels)]
            float32/float64 in [-1, 1] or signed PCM integers (int16); any
            ``n`` including 0; channels are averaged.
        sample_rate_hz : int or float
            Rate of the chunk; fixed for the stream (a change raises
            :class:`ConfigError`).

        Raises
        ------
        ConfigError
            After :meth:`close`, on a bad or changed rate.
        AudioError
            Unsupported dtype or shape, NaN or infinite samples.
        """
        if self._closed:
            raise ConfigError("feed() after close(): this stream has ended; start a new StreamEngine")
        return self._consume(self._resampler.push(samples, sample_rate_hz))

    def close(self) -> list[StreamEvent]:
        """End the stream: flush the resampler and the detector, emit the last (partial) hop.

        Returns the remaining events; the last one ends at the end of the
        audio. Closing twice returns ``[]``.
        """
        if self._closed:
            return []
        events = self._consume(self._resampler.flush()) if self._resampler.rate_hz else []
        self._closed = True
        if self._detector is not None:
            self._vad(np.zeros(0, np.float32), final=True)
        if self._n > self._last_event:
            events.append(self._emit())
        return events

    def _consume(self, y: np.ndarray) -> list[StreamEvent]:
        events = []
        i = 0
        while i < y.size:  # cut at hop boundaries: the VAD and model never see past an event
            piece = y[i : i + self._next - self._n]
            i += piece.size
            self._append(piece)
            if self._detector is not None:
                self._vad(piece)
            if self._n == self._next:
                events.append(self._emit())
                self._next += self._hop
        return events

    def _append(self, piece: np.ndarray) -> None:
        cap = self._ring.size  # >= window >= hop >= piece.size
        pos = self._n % cap
        first = min(piece.size, cap - pos)
        self._ring[pos : pos + first] = piece[:first]
        self._ring[: piece.size - first] = piece[first:]
        self._n += piece.size

    def _recent(self, n: int) -> np.ndarray:
        """The last ``n`` samples, in order (a copy)."""
        cap = self._ring.size
        lo, hi = (self._n - n) % cap, self._n % cap
        if n > 0 and lo < hi:
            return self._ring[lo:hi].copy()
        return np.concatenate([self._ring[lo:], self._ring[:hi]])[:n]

    # ------------------------------------------------------------------ VAD
    def _vad(self, piece: np.ndarray, *, final: bool = False) -> None:
        assert self._detector is not None  # called only when there is a detector (vad != "off")
        probs = self._detector.probabilities(piece, final=final)
        flags = self._flags
        for p in probs:  # hysteresis, frame by frame (a few frames per call)
            self._speaking = bool(p >= self._on or (self._speaking and p >= self._off))
            flags[self._frames % flags.size] = self._speaking
            self._frames += 1

    def _window_flags(self, start: int) -> np.ndarray:
        """Speech flags ``(frames,)`` of the frames decided so far that start at or after ``start``."""
        f = self._frame
        first = max(-(-start // f), self._frames - self._flags.size)
        idx = np.arange(first, self._frames)
        return self._flags[idx % self._flags.size]

    def _speech_samples(self, start: int) -> int:
        """Samples of speech in frames decided so far that start at or after ``start``."""
        return int(self._window_flags(start).sum()) * self._frame

    # ------------------------------------------------------------------ events
    def _emit(self) -> StreamEvent:
        end = self._n
        start = max(0, end - self._window)
        self._last_event = end
        self.events_emitted += 1
        sr = self.sample_rate_hz
        y = self._recent(end - start)
        if self._detector is None:  # vad="off": every window is speech, not gated
            self._history.append(self._probabilities(y))
            pred = prediction_from_probs(
                np.mean(self._history, axis=0), self.predictor.labels, threshold=self.predictor.threshold
            )
            return StreamEvent(
                end / sr,
                start / sr,
                end / sr,
                True,
                pred.label,
                pred.confidence,
                dict(pred.scores),
                (end - start) / sr,
                pred.reason,
                None,
            )
        from emovox.audio.quality import assess_quality

        flags = self._window_flags(start)
        speech_samples = int(flags.sum()) * self._frame
        # the window's quality, its frames marked by the detector (Silero frames are the meter's 512 samples)
        quality = assess_quality(
            y[(-start) % self._frame :], speech_probs=flags.astype(np.float32) if self._frame == 512 else None
        )
        if speech_samples < max(1, self._no_speech):
            self._history.clear()
            return StreamEvent(
                end / sr, start / sr, end / sr, False, NO_SPEECH, 0.0, {}, speech_samples / sr, "no_speech", quality
            )
        self._history.append(self._probabilities(y))
        p = np.mean(self._history, axis=0)
        verdict = "too_little_speech" if speech_samples < self._min_speech else None
        pred = prediction_from_probs(p, self.predictor.labels, threshold=self.predictor.threshold, gate=verdict)
        return StreamEvent(
            end / sr,
            start / sr,
            end / sr,
            True,
            pred.label,
            pred.confidence,
            dict(pred.scores),
            speech_samples / sr,
            pred.reason,
            quality,
        )

    def _probabilities(self, y: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of one window, as :meth:`Predictor.predict` computes them."""
        model = self.predictor
        return softmax(model.signal_logits(y), temperature=model.temperature)
