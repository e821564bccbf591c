"""The one predictor core; signals, files, bytes, folders and long recordings are adapters.

>>> model = load_model()                                   # bundled accurate model  # doctest: +SKIP
>>> fast = load_model("cnn")                               # bundled small CNN  # doctest: +SKIP
>>> model.predict("clip.wav")                              # doctest: +SKIP
Prediction(label='angry', confidence=0.81, scores={...}, start_s=0.0, end_s=3.2)
>>> model.predict_timeline("meeting.mp3").summary["dominant"]  # doctest: +SKIP

Everything goes through :meth:`Predictor.probabilities`: fixed-length windows
``(batch, clip samples)`` -> backend logits -> ``softmax(logits / T)``. A clip
up to twice the model's clip length is centre-cropped or centre-padded to it
(as the training evaluation does); a longer one is cut into windows (hop half a
clip) whose probabilities are averaged. A model whose artifact says
``preprocessing.crop = "none"`` (it pools over time, like the flagship) gets
each clip at its own length (up to 30 s; longer ones in 30 s windows). The
artifact's ``trim_silence`` and ``normalize`` settings are applied as in
training. Long recordings go through
:meth:`Predictor.predict_timeline` (voice activity detection, windows, smoothing),
decoded block by block so memory stays bounded.
"""

from __future__ import annotations

import dataclasses
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, cast

import numpy as np

from emovox.errors import AudioError, ConfigError, EmovoxError, ModelError
from emovox.inference.adaptation import ADAPT_FILE, SEGMENT_S, AdaptationHead
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
from emovox.inference.calibration import softmax
from emovox.inference.gate import SPEECH_PROBABILITY, SpeechCheck, SpeechGate, VoiceDetector, quality_warnings
from emovox.inference.results import Prediction, Timeline, no_speech_prediction, prediction_from_probs
from emovox.inference.timeline import window_spans, window_starts

__all__ = [
    "Predictor",
    "load_model",
    "default_model_dir",
    "pretrained_dir",
    "shipped_models",
    "resolve_model_dir",
    "DEFAULT_MODEL",
    "FAST_MODEL",
    "PROGRESS_STEP_S",
    "ProgressCallback",
]

#: Name of the model :func:`load_model` loads when given no path.
DEFAULT_MODEL = "default"
#: Name of the small, fast model (``emovox predict --fast``).
FAST_MODEL = "cnn"

#: Fixed-length models: clips longer than this many clip lengths are windowed by ``predict``.
_CROP_FACTOR = 2.0
#: Variable-length models: clips up to this long are fed whole; longer ones in windows of it.
_MAX_FULL_S = 30.0
#: Variable-length models: default timeline window.
_TIMELINE_WINDOW_S = 3.0
#: Variable-length models: shorter windows are repeated up to this length.
_MIN_WINDOW_S = 0.5
#: A segment whose peak is under this (-60 dBFS) holds no audible sound: :meth:`Predictor.adapt` skips it.
SILENCE_PEAK = 10 ** (-60 / 20)
#: :meth:`Predictor.predict_timeline` reports progress after at most this many seconds of audio.
PROGRESS_STEP_S = 2.0
#: ``progress(done_s, total_s)``: seconds of audio analysed, and the recording's length (``None``: unknown).
ProgressCallback = Callable[[float, "float | None"], None]


def pretrained_dir() -> Path:
    """The folder of the models shipped inside the package: ``emovox/pretrained``."""
    return Path(str(resources.files("emovox"))) / "pretrained"


def default_model_dir() -> Path:
    """Where the bundled default model lives: ``emovox/pretrained/default`` inside the package."""
    return pretrained_dir() / DEFAULT_MODEL


def shipped_models() -> tuple[str, ...]:
    """Names of the models shipped inside the package (sub-folders of :func:`pretrained_dir` with a config)."""
    root = pretrained_dir()
    if not root.is_dir():
        return ()
    return tuple(sorted(p.name for p in root.iterdir() if (p / "config.json").is_file()))


def _looks_like_name(path: str | os.PathLike) -> bool:
    return isinstance(path, str) and path != "" and not any(sep in path for sep in ("/", os.sep, "."))


def resolve_model_dir(path: str | os.PathLike | None) -> Path:
    """The artifact folder of ``path``: ``None`` -> the default model, a shipped name -> its folder, else the path.

    A string without ``/`` or ``.`` that is not an existing path is a model
    name (``"default"``, ``"cnn"``); write ``./cnn`` for a folder of that name.

    Raises
    ------
    ModelError
        The default model is missing, or a name is not one of the shipped models.
    """
    if path is None or path == DEFAULT_MODEL and not os.path.exists(path):
        model_dir = default_model_dir()
        if not (model_dir / "config.json").is_file():
            raise ModelError(
                f"no bundled model at {model_dir}: this emovox build ships none yet; "
                "pass a trained artifact with --model DIR (or load_model(path=...))"
            )
        return model_dir
    if _looks_like_name(path) and not os.path.exists(path):
        names = shipped_models()
        if path in names:
            return pretrained_dir() / path
        raise ModelError(
            f"no model named {path!r}: it is neither a folder nor a model shipped with emovox "
            f"(shipped: {', '.join(names) or 'none'}); pass a model artifact folder or one of those names"
        )
    return Path(path)


def _is_array(source: Any) -> bool:
    return isinstance(source, np.ndarray) or (
        hasattr(source, "__array__") and not isinstance(source, (str, bytes, os.PathLike))
    )


def _center_fix(y: np.ndarray, n: int) -> np.ndarray:
    """Centre-crop or centre-pad ``y`` ``(m,)`` to ``(n,)`` (as ``training.data.fix_length``)."""
    m = y.shape[-1]
    if m == n:
        return y
    if m > n:
        start = (m - n) // 2
        return y[start : start + n]
    before = (n - m) // 2
    return np.pad(y, (before, n - m - before))


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
        if isinstance(waveforms, np.ndarray):
            x = np.asarray(waveforms, dtype=np.float32)
            if x.ndim != 2:
                raise ConfigError(f"waveforms must be shaped (batch, n), got {x.shape}")
            groups = [(np.arange(len(x)), x)]
        else:
            items = [np.asarray(w, dtype=np.float32).reshape(-1) for w in waveforms]
            by_len: dict[int, list[int]] = {}
            for i, w in enumerate(items):
                by_len.setdefault(w.size, []).append(i)
            groups = [(np.array(idx), np.stack([items[i] for i in idx])) for idx in by_len.values()]
        n = sum(len(idx) for idx, _ in groups)
        z = np.zeros((n, len(self.labels)), np.float32)
        for idx, x in groups:
            for i in range(0, len(x), self.batch_size):
                out = self._batch_logits(x[i : i + self.batch_size])
                if out.shape != (len(x[i : i + self.batch_size]), len(self.labels)):
                    raise ModelError(
                        f"the model returned logits of shape {out.shape} for {len(self.labels)} labels: "
                        "its config and weights do not match"
                    )
                z[idx[i : i + self.batch_size]] = out
        return z

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
        windows = self._clip_windows(self._prepare(self.load(source, sample_rate=sample_rate)))
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
                "(and artifacts written by scripts/add_speaker_adaptation.py)"
            )
        segment = int(SEGMENT_S * self.sample_rate_hz)
        clips, n_samples = [], 0
        for i, source in enumerate(sources):
            try:
                y = self._prepare(self.load(source, sample_rate=sample_rate))
            except (EmovoxError, OSError) as error:
                what = os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"clip {i + 1}"
                kind = type(error) if isinstance(error, EmovoxError) else AudioError
                raise kind(f"adaptation clip {what}: {error}") from None
            pieces = (
                [y] if y.size <= 2 * segment else [y[s : s + segment] for s in range(0, y.size - segment + 1, segment)]
            )
            audible = [p for p in pieces if np.any(np.abs(p) >= SILENCE_PEAK)]
            clips += [self._fit(p) for p in audible]
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
        from emovox.audio import load_audio, resample, validate_signal
        from emovox.audio.validate import check_sample_rate

        sr = self.sample_rate_hz
        if _is_array(source) and sample_rate is None:
            raise ConfigError(
                f"an array of samples carries no sample rate: pass it in Hz, e.g. "
                f"predict(y, sample_rate=48000) (the model resamples to its {sr} Hz)"
            )
        if _is_array(source):
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

    def _condition(self, y: np.ndarray) -> np.ndarray:
        """The artifact's per-window input conditioning: band limit, then normalisation (as in training)."""
        if self.info.band_limit_hz:
            from emovox.audio.effects import band_limit

            y = band_limit(y, sample_rate_hz=self.sample_rate_hz, rate_hz=self.info.band_limit_hz)
        if self.info.normalize == "peak":
            from emovox.audio import normalize_peak

            return normalize_peak(y)
        if self.info.normalize == "loudness":
            from emovox.audio import normalize_loudness

            return normalize_loudness(y, sample_rate_hz=self.sample_rate_hz)
        return y

    def _prepare(self, y: np.ndarray) -> np.ndarray:
        """The model's preprocessing of a whole clip: silence trim, band limit, normalisation."""
        if self.info.trim_silence:
            from emovox.audio import trim_for_model

            y = trim_for_model(y, sample_rate_hz=self.sample_rate_hz)
        return self._condition(y)

    def _fit(self, y: np.ndarray) -> np.ndarray:
        """One window as the model takes it: fixed length, or at least the minimum length."""
        if self.info.fixed_length:
            n = self.info.n_samples
            return _center_fix(y, n) if self.info.crop == "center" else np.pad(y[:n], (0, max(0, n - y.size)))
        m = int(_MIN_WINDOW_S * self.sample_rate_hz)
        if y.size < m:  # too short for the model: repeat it (as training tiles short crops)
            y = np.tile(y, int(np.ceil(m / max(1, y.size))))[:m] if y.size else np.zeros(m, np.float32)
        return y

    def _clip_windows(self, y: np.ndarray) -> list[np.ndarray]:
        if self.info.fixed_length:
            n = self.info.n_samples
            limit = _CROP_FACTOR * n
        else:
            n = int(_MAX_FULL_S * self.sample_rate_hz)
            limit = n
        if y.size <= limit:
            return [self._fit(y)]
        starts = window_starts(y.size, window=n, hop=max(1, n // 2))
        return [self._fit(y[s : s + n]) for s in starts]

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
        warnings. The others' windows are classified in batches of
        :attr:`batch_size`.
        """
        pending: list[tuple[Any, list | EmovoxError | None, float, SpeechCheck | None]] = []
        n_windows = 0

        def flush() -> Iterator[tuple[Any, Prediction | EmovoxError]]:
            good = [x for _, w, _, _ in pending if isinstance(w, list) for x in w]
            probs = self.probabilities(good) if good else None
            i = 0
            for src, w, dur, check in pending:
                if isinstance(w, list):
                    assert probs is not None  # a clip has at least one window, so good is not empty
                    p = probs[i : i + len(w)].mean(axis=0)
                    i += len(w)
                    yield src, self._answer(p, check, start_s=0.0, end_s=dur)
                elif w is None:
                    assert check is not None  # None stands for the gate's no_speech verdict
                    yield (
                        src,
                        no_speech_prediction(
                            self.labels,
                            end_s=dur,
                            speech_s=check.speech_s,
                            quality=check.quality,
                            warnings=self._warnings(check),
                        ),
                    )
                else:
                    yield src, w
            pending.clear()

        for src in sources:
            check = None
            item: list[np.ndarray] | EmovoxError | None
            try:
                y = self.load(src, sample_rate=sample_rate)
                dur = y.size / self.sample_rate_hz
                check = self.check_speech(y)
                if check is not None and check.verdict == "no_speech":
                    item = None
                else:
                    item = self._clip_windows(self._prepare(y))
            except (EmovoxError, OSError) as error:
                item = error if isinstance(error, EmovoxError) else AudioError(str(error))
                dur = 0.0
            pending.append((src, item, dur, check))
            n_windows += len(item) if isinstance(item, list) else 0
            if n_windows >= self.batch_size:
                yield from flush()
                n_windows = 0
        yield from flush()

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
    def _blocks(self, source: Any, sample_rate: int | None, block_s: float) -> Iterator[np.ndarray]:
        if _is_array(source):
            y = self.load(source, sample_rate=sample_rate)
            step = max(1, int(block_s * self.sample_rate_hz))
            return (y[i : i + step] for i in range(0, y.size, step))
        if sample_rate is not None:
            raise ConfigError("sample_rate applies to arrays only: a file or bytes carries its own rate")
        from emovox.audio import stream_audio

        return stream_audio(source, sample_rate_hz=self.sample_rate_hz, block_s=block_s)

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
        from emovox.audio.vad import StreamingVAD
        from emovox.inference.timeline import SmoothingStream

        sr = self.sample_rate_hz
        default_window_s = self.info.clip_s if self.info.fixed_length else _TIMELINE_WINDOW_S
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
        blocks = self._blocks(source, sample_rate, block_s)  # refuses an array without its rate first
        total_s = self._duration_for_progress(source, sample_rate) if progress is not None else None
        if progress is not None:
            progress(0.0, total_s)
        recorder = _RecordingDetector(vad)
        stream = StreamingVAD(sample_rate_hz=sr, vad=recorder)
        buf = _Buffer()
        spans: list[tuple[float, float]] = []
        queue: list[np.ndarray] = []
        segments: list[Prediction] = []

        def add_segment(s: int, e: int) -> None:
            y = buf.get(s, e)
            if y.size == 0:
                return
            starts = window_starts(y.size, window=window, hop=hop)
            for (a, b), st in zip(window_spans(starts, window=window, n_samples=y.size), starts):
                queue.append(self._fit(self._condition(y[st : st + window])))
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
                verdict = self.gate.verdict(speech_s) if self.gate is not None else None
                segments.append(
                    prediction_from_probs(
                        row, self.labels, threshold=self.threshold, start_s=a, end_s=b, speech_s=speech_s, gate=verdict
                    )
                )
                if on_segment is not None:
                    on_segment(i, segments[-1])

        def run(force: bool = False) -> None:
            if queue and (force or len(queue) >= self.batch_size):
                smoother.add(self.probabilities(queue), spans[len(smoother) :])
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
        warnings = quality_warnings(quality, self.measured)
        timeline = Timeline(tuple(segments), duration_s, self.labels, self.threshold, quality, warnings)
        if progress is not None:
            progress(duration_s, duration_s)
        return timeline

    def _duration_for_progress(self, source: Any, sample_rate: int | None) -> float | None:
        """A recording's length in seconds before decoding it (``None`` for a file object that cannot seek)."""
        if _is_array(source):
            assert sample_rate is not None  # _blocks() refused an array without its rate
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


def _artifact_name(model_dir: Path) -> str:
    """A shipped model's name (``"default"``, ``"cnn"``), else the artifact folder's own name."""
    folder = Path(os.path.abspath(model_dir))
    return folder.name or str(model_dir)


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
    info = dataclasses.replace(ModelInfo.from_config(read_config(model_dir)), name=_artifact_name(model_dir))
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
