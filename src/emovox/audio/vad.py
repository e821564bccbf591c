"""Voice activity detection: speech segments ``(start_s, end_s)`` from a streamed signal.

Two detectors share one segmenter:

- :class:`SileroVAD` (default): the Silero VAD network shipped inside the
  ``silero-vad`` package, run as its ONNX *sequence* model directly with
  onnxruntime (one call per block of up to 512 frames of 32 ms; no torch, and
  the ``silero_vad`` Python package is never imported, only its data file
  located);
- :class:`WebRtcVAD` (fallback when onnxruntime or the Silero model is
  missing): the WebRTC GMM detector from ``webrtcvad-wheels``, 30 ms frames.

Both turn audio blocks into per-frame speech probabilities; :class:`Segmenter`
applies Silero's hysteresis rules (speech above ``threshold``, silence below
``threshold - 0.15``; minimum speech and silence durations; padding; long turns
split at ``max_speech_s``). :func:`iter_speech_segments` consumes an iterator of
blocks (e.g. :func:`emovox.audio.stream_audio`) and yields segments as soon as
they close, holding only a few frames of audio, so memory does not grow with
the length of the recording.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from emovox.errors import ConfigError

if TYPE_CHECKING:
    import onnxruntime

__all__ = [
    "VoiceDetector",
    "SileroVAD",
    "WebRtcVAD",
    "Segmenter",
    "StreamingVAD",
    "get_vad",
    "iter_speech_segments",
    "speech_segments",
    "silero_model_path",
]

VAD_NAMES = ("auto", "silero", "webrtc")


class VoiceDetector(Protocol):
    """A stateful voice activity detector (:class:`~emovox.audio.vad.SileroVAD`, :class:`~emovox.audio.vad.WebRtcVAD`).

    :meth:`reset` starts a new recording; :meth:`probabilities` takes its
    consecutive blocks and returns the speech probability of each complete
    frame of ``frame_samples`` samples at 16 kHz.
    """

    frame_samples: int

    def reset(self) -> None: ...

    def probabilities(self, y: np.ndarray, *, final: bool = False) -> np.ndarray: ...


def silero_model_path() -> Path | None:
    """Path of the Silero sequence ONNX model inside the installed package, or ``None``.

    The package is located with :func:`importlib.util.find_spec`, which does not
    execute it (importing ``silero_vad`` would import torch).
    """
    try:
        spec = importlib.util.find_spec("silero_vad")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "silero_vad_16k_sequence.onnx"
        if path.is_file():
            return path
    return None


_SESSIONS: dict = {}
_SESSIONS_LOCK = threading.Lock()


def _shared_session(path: str, num_threads: int) -> onnxruntime.InferenceSession:
    """One onnxruntime session per model file and thread count, shared by every :class:`SileroVAD`.

    ``InferenceSession.run`` is thread-safe and the recurrent state lives in
    each detector, so streams and gates share the 1.5 MB session instead of
    building one each (4 ms and 1.5 MB per stream). The CPU memory arena is
    off: it never shrinks, so a burst of streams would keep its peak for good.
    """
    import onnxruntime as ort

    key = (path, num_threads)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            options = ort.SessionOptions()
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            options.enable_cpu_mem_arena = False
            _SESSIONS[key] = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return _SESSIONS[key]


class SileroVAD:
    """Silero VAD (ONNX sequence model) at 16 kHz: 512-sample frames, 64 samples of context.

    Stateful: call :meth:`reset` before a new recording, then :meth:`probabilities`
    on consecutive blocks of any length.
    """

    sample_rate_hz = 16000
    frame_samples = 512
    _context = 64

    def __init__(self, *, max_frames: int = 512, num_threads: int = 1) -> None:
        path = silero_model_path()
        if path is None:
            raise ConfigError(
                "the Silero VAD model was not found: install it with pip install 'emovox[vad]' "
                "(silero-vad) or use vad='webrtc'"
            )
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ConfigError("Silero VAD needs onnxruntime: pip install onnxruntime, or use vad='webrtc'") from None
        self._session = _shared_session(str(path), int(num_threads))
        self.max_frames = int(max_frames)
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._prev = np.zeros(self._context, np.float32)
        self._rest = np.zeros(0, np.float32)

    def probabilities(self, y: np.ndarray, *, final: bool = False) -> np.ndarray:
        """Speech probability of each complete 32 ms frame in ``y`` (after leftovers).

        Samples that do not fill a frame are kept for the next call; with
        ``final=True`` they are zero-padded into one last frame.
        """
        x = np.concatenate([self._rest, np.asarray(y, np.float32).reshape(-1)])
        n = x.size // self.frame_samples
        if final and x.size % self.frame_samples:
            pad = self.frame_samples - x.size % self.frame_samples
            x = np.concatenate([x, np.zeros(pad, np.float32)])
            n += 1
        self._rest = x[n * self.frame_samples :].copy()
        out = []
        for first in range(0, n, self.max_frames):
            m = min(self.max_frames, n - first)
            frames = x[first * self.frame_samples : (first + m) * self.frame_samples].reshape(m, -1)
            ctx = np.empty((m, self._context), np.float32)
            ctx[0] = self._prev
            if m > 1:
                ctx[1:] = frames[:-1, -self._context :]
            self._prev = frames[-1, -self._context :].copy()
            probs, self._h, self._c = self._session.run(
                ["speech_probs", "hn", "cn"],
                {"input": np.ascontiguousarray(np.concatenate([ctx, frames], axis=1)), "h": self._h, "c": self._c},
            )
            out.append(np.asarray(probs, np.float32).reshape(-1))
        return np.concatenate(out) if out else np.zeros(0, np.float32)


class WebRtcVAD:
    """WebRTC VAD at 16 kHz, 30 ms frames; probabilities are 0 or 1.

    Parameters
    ----------
    aggressiveness : int
        0 (keeps most audio as speech) … 3 (most aggressive filtering).
    """

    sample_rate_hz = 16000
    frame_samples = 480

    def __init__(self, *, aggressiveness: int = 2) -> None:
        try:
            import webrtcvad
        except ImportError:
            raise ConfigError(
                "WebRTC VAD is not installed: pip install webrtcvad-wheels, or use vad='silero'"
            ) from None
        if aggressiveness not in (0, 1, 2, 3):
            raise ConfigError(f"aggressiveness={aggressiveness!r} must be 0, 1, 2 or 3")
        self._make = lambda: webrtcvad.Vad(int(aggressiveness))
        self.reset()

    def reset(self) -> None:
        self._vad = self._make()  # the detector adapts to the noise floor: start afresh
        self._rest = np.zeros(0, np.float32)

    def probabilities(self, y: np.ndarray, *, final: bool = False) -> np.ndarray:
        x = np.concatenate([self._rest, np.asarray(y, np.float32).reshape(-1)])
        n = x.size // self.frame_samples
        if final and x.size % self.frame_samples:
            x = np.concatenate([x, np.zeros(self.frame_samples - x.size % self.frame_samples, np.float32)])
            n += 1
        self._rest = x[n * self.frame_samples :].copy()
        pcm = (np.clip(x[: n * self.frame_samples], -1.0, 1.0) * 32767).astype("<i2").tobytes()
        step = 2 * self.frame_samples
        return np.array(
            [self._vad.is_speech(pcm[i * step : (i + 1) * step], self.sample_rate_hz) for i in range(n)],
            dtype=np.float32,
        )


def get_vad(name: str = "auto") -> SileroVAD | WebRtcVAD:
    """A detector by name: ``"silero"``, ``"webrtc"`` or ``"auto"`` (Silero, else WebRTC)."""
    if name not in VAD_NAMES:
        raise ConfigError(f"vad={name!r} is unknown: expected one of {', '.join(VAD_NAMES)}")
    if name == "silero":
        return SileroVAD()
    if name == "webrtc":
        return WebRtcVAD()
    try:
        return SileroVAD()
    except Exception:  # noqa: BLE001 - "auto": any failure of Silero (missing, onnxruntime error) falls back
        return WebRtcVAD()


class Segmenter:
    """Hysteresis over per-frame speech probabilities -> speech segments in samples.

    Parameters
    ----------
    frame_samples : int
        Samples per probability frame.
    sample_rate_hz : int
        Rate of the audio.
    threshold : float
        A frame at or above it starts (or continues) speech.
    min_speech_s, min_silence_s, pad_s, max_speech_s : float
        Shorter speech is dropped; a pause must last ``min_silence_s`` to end a
        segment; segments are widened by ``pad_s`` on each side; a turn longer
        than ``max_speech_s`` is split (at its last pause if it has one).
    """

    def __init__(
        self,
        *,
        frame_samples: int,
        sample_rate_hz: int = 16000,
        threshold: float = 0.5,
        min_speech_s: float = 0.25,
        min_silence_s: float = 0.1,
        pad_s: float = 0.03,
        max_speech_s: float = 30.0,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"threshold={threshold!r} must lie in (0, 1)")
        if max_speech_s <= 2 * min_silence_s:
            raise ConfigError(f"max_speech_s={max_speech_s!r} is too short")
        self.frame = int(frame_samples)
        self.sr = int(sample_rate_hz)
        self.on = float(threshold)
        self.off = max(0.01, threshold - 0.15)
        self.min_speech = int(min_speech_s * self.sr)
        self.min_silence = int(min_silence_s * self.sr)
        self.pad = int(pad_s * self.sr)
        self.max_speech = int(max_speech_s * self.sr)
        self.frames_seen = 0
        self._start: int | None = None
        self._pause: int | None = None  # sample where the current pause began
        self._pending: tuple[int, int] | None = None  # closed segment awaiting padding
        self._last_end = 0

    def _close(self, start: int, end: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        if end - start < self.min_speech:
            return out
        if self._pending is not None:
            ps, pe = self._pending
            pe = min(pe + self.pad, max(pe, start - self.pad))
            out.append((ps, pe))
            self._last_end = pe
        self._pending = (max(self._last_end, start - self.pad, 0), end)
        return out

    def push(self, probs: np.ndarray) -> list[tuple[int, int]]:
        """Feed the next frames; returns the segments ``(start, end)`` in samples now final."""
        out: list[tuple[int, int]] = []
        for p in np.asarray(probs, np.float32):
            pos = self.frames_seen * self.frame
            self.frames_seen += 1
            if p >= self.on:
                self._pause = None
                if self._start is None:
                    self._start = pos
            elif p < self.off and self._start is not None:
                if self._pause is None:
                    self._pause = pos
                if pos - self._pause >= self.min_silence:
                    out += self._close(self._start, self._pause)
                    self._start, self._pause = None, None
            if self._start is not None and pos + self.frame - self._start > self.max_speech:
                cut = self._pause if self._pause is not None and self._pause > self._start else pos
                out += self._close(self._start, cut)
                self._start = cut
                self._pause = None
            if self._pending is not None:  # release it once no later segment can clip its padding
                ps, pe = self._pending
                horizon = pe + 2 * self.pad
                if pos >= horizon and (self._start is None or self._start >= horizon):
                    out.append((ps, pe + self.pad))
                    self._last_end = pe + self.pad
                    self._pending = None
        return out

    def finish(self, total_samples: int) -> list[tuple[int, int]]:
        """Close the open segment at the end of the recording; flush the last one."""
        out: list[tuple[int, int]] = []
        if self._start is not None:
            end = self._pause if self._pause is not None else total_samples
            out += self._close(self._start, min(end, total_samples))
            self._start, self._pause = None, None
        if self._pending is not None:
            ps, pe = self._pending
            out.append((ps, min(total_samples, pe + self.pad)))
            self._pending = None
        return out


class StreamingVAD:
    """A detector and a :class:`Segmenter` fed block by block.

    :meth:`push` takes the next block and returns the segments (in samples
    from the start of the recording) that became final; :meth:`finish` closes
    the recording. :attr:`keep_from` is the earliest sample a later segment can
    still start at: audio before it may be discarded.
    """

    def __init__(
        self,
        *,
        sample_rate_hz: int = 16000,
        vad: str | VoiceDetector = "auto",
        threshold: float = 0.5,
        min_speech_s: float = 0.25,
        min_silence_s: float = 0.1,
        pad_s: float = 0.03,
        max_speech_s: float = 30.0,
    ) -> None:
        if sample_rate_hz != 16000:
            raise ConfigError(
                f"sample_rate_hz={sample_rate_hz!r}: voice activity detection runs at 16000 Hz; resample first"
            )
        self.detector: VoiceDetector = get_vad(vad) if isinstance(vad, str) else vad
        self.detector.reset()
        self.segmenter = Segmenter(
            frame_samples=self.detector.frame_samples,
            sample_rate_hz=sample_rate_hz,
            threshold=threshold,
            min_speech_s=min_speech_s,
            min_silence_s=min_silence_s,
            pad_s=pad_s,
            max_speech_s=max_speech_s,
        )
        self.total_samples = 0

    def push(self, block: np.ndarray) -> list[tuple[int, int]]:
        block = np.asarray(block, np.float32).reshape(-1)
        self.total_samples += block.size
        return self.segmenter.push(self.detector.probabilities(block))

    def finish(self) -> list[tuple[int, int]]:
        out = self.segmenter.push(self.detector.probabilities(np.zeros(0, np.float32), final=True))
        return out + self.segmenter.finish(self.total_samples)

    @property
    def keep_from(self) -> int:
        seg = self.segmenter
        candidates = [seg.frames_seen * seg.frame - 2 * seg.frame - seg.pad]
        if seg._pending is not None:
            candidates.append(seg._pending[0])
        if seg._start is not None:
            candidates.append(seg._start - seg.pad)
        return max(0, min(candidates))


def iter_speech_segments(
    blocks: Iterable[np.ndarray],
    *,
    sample_rate_hz: int = 16000,
    vad: str | VoiceDetector = "auto",
    threshold: float = 0.5,
    min_speech_s: float = 0.25,
    min_silence_s: float = 0.1,
    pad_s: float = 0.03,
    max_speech_s: float = 30.0,
) -> Iterator[tuple[float, float]]:
    """Speech segments ``(start_s, end_s)`` of a streamed 16 kHz mono signal, in order.

    Parameters
    ----------
    blocks : iterable of np.ndarray [shape=(n,)], float32
        Consecutive blocks of one recording (e.g. from
        :func:`emovox.audio.stream_audio`).
    sample_rate_hz : int
        Must be 16000 (both detectors run at 16 kHz).
    vad : str or detector
        ``"auto"``, ``"silero"``, ``"webrtc"``, or an object with ``reset()``,
        ``probabilities(y, final=...)`` and ``frame_samples``.
    threshold, min_speech_s, min_silence_s, pad_s, max_speech_s
        See :class:`Segmenter`.
    """
    stream = StreamingVAD(
        sample_rate_hz=sample_rate_hz,
        vad=vad,
        threshold=threshold,
        min_speech_s=min_speech_s,
        min_silence_s=min_silence_s,
        pad_s=pad_s,
        max_speech_s=max_speech_s,
    )
    for block in blocks:
        for s, e in stream.push(block):
            yield s / sample_rate_hz, e / sample_rate_hz
    for s, e in stream.finish():
        yield s / sample_rate_hz, e / sample_rate_hz


def speech_segments(
    y: np.ndarray, *, sample_rate_hz: int = 16000, block_s: float = 30.0, **options: Any
) -> list[tuple[float, float]]:
    """Speech segments ``(start_s, end_s)`` of an in-memory signal ``(n,)``.

    Options are those of :func:`iter_speech_segments`.
    """
    x = np.asarray(y, np.float32).reshape(-1)
    step = max(1, int(block_s * sample_rate_hz))
    blocks = (x[i : i + step] for i in range(0, x.size, step))
    return list(iter_speech_segments(blocks, sample_rate_hz=sample_rate_hz, **options))
