"""The one predictor core; signals, files, bytes, folders and long recordings are adapters.

>>> model = load_model()                                   # bundled accurate model  # doctest: +SKIP
>>> fast = load_model("cnn")                               # bundled small CNN  # doctest: +SKIP
>>> model.predict("clip.wav")                              # doctest: +SKIP
Prediction(label='angry', confidence=0.81, scores={...}, start_s=0.0, end_s=3.2)
>>> model.predict_timeline("meeting.mp3").summary["dominant"]  # doctest: +SKIP

A clip becomes logits in one place, :meth:`Predictor.iter_clip_logits`
(:meth:`Predictor.clip_logits` for one clip): decoding, the speech gate,
the model's preprocessing, windows -> backend logits, pooled over the clip's
windows by :func:`~emovox.inference.scores.pool_logits`; ``predict``, batch
scoring, calibration, streaming and ``emovox evaluate --model DIR`` all go
through it, and a prediction's scores are ``softmax(logits / T)``. Long
recordings go through :meth:`Predictor.predict_timeline` (voice activity
detection, windows, smoothing), decoded block by block so memory stays bounded.

The :class:`Predictor` composes one module per concept:

- :mod:`~emovox.inference.locate` -- which artifact folder a name or path means;
- :mod:`~emovox.inference.backends` -- the artifact's config and its torch or ONNX backend;
- :mod:`~emovox.inference.prepare` -- decoding and validating any input, the
  artifact's preprocessing (``trim_silence``, band limit, ``normalize``, as in training);
- :mod:`~emovox.inference.windows` -- a clip's windows (centre-cropped or cut
  into windows, hop half a clip; whole clips up to 30 s for a model that pools
  over time) and their logits in batches;
- :mod:`~emovox.inference.clips` -- windows of several clips batched together
  and pooled back per clip;
- :mod:`~emovox.inference.gate` -- the speech gate and quality warnings;
- :mod:`~emovox.inference.adaptation` -- the speaker-adaptation head (:meth:`Predictor.adapt`);
- :mod:`~emovox.inference.long_audio` -- timelines of long recordings.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, cast

import numpy as np

from emovox.audio.vad import VoiceDetector
from emovox.errors import AudioError, ConfigError, EmovoxError, ModelError
from emovox.inference.adaptation import ADAPT_FILE, SILENCE_PEAK, AdaptationHead, speaker_segments
from emovox.inference.backends import (
    ONNX_FILE,
    WEIGHTS_FILE,
    Backend,
    EmbeddingBackend,
    ModelInfo,
    OnnxBackend,
    TorchBackend,
    check_backend,
    read_config,
)
from emovox.inference.clips import ClipLogits, PreparedClip, pool_clips
from emovox.inference.gate import SpeechCheck, SpeechGate, quality_warnings
from emovox.inference.locate import (
    DEFAULT_MODEL,
    FAST_MODEL,
    artifact_name,
    default_model_dir,
    pretrained_dir,
    resolve_model_dir,
    shipped_models,
)
from emovox.inference.long_audio import (
    PROGRESS_STEP_S,
    TIMELINE_WINDOW_S,
    ProgressCallback,
    duration_for_progress,
    run_timeline,
    signal_blocks,
)
from emovox.inference.prepare import load_signal, prepare
from emovox.inference.results import Prediction, Timeline, no_speech_prediction, prediction_from_probs
from emovox.inference.scores import pool_logits, softmax
from emovox.inference.windows import batched_logits, clip_windows, fit_window

__all__ = [
    "Predictor",
    "ClipLogits",
    "load_model",
    "default_model_dir",
    "pretrained_dir",
    "shipped_models",
    "resolve_model_dir",
    "DEFAULT_MODEL",
    "FAST_MODEL",
    "PROGRESS_STEP_S",
    "ProgressCallback",
    "SILENCE_PEAK",
]


class Predictor:
    """A model plus its calibration, ready to predict.

    Parameters
    ----------
    backend : Backend
        ``logits(waveforms (batch, n)) -> (batch, n_classes)``.
    info : ModelInfo
        Labels, sample rate, clip length, temperature and threshold.
    min_confidence : float or None
        Overrides ``info.threshold`` (``0`` never answers ``"unknown"``).
    batch_size : int
        Windows per backend call.
    adaptation : AdaptationHead or None
        The artifact's speaker-adaptation head, if it has one (:meth:`adapt`).
    gate : SpeechGate, bool
        The speech gate every input passes (:mod:`emovox.inference.gate`):
        ``True`` (default) builds one, ``False`` turns it off (every input is
        classified as speech, without quality flags: for research on clean
        clips only).

    Notes
    -----
    ``predict`` is stateless; ``predict_timeline`` reuses one voice activity
    detector per predictor, so give each thread its own predictor for timelines.
    :meth:`adapt` changes every later prediction: adapt before sharing a predictor.
    """

    def __init__(
        self,
        backend: Backend,
        info: ModelInfo,
        *,
        min_confidence: float | None = None,
        batch_size: int = 8,
        adaptation: AdaptationHead | None = None,
        gate: SpeechGate | bool = True,
    ) -> None:
        if min_confidence is not None and not 0.0 <= float(min_confidence) <= 1.0:
            raise ConfigError(f"min_confidence={min_confidence!r} must lie in [0, 1]")
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size!r} must be >= 1")
        self.backend = backend
        self.info = info
        self._min_confidence = None if min_confidence is None else float(min_confidence)
        self.batch_size = int(batch_size)
        self.adaptation = adaptation
        self._speaker_offset: np.ndarray | None = None
        self._adapted_audio_s = 0.0
        self._detectors: dict[str, VoiceDetector] = {}
        self.gate = SpeechGate() if gate is True else (gate or None)
        #: What the model was measured on (the artifact's ``robustness.measured``), for the warnings.
        self.measured = dict((info.config.get("robustness") or {}).get("measured") or {})

    # ------------------------------------------------------------------ properties
    @property
    def labels(self) -> tuple[str, ...]:
        return self.info.labels

    @property
    def sample_rate_hz(self) -> int:
        return self.info.sample_rate_hz

    @property
    def model_name(self) -> str:
        """The model's name in every answer (``model``): ``"default"``, ``"cnn"`` or the artifact folder's name."""
        return self.info.model_name

    @property
    def model_version(self) -> str:
        """The model's version in every answer (``model_version``): build day and config fingerprint."""
        return self.info.model_version

    @property
    def adapted(self) -> bool:
        """Whether predictions use the speaker-adapted head (after :meth:`adapt`)."""
        return self._speaker_offset is not None

    @property
    def adapted_audio_s(self) -> float:
        """Seconds of audio (after the silence trim) the last :meth:`adapt` used; 0 when not adapted."""
        return self._adapted_audio_s if self.adapted else 0.0

    @property
    def _adapted_head(self) -> AdaptationHead | None:
        """The adaptation head while predictions use it (after :meth:`adapt`), else ``None``."""
        return self.adaptation if self.adapted else None

    @property
    def temperature(self) -> float:
        head = self._adapted_head
        return head.temperature if head is not None else self.info.temperature

    @property
    def threshold(self) -> float:
        """Confidence under which a prediction is ``"unknown"`` (the adapted head has its own)."""
        if self._min_confidence is not None:
            return self._min_confidence
        head = self._adapted_head
        return head.threshold if head is not None else self.info.threshold

    # ------------------------------------------------------------------ core
    def logits(self, waveforms: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Raw logits of windows -> ``(batch, n_classes)``.

        ``waveforms`` is an array ``(batch, n)`` or a list of 1-D arrays (of
        any lengths for a variable-length model: equal lengths are batched).
        """
        return batched_logits(self._batch_logits, waveforms, batch_size=self.batch_size, n_classes=len(self.labels))

    def _batch_logits(self, x: np.ndarray) -> np.ndarray:
        head = self._adapted_head
        if head is None or self._speaker_offset is None:
            return self.backend.logits(x)
        return head.logits(self._embeddings(x), self._speaker_offset)

    def _embeddings(self, x: np.ndarray) -> np.ndarray:
        # only reached once has_embeddings was checked (clip_embedding, adapt) or after adapt() succeeded
        return cast(EmbeddingBackend, self.backend).embeddings(x)

    def probabilities(self, waveforms: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated probabilities ``softmax(logits / T)`` of windows (see :meth:`logits`)."""
        return softmax(self.logits(waveforms), temperature=self.temperature)

    # ------------------------------------------------------------------ speaker adaptation
    def clip_embedding(self, source: Any, *, sample_rate: int | None = None) -> np.ndarray:
        """The head's input for one clip, ``(n_features,)``: the mean over its windows, as :meth:`predict` sees them.

        Only for a backend with embeddings (Whisper-backed models); see :mod:`emovox.inference.adaptation`.
        """
        if not getattr(self.backend, "has_embeddings", False):
            raise ModelError("this model has no embedding output (only Whisper-backed models have one)")
        windows = self._signal_windows(self.load(source, sample_rate=sample_rate))
        return np.mean([self._embeddings(w[None])[0] for w in windows], axis=0)

    def adapt(self, sources: Sequence[Any] | None, *, sample_rate: int | None = None) -> int:
        """``--adapt``: predict from now on with the head adapted to one speaker.

        ``sources`` are unlabelled recordings of that speaker (paths, bytes or
        arrays, as :meth:`predict` takes; any emotions, ideally a mix). Each is
        decoded and trimmed as for prediction; one longer than twice
        :data:`~emovox.inference.adaptation.SEGMENT_S` is cut into segments of
        that length, and silent segments are skipped. The mean embedding of
        the clips is the speaker's offset. At least
        :data:`~emovox.inference.adaptation.MIN_CLIPS` clips are needed; about
        :data:`~emovox.inference.adaptation.RECOMMENDED_CLIPS` are recommended.
        ``None`` (or ``[]``) returns to the speaker-independent head.

        Returns the number of clips (segments) used. Raises :class:`ModelError`
        when the model has no adaptation head, :class:`ConfigError` for too
        few clips, :class:`AudioError` (naming the input) for one that cannot be read.
        """
        if not sources:
            self._speaker_offset = None
            self._adapted_audio_s = 0.0
            return 0
        if self.adaptation is None or not getattr(self.backend, "has_embeddings", False):
            raise ModelError(
                "this model has no speaker adaptation: --adapt works with the default model "
                "(and artifacts built by emovox train --recipe shipped-default)"
            )
        clips: list[np.ndarray] = []
        n_samples = 0
        for i, source in enumerate(sources):
            try:
                y = prepare(self.load(source, sample_rate=sample_rate), self.info)
            except (EmovoxError, OSError) as error:
                what = os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"clip {i + 1}"
                kind = type(error) if isinstance(error, EmovoxError) else AudioError
                raise kind(f"adaptation clip {what}: {error}") from None
            audible = speaker_segments(y, sample_rate_hz=self.sample_rate_hz)
            clips += [fit_window(p, self.info) for p in audible]
            n_samples += sum(p.size for p in audible)
        embeddings = [self._embeddings(clip[None])[0] for clip in clips]
        self._speaker_offset = self.adaptation.offset(
            np.stack(embeddings) if embeddings else np.zeros((0, self.adaptation.n_features))
        )
        self._adapted_audio_s = n_samples / self.sample_rate_hz
        return len(clips)

    def load(self, source: Any, *, sample_rate: int | None = None) -> np.ndarray:
        """Any accepted input as float32 mono ``(n,)`` at the model's rate (untrimmed).

        ``source`` is a path, ``bytes``, a binary file object, or an array of
        samples at ``sample_rate`` Hz. An array must come with its rate (a
        48 kHz clip read as 16 kHz would last three times as long and sound an
        octave and a half low): without one it is a :class:`ConfigError`.
        """
        return load_signal(source, sample_rate=sample_rate, sample_rate_hz=self.sample_rate_hz)

    def _signal_windows(self, y: np.ndarray) -> list[np.ndarray]:
        """The windows the model classifies for a loaded signal ``(n,)``: preprocessing, then windowing."""
        return clip_windows(prepare(y, self.info), self.info)

    def signal_logits(self, y: np.ndarray) -> np.ndarray:
        """Logits of a signal already at the model's rate, without decoding or the speech gate.

        Parameters
        ----------
        y : np.ndarray [shape=(n,)]
            Float mono samples at :attr:`sample_rate_hz` (as :meth:`load` returns them).

        Returns
        -------
        np.ndarray [shape=(n_classes,), dtype=float32]
            The model's preprocessing (silence trim, band limit, normalisation),
            its windows and their pooled logits, as :meth:`clip_logits` computes
            them for a clip with speech (the streaming engine's windows).
        """
        windows = self._signal_windows(np.asarray(y, np.float32).reshape(-1))
        return pool_logits(self.logits(windows), temperature=self.temperature)

    def clip_logits(self, source: Any, *, sample_rate: int | None = None) -> np.ndarray:
        """Logits of one clip exactly as :meth:`predict` computes them.

        Parameters
        ----------
        source : path, bytes, file object or np.ndarray [shape=(n,)]
            As :meth:`predict` takes it.
        sample_rate : int or None
            Rate of an array source in Hz (required for arrays, refused for the others).

        Returns
        -------
        np.ndarray [shape=(n_classes,), dtype=float32]
            Pre-softmax class scores in the order of :attr:`labels`;
            ``predict(source).scores`` is ``softmax(logits / temperature)``.

        Raises
        ------
        AudioError
            The clip cannot be read, or the speech gate found no speech in it
            (``predict`` answers ``no_speech`` without running the model; a
            predictor loaded with ``gate=False`` scores every clip).
        ConfigError
            ``sample_rate`` missing for an array, or given for a file.
        """
        ((_, clip),) = self.iter_clip_logits([source], sample_rate=sample_rate)
        if isinstance(clip, EmovoxError):
            raise clip
        if clip.logits is None:
            what = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the clip"
            raise AudioError(
                f"{what}: no speech (the speech gate's verdict), so the model gives no logits; "
                "load the model with gate=False to score every clip"
            )
        return clip.logits

    def predict(self, source: Any, *, sample_rate: int | None = None) -> Prediction:
        """Emotion of one clip (path, bytes, file object or array).

        ``sample_rate`` (Hz) is required for an array and refused for the
        others, which carry their own rate.

        Returns
        -------
        Prediction
            Spanning the whole clip (``start_s = 0``, ``end_s`` = its duration).
        """
        return self.predict_batch([source], sample_rate=sample_rate)[0]

    def predict_batch(self, sources: Sequence[Any], *, sample_rate: int | None = None) -> list[Prediction]:
        """:meth:`predict` for many clips, batched; the first error is raised."""
        out = []
        for _, result in self.iter_predict(sources, sample_rate=sample_rate):
            if isinstance(result, Exception):
                raise result
            out.append(result)
        return out

    def check_speech(self, y: np.ndarray) -> SpeechCheck | None:
        """The speech gate's findings on a loaded clip ``(n,)`` at the model's rate (``None`` without a gate)."""
        if self.gate is None:
            return None
        if self.sample_rate_hz != 16000:  # the detector runs at 16 kHz
            from emovox.audio import resample

            y = resample(y, orig_hz=self.sample_rate_hz, target_hz=16000)
        return self.gate.check(y)

    def iter_clip_logits(
        self,
        sources: Iterable[Any],
        *,
        sample_rate: int | None = None,
    ) -> Iterator[tuple[Any, ClipLogits | EmovoxError]]:
        """``(source, ClipLogits or error)`` per source, in order: the one place a clip becomes logits.

        Each source is decoded (:meth:`load`) and passes the speech gate
        (:mod:`emovox.inference.gate`): one without speech gets
        ``ClipLogits(logits=None)`` (the model is not run). The others get the
        model's preprocessing (silence trim, band limit, normalisation), are
        cut into windows (see the module's notes), classified in batches of
        :attr:`batch_size` windows across clips, and each clip's window
        logits are pooled by :func:`~emovox.inference.scores.pool_logits`.
        Errors (:class:`~emovox.errors.EmovoxError`, an unreadable file as
        :class:`~emovox.errors.AudioError`) do not stop the batch.
        """
        clips = (self._prepared_clip(src, sample_rate) for src in sources)
        pool = self._pool_logits
        yield from pool_clips(clips, self.logits, pool, batch_size=self.batch_size)

    def _pool_logits(self, window_logits: np.ndarray) -> np.ndarray:
        return pool_logits(window_logits, temperature=self.temperature)

    def _prepared_clip(self, source: Any, sample_rate: int | None) -> PreparedClip:
        """One clip decoded, through the speech gate and cut into the model's windows (or the error it met)."""
        check = None
        windows: list[np.ndarray] | EmovoxError | None
        try:
            y = self.load(source, sample_rate=sample_rate)
            duration_s = y.size / self.sample_rate_hz
            check = self.check_speech(y)
            if check is not None and check.verdict == "no_speech":
                windows = None
            else:
                windows = self._signal_windows(y)
        except (EmovoxError, OSError) as error:
            windows = error if isinstance(error, EmovoxError) else AudioError(str(error))
            duration_s = 0.0
        return PreparedClip(source, windows, duration_s, check)

    def iter_predict(
        self,
        sources: Iterable[Any],
        *,
        sample_rate: int | None = None,
    ) -> Iterator[tuple[Any, Prediction | EmovoxError]]:
        """``(source, Prediction or error)`` per source, in order; errors do not stop the batch.

        Every clip passes the speech gate first (:mod:`emovox.inference.gate`):
        one without speech is answered ``no_speech`` (the model is not run),
        one with too little speech ``unknown`` (its scores still reported);
        every prediction carries the clip's speech time, quality flags and
        warnings. The others' scores are ``softmax(logits / T)`` of their
        :meth:`iter_clip_logits`.
        """
        for src, clip in self.iter_clip_logits(sources, sample_rate=sample_rate):
            if isinstance(clip, EmovoxError):
                yield src, clip
            elif clip.logits is None:
                assert clip.check is not None  # no logits stand for the gate's no_speech verdict
                yield (
                    src,
                    no_speech_prediction(
                        self.labels,
                        end_s=clip.duration_s,
                        speech_s=clip.check.speech_s,
                        quality=clip.check.quality,
                        warnings=self._warnings(clip.check),
                    ),
                )
            else:
                probs = softmax(clip.logits, temperature=self.temperature)
                yield src, self._answer(probs, clip.check, start_s=0.0, end_s=clip.duration_s)

    def _warnings(self, check: SpeechCheck | None) -> tuple[str, ...]:
        return () if check is None else quality_warnings(check.quality, self.measured)

    def _answer(self, probs: np.ndarray, check: SpeechCheck | None, *, start_s: float, end_s: float) -> Prediction:
        """A clip's prediction from its calibrated probabilities and the gate's findings."""
        if check is None:
            return prediction_from_probs(probs, self.labels, threshold=self.threshold, start_s=start_s, end_s=end_s)
        return prediction_from_probs(
            probs,
            self.labels,
            threshold=self.threshold,
            start_s=start_s,
            end_s=end_s,
            speech_s=check.speech_s,
            gate=check.verdict,
            quality=check.quality,
            warnings=self._warnings(check),
        )

    # ------------------------------------------------------------------ timeline
    def predict_timeline(
        self,
        source: Any,
        *,
        sample_rate: int | None = None,
        window_s: float | None = None,
        hop_s: float | None = None,
        smoothing: int = 3,
        max_gap_s: float = 1.0,
        vad: str | VoiceDetector = "auto",
        block_s: float = 30.0,
        progress: ProgressCallback | None = None,
        on_segment: Callable[[int, Prediction], None] | None = None,
    ) -> Timeline:
        """Emotion over time of a (long) recording.

        The recording is decoded block by block; voice activity detection
        finds speech segments; a segment longer than ``window_s`` is cut into
        windows every ``hop_s``, each reported over the part of the segment
        nearest its centre (the spans partition the speech); probabilities are
        averaged over ``smoothing`` neighbouring windows not separated by more
        than ``max_gap_s`` of silence; then the threshold turns low confidence
        into ``"unknown"``.

        Parameters
        ----------
        source : path, bytes, file object or np.ndarray [shape=(n,)]
        sample_rate : int or None
            Rate of an array source in Hz (required for arrays).
        window_s, hop_s : float or None
            Analysis window (default: the model's clip length for fixed-length
            models, 3 s for models taking any length) and hop (default: half
            the window).
        smoothing : int
            Odd number of neighbouring windows averaged (1 = off).
        max_gap_s : float
            Longest pause across which windows are still smoothed together.
        vad : str or detector
            ``"auto"`` (Silero, else WebRTC), ``"silero"`` or ``"webrtc"``.
        block_s : float
            Decoding block length; memory holds about one block plus one turn.
        progress : callable or None
            ``progress(done_s, total_s)``, in seconds of audio: ``done_s`` is
            how much of the recording has been read and passed through voice
            activity detection (the model's work on it follows within a few
            windows), ``total_s`` its length from the container's header, or
            ``None`` where it cannot be known beforehand (a file object that
            cannot seek, such as a pipe). Called on this thread: once with
            ``(0, total_s)`` before any work, after every :data:`PROGRESS_STEP_S`
            seconds of audio at most, and last with ``(duration_s,
            duration_s)`` once the timeline is complete (``duration_s`` as
            decoded, which may differ slightly from the header's figure).
            ``done_s`` never decreases and never exceeds a known ``total_s``.
            An exception it raises stops the analysis and propagates (a
            caller's way to cancel).
        on_segment : callable or None
            ``on_segment(index, segment)`` with each :class:`Prediction` of
            :attr:`Timeline.segments` as soon as it is final (its smoothing
            neighbours classified), in time order, on this thread: partial
            results of a long recording. Exceptions propagate as for
            ``progress``.

        Notes
        -----
        Results do not depend on ``block_s``, ``progress`` or ``on_segment``.
        """
        from emovox.inference.timeline import SmoothingStream

        sr = self.sample_rate_hz
        default_window_s = self.info.clip_s if self.info.fixed_length else TIMELINE_WINDOW_S
        window = int(round((default_window_s if window_s is None else window_s) * sr))
        hop = int(round(((window / sr) / 2 if hop_s is None else hop_s) * sr))
        if window <= 0 or hop <= 0 or hop > window:
            raise ConfigError(f"hop_s={hop / sr} must lie in (0, window_s={window / sr}]")
        smoother = SmoothingStream(size=smoothing, max_gap_s=max_gap_s)
        if isinstance(vad, str):  # one detector per kind, reused (reset per recording)
            from emovox.audio.vad import get_vad

            if vad not in self._detectors:
                self._detectors[vad] = get_vad(vad)
            vad = self._detectors[vad]
        load = self.load
        blocks = signal_blocks(  # refuses an array without its rate first
            source,
            sample_rate=sample_rate,
            sample_rate_hz=sr,
            block_s=block_s,
            load=lambda array: load(array, sample_rate=sample_rate),
        )
        total_s = duration_for_progress(source, sample_rate) if progress is not None else None
        if progress is not None:
            progress(0.0, total_s)
        return run_timeline(
            self,
            blocks,
            window=window,
            hop=hop,
            smoother=smoother,
            detector=vad,
            total_s=total_s,
            progress=progress,
            on_segment=on_segment,
        )


def load_model(
    path: str | os.PathLike | None = None,
    *,
    backend: str = "auto",
    min_confidence: float | None = None,
    num_threads: int | None = None,
    batch_size: int = 8,
    gate: bool = True,
) -> Predictor:
    """Load a model artifact as a :class:`Predictor`.

    Parameters
    ----------
    path : str, PathLike or None
        Artifact directory (``config.json`` + ``model.safetensors`` and/or
        ``model.onnx``), or the name of a model shipped with emovox
        (``"default"``: the accurate Whisper-backed model; ``"cnn"``: the
        small, fast CNN); ``None`` loads the default model.
    backend : str
        ``"torch"``, ``"onnx"`` or ``"auto"`` (onnx when the artifact has a
        ``model.onnx`` and onnxruntime is installed, else torch).
    min_confidence : float or None
        Overrides the artifact's rejection threshold.
    num_threads : int or None
        CPU threads of the backend.
    batch_size : int
        Windows per backend call.
    gate : bool
        Run the speech gate and quality flags on every input (default); ``False``
        classifies every input as speech (research on clean clips only).
    """
    check_backend(backend)
    model_dir = resolve_model_dir(path)
    info = dataclasses.replace(ModelInfo.from_config(read_config(model_dir)), name=artifact_name(model_dir))
    if backend == "auto":
        has_onnx = (model_dir / ONNX_FILE).is_file()
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            has_onnx = False
        backend = "onnx" if has_onnx or not (model_dir / WEIGHTS_FILE).is_file() else "torch"
    engine: OnnxBackend | TorchBackend
    if backend == "onnx":
        engine = OnnxBackend(model_dir / ONNX_FILE, num_threads=num_threads)
    else:
        if not (model_dir / WEIGHTS_FILE).is_file():
            raise ModelError(f"{str(model_dir)!r} has no {WEIGHTS_FILE} for the torch backend: use backend='onnx'")
        engine = TorchBackend.from_artifact(model_dir, num_threads=num_threads)
    adaptation = None
    if (model_dir / ADAPT_FILE).is_file() and getattr(engine, "has_embeddings", False):
        adaptation = AdaptationHead.from_artifact(model_dir, info.config, len(info.labels))
    return Predictor(
        engine, info, min_confidence=min_confidence, batch_size=batch_size, adaptation=adaptation, gate=gate
    )
