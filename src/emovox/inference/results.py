"""The one result shape of emovox: a :class:`Prediction`, and a :class:`Timeline` of them.

A prediction is ``{start_s, end_s, label, confidence, scores, speech_s, reason,
quality, warnings}`` (see ``DESIGN.md``):

- ``scores`` maps every class to its calibrated probability and ``confidence``
  is the top one;
- ``label`` is the top class, or a non-answer: ``"no_speech"`` when the input
  holds no speech, ``"unknown"`` when its speech is too short for an emotion or
  the confidence is under the model's threshold;
- ``speech_s`` is how many seconds of speech the answer rests on, ``reason``
  says why there is no emotion (:data:`REASONS`; ``None`` when there is one);
- ``quality`` holds the input's quality flags (:class:`emovox.audio.quality.Quality`)
  and ``warnings`` one sentence per way the input lies outside what the model
  was measured on.

A timeline is the list of predictions over the speech of a long recording and
a summary that describes the recording by the shares of speech time per
emotion (:func:`summarize`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emovox.labels import MIXED, NO_SPEECH, UNKNOWN

__all__ = [
    "Prediction",
    "Timeline",
    "UNKNOWN",
    "NO_SPEECH",
    "MIXED",
    "REASONS",
    "prediction_from_probs",
    "summarize",
    "merge_segments",
    "MIXED_MARGIN",
    "MIN_CONFIDENT_SHARE",
    "NON_ANSWERS",
]

#: Why a prediction or a summary holds no emotion: code -> meaning.
REASONS: dict[str, str] = {
    "no_speech": "no speech was found",
    "too_little_speech": "too little speech for an emotion",
    "low_confidence": "the model's confidence is under its threshold",
    "no_confident_speech": "no stretch of speech got a confident emotion",
    "mixed": "no emotion leads the confident speech",
}
#: Labels that are not emotions.
NON_ANSWERS = (UNKNOWN, NO_SPEECH, MIXED)
#: A recording's leading emotion must hold this much more of the confident speech than the next one.
MIXED_MARGIN = 0.10
#: Under this share of the speech answered with an emotion, a recording's summary is ``unknown``.
MIN_CONFIDENT_SHARE = 0.20


@dataclass(frozen=True)
class Prediction:
    """The emotion of one stretch of audio.

    Attributes
    ----------
    label : str
        Top class; ``"unknown"`` (too little speech, or ``confidence`` under the
        threshold) or ``"no_speech"`` when there is no emotion to give (``"mixed"``
        for a recording's summary without a leading emotion).
    confidence : float
        Calibrated probability of the top class, in [0, 1].
    scores : Mapping[str, float]
        Calibrated probability of every class, in model order; sums to 1
        (empty when nothing was classified).
    start_s, end_s : float
        Span of the audio this prediction describes, in seconds from the start
        of the input.
    speech_s : float
        Seconds of speech the voice activity detector found in the span.
    reason : str or None
        A :data:`REASONS` code when ``label`` is not an emotion, else ``None``.
    quality : Quality or None
        The input's quality flags and figures (:mod:`emovox.audio.quality`).
    warnings : tuple of str
        Sentences naming the ways the input lies outside the conditions the
        model was measured on.
    """

    label: str
    confidence: float
    scores: Mapping[str, float]
    start_s: float = 0.0
    end_s: float = 0.0
    speech_s: float = 0.0
    reason: str | None = None
    quality: Any = None
    warnings: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)

    @property
    def is_emotion(self) -> bool:
        """Whether ``label`` is an emotion (not ``unknown``, ``no_speech`` or ``mixed``)."""
        return self.label not in NON_ANSWERS

    @property
    def top_class(self) -> str | None:
        """The most probable class, even when ``label`` is a non-answer (``None`` without scores)."""
        return max(self.scores, key=self.scores.__getitem__) if self.scores else None

    @property
    def flags(self) -> tuple[str, ...]:
        """The raised quality flags (``()`` when quality was not measured)."""
        return tuple(self.quality.flags) if self.quality is not None else ()

    def top_k(self, k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable classes with their probabilities, best first."""
        return sorted(self.scores.items(), key=lambda kv: -kv[1])[: max(0, int(k))]

    def to_dict(self, *, top_k: int | None = None, digits: int = 4) -> dict:
        """JSON-ready ``{start_s, end_s, label, confidence, scores, speech_s, reason, quality, warnings}``.

        ``top_k`` keeps only the ``k`` best scores (all when ``None``).
        """
        items = self.top_k(top_k) if top_k else list(self.scores.items())
        return {
            "start_s": round(float(self.start_s), 3),
            "end_s": round(float(self.end_s), 3),
            "label": self.label,
            "confidence": round(float(self.confidence), digits),
            "scores": {k: round(float(v), digits) for k, v in items},
            "speech_s": round(float(self.speech_s), 3),
            "reason": self.reason,
            "quality": self.quality.to_dict() if self.quality is not None else None,
            "warnings": list(self.warnings),
        }


def prediction_from_probs(
    probs: np.ndarray,
    labels: Sequence[str],
    *,
    threshold: float = 0.0,
    start_s: float = 0.0,
    end_s: float = 0.0,
    speech_s: float | None = None,
    gate: str | None = None,
    quality: Any = None,
    warnings: Sequence[str] = (),
) -> Prediction:
    """Build a :class:`Prediction` from calibrated probabilities ``(n_classes,)``.

    ``gate`` is the speech gate's verdict (``None``: enough speech;
    ``"no_speech"`` or ``"too_little_speech"``), which overrides the
    threshold; ``speech_s`` defaults to the span's length.
    """
    p = np.asarray(probs, dtype=np.float64)
    top = int(np.argmax(p))
    confidence = float(p[top])
    if gate == "no_speech":
        label, reason = NO_SPEECH, "no_speech"
    elif gate is not None:
        label, reason = UNKNOWN, gate
    elif confidence < threshold:
        label, reason = UNKNOWN, "low_confidence"
    else:
        label, reason = labels[top], None
    return Prediction(
        label=label,
        confidence=confidence,
        scores={name: float(v) for name, v in zip(labels, p)},
        start_s=float(start_s),
        end_s=float(end_s),
        speech_s=float(max(0.0, end_s - start_s) if speech_s is None else speech_s),
        reason=reason,
        quality=quality,
        warnings=tuple(warnings),
    )


def no_speech_prediction(
    labels: Sequence[str],
    *,
    start_s: float = 0.0,
    end_s: float = 0.0,
    speech_s: float = 0.0,
    quality: Any = None,
    warnings: Sequence[str] = (),
) -> Prediction:
    """The answer for a span without speech: ``no_speech``, confidence 0, no scores."""
    return Prediction(
        NO_SPEECH, 0.0, {}, float(start_s), float(end_s), float(speech_s), "no_speech", quality, tuple(warnings)
    )


def summarize(segments: Sequence[Prediction], labels: Sequence[str], *, duration_s: float | None = None) -> dict:
    """Describe a recording by the shares of its speech time per emotion.

    Speech time is the segments' ``speech_s`` (what the voice activity
    detector found in each), so it agrees with the speech time of a clip
    predicted whole.

    Returns
    -------
    dict
        - ``label``: the *dominant* emotion -- the one holding the largest share
          of the confidently classified speech, at least :data:`MIXED_MARGIN`
          ahead of the next -- else ``"mixed"``, ``"unknown"`` (less than
          :data:`MIN_CONFIDENT_SHARE` of the speech got a confident emotion) or
          ``"no_speech"``; ``dominant`` is the same value;
        - ``reason``: ``None`` or a :data:`REASONS` code; ``detail``: a sentence;
        - ``emotion_share``: share of the confident speech time per emotion
          (sums to 1 when there is any), largest first;
        - ``confident_share`` / ``unknown_share``: shares of the speech time
          answered with an emotion / ``unknown``;
        - ``no_speech_share``: share of the recording without speech;
        - ``speech_s``, ``confident_s``, ``duration_s``;
        - ``distribution``: the speech-time-weighted mean of the segments'
          probabilities, per class.
    """
    segs = [s for s in segments if s.label != NO_SPEECH and s.speech_s > 0]
    speech_s = float(sum(s.speech_s for s in segs))
    total_s = float(duration_s) if duration_s is not None else max((s.end_s for s in segments), default=0.0)
    no_speech_share = 1.0 - speech_s / total_s if total_s > 0 else 1.0
    base = {
        "speech_s": round(speech_s, 3),
        "duration_s": round(total_s, 3),
        "no_speech_share": round(min(1.0, max(0.0, no_speech_share)), 4),
    }
    if speech_s <= 0:
        return {
            **base,
            "label": NO_SPEECH,
            "dominant": NO_SPEECH,
            "reason": "no_speech",
            "detail": "no speech was found",
            "emotion_share": {},
            "confident_s": 0.0,
            "confident_share": 0.0,
            "unknown_share": 0.0,
            "distribution": dict.fromkeys(labels, 0.0),
        }
    weights = np.array([s.speech_s for s in segs])
    probs = np.array([[s.scores.get(k, 0.0) for k in labels] for s in segs])
    dist = (weights[:, None] * probs).sum(axis=0) / speech_s
    times: dict[str, float] = {}
    for s in segs:
        if s.is_emotion:
            times[s.label] = times.get(s.label, 0.0) + s.speech_s
    confident_s = float(sum(times.values()))
    share = {k: v / confident_s for k, v in sorted(times.items(), key=lambda kv: -kv[1])} if confident_s else {}
    ranked = list(share.items())
    if not ranked:
        label, reason, detail = (
            UNKNOWN,
            "no_confident_speech",
            f"none of the {speech_s:.1f} s of speech got a confident emotion",
        )
    elif confident_s / speech_s < MIN_CONFIDENT_SHARE:
        label, reason = UNKNOWN, "no_confident_speech"
        detail = (
            f"only {confident_s / speech_s:.0%} of the {speech_s:.1f} s of speech got a confident emotion "
            f"({ranked[0][0]} in most of it)"
        )
    elif len(ranked) > 1 and ranked[0][1] - ranked[1][1] < MIXED_MARGIN:
        label, reason = MIXED, "mixed"
        detail = f"{ranked[0][0]} {ranked[0][1]:.0%} and {ranked[1][0]} {ranked[1][1]:.0%} of the confident speech"
    else:
        label, reason = ranked[0][0], None
        detail = f"{ranked[0][0]} in {ranked[0][1]:.0%} of the confident speech"
    return {
        **base,
        "label": label,
        "dominant": label,
        "reason": reason,
        "detail": detail,
        "emotion_share": {k: round(v, 4) for k, v in share.items()},
        "confident_s": round(confident_s, 3),
        "confident_share": round(confident_s / speech_s, 4),
        "unknown_share": round(1.0 - confident_s / speech_s, 4),
        "distribution": {k: round(float(v), 4) for k, v in zip(labels, dist)},
    }


def merge_segments(segments: Sequence[Prediction], *, max_gap_s: float = 1.0) -> list[Prediction]:
    """Adjacent segments with the same label, merged for display.

    Two segments merge when their labels agree and the pause between them is
    at most ``max_gap_s``. A merged segment spans both; its scores and
    confidence are the duration-weighted means, its ``speech_s`` the sum.
    """
    out: list[Prediction] = []
    for seg in segments:
        prev = out[-1] if out else None
        if prev is not None and prev.label == seg.label and seg.start_s - prev.end_s <= max_gap_s:
            a, b = prev.duration_s, seg.duration_s
            w = a + b if a + b > 0 else 1.0
            scores = {
                k: (prev.scores.get(k, 0.0) * a + seg.scores.get(k, 0.0) * b) / w for k in (prev.scores or seg.scores)
            }
            out[-1] = Prediction(
                prev.label,
                (prev.confidence * a + seg.confidence * b) / w,
                scores,
                prev.start_s,
                seg.end_s,
                prev.speech_s + seg.speech_s,
                prev.reason,
                prev.quality,
                prev.warnings,
            )
        else:
            out.append(seg)
    return out


@dataclass(frozen=True)
class Timeline:
    """Predictions over the speech of a recording, in time order.

    Attributes
    ----------
    segments : tuple[Prediction, ...]
        One prediction per analysed window of speech (smoothed across
        neighbours); stretches without speech have none.
    duration_s : float
        Duration of the whole recording.
    labels : tuple[str, ...]
        Classes of the model, in model order.
    threshold : float
        Rejection threshold that was applied.
    quality : Quality or None
        Quality flags of the whole recording.
    warnings : tuple of str
        As :attr:`Prediction.warnings`, for the whole recording.
    summary : dict
        :func:`summarize` of the segments.
    """

    segments: tuple[Prediction, ...]
    duration_s: float
    labels: tuple[str, ...]
    threshold: float = 0.0
    quality: Any = None
    warnings: tuple[str, ...] = ()
    summary: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.summary:
            object.__setattr__(self, "summary", summarize(self.segments, self.labels, duration_s=self.duration_s))

    @property
    def dominant(self) -> str:
        return self.summary["label"]

    def merged(self, *, max_gap_s: float = 1.0) -> list[Prediction]:
        """:func:`merge_segments` of the segments (what a display shows)."""
        return merge_segments(self.segments, max_gap_s=max_gap_s)

    def overall(self) -> Prediction:
        """The whole recording as one :class:`Prediction`.

        ``label`` and ``reason`` are the summary's; ``confidence`` is the mean
        calibrated confidence of the segments answered with that emotion,
        weighted by their speech time (0 for a non-answer): how sure the model
        is where it says so; ``scores`` the summary distribution (the mean
        probabilities over all the speech); ``speech_s`` the speech time.
        """
        s = self.summary
        label = s["label"]
        chosen = [seg for seg in self.segments if seg.label == label]
        weight = sum(seg.speech_s for seg in chosen)
        confidence = sum(seg.confidence * seg.speech_s for seg in chosen) / weight if weight > 0 else 0.0
        scores = dict(s["distribution"]) if s["speech_s"] > 0 else {}
        return Prediction(
            label,
            float(confidence),
            scores,
            0.0,
            float(self.duration_s),
            float(s["speech_s"]),
            s["reason"],
            self.quality,
            self.warnings,
        )

    def to_dict(self, *, top_k: int | None = None) -> dict:
        return {
            "duration_s": round(float(self.duration_s), 3),
            "summary": self.summary,
            "quality": self.quality.to_dict() if self.quality is not None else None,
            "warnings": list(self.warnings),
            "segments": [s.to_dict(top_k=top_k) for s in self.segments],
            "merged": [
                {
                    "start_s": round(m.start_s, 3),
                    "end_s": round(m.end_s, 3),
                    "label": m.label,
                    "confidence": round(float(m.confidence), 4),
                    "speech_s": round(m.speech_s, 3),
                }
                for m in self.merged()
            ],
        }
