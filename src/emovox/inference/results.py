"""The one result shape of emovox: a :class:`Prediction`, and a :class:`Timeline` of them.

A prediction is ``{start_s, end_s, label, confidence, scores}`` (see
``DESIGN.md``): ``scores`` maps every class to its calibrated probability,
``confidence`` is the top probability and ``label`` is the top class, or
``"unknown"`` when ``confidence`` is under the model's threshold. A timeline is
the list of predictions over the speech of a long recording, plus a summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from emovox.labels import UNKNOWN

__all__ = ["Prediction", "Timeline", "UNKNOWN", "prediction_from_probs", "summarize"]


@dataclass(frozen=True)
class Prediction:
    """The emotion of one stretch of audio.

    Attributes
    ----------
    label : str
        Top class, or ``"unknown"`` when ``confidence < threshold``.
    confidence : float
        Calibrated probability of the top class, in [0, 1].
    scores : Mapping[str, float]
        Calibrated probability of every class, in model order; sums to 1.
    start_s, end_s : float
        Span of the audio this prediction describes, in seconds from the start
        of the input.
    """

    label: str
    confidence: float
    scores: Mapping[str, float]
    start_s: float = 0.0
    end_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)

    @property
    def top_class(self) -> str:
        """The most probable class, even when ``label`` is ``"unknown"``."""
        return max(self.scores, key=self.scores.__getitem__)

    def top_k(self, k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable classes with their probabilities, best first."""
        return sorted(self.scores.items(), key=lambda kv: -kv[1])[: max(0, int(k))]

    def to_dict(self, *, top_k: int | None = None, digits: int = 4) -> dict:
        """JSON-ready ``{start_s, end_s, label, confidence, scores}``.

        ``top_k`` keeps only the ``k`` best scores (all when ``None``).
        """
        items = self.top_k(top_k) if top_k else list(self.scores.items())
        return {
            "start_s": round(float(self.start_s), 3),
            "end_s": round(float(self.end_s), 3),
            "label": self.label,
            "confidence": round(float(self.confidence), digits),
            "scores": {k: round(float(v), digits) for k, v in items},
        }


def prediction_from_probs(
    probs: np.ndarray, labels: Sequence[str], *, threshold: float = 0.0,
    start_s: float = 0.0, end_s: float = 0.0,
) -> Prediction:
    """Build a :class:`Prediction` from calibrated probabilities ``(n_classes,)``."""
    p = np.asarray(probs, dtype=np.float64)
    top = int(np.argmax(p))
    confidence = float(p[top])
    label = labels[top] if confidence >= threshold else UNKNOWN
    return Prediction(
        label=label,
        confidence=confidence,
        scores={name: float(v) for name, v in zip(labels, p)},
        start_s=float(start_s),
        end_s=float(end_s),
    )


def summarize(
    segments: Sequence[Prediction], labels: Sequence[str], *, threshold: float = 0.0
) -> dict:
    """Duration-weighted summary of a timeline.

    Returns
    -------
    dict
        ``speech_s`` (total duration of the segments), ``distribution`` (the
        duration-weighted mean of the segments' probabilities, per class),
        ``dominant`` (its top class, or ``"unknown"`` when its top probability
        is under ``threshold`` or there is no speech) and ``label_share``
        (fraction of speech time per predicted label, ``"unknown"`` included).
    """
    weights = np.array([s.duration_s for s in segments], dtype=np.float64)
    speech_s = float(weights.sum())
    if not segments or speech_s <= 0:
        return {"speech_s": 0.0, "distribution": {k: 0.0 for k in labels},
                "dominant": UNKNOWN, "label_share": {}}
    probs = np.array([[s.scores[k] for k in labels] for s in segments], dtype=np.float64)
    dist = (weights[:, None] * probs).sum(axis=0) / speech_s
    top = int(np.argmax(dist))
    share: dict[str, float] = {}
    for seg, w in zip(segments, weights):
        share[seg.label] = share.get(seg.label, 0.0) + float(w) / speech_s
    return {
        "speech_s": round(speech_s, 3),
        "distribution": {k: round(float(v), 4) for k, v in zip(labels, dist)},
        "dominant": labels[top] if dist[top] >= threshold else UNKNOWN,
        "label_share": {k: round(v, 4) for k, v in sorted(share.items(), key=lambda kv: -kv[1])},
    }


@dataclass(frozen=True)
class Timeline:
    """Predictions over the speech of a recording, in time order.

    Attributes
    ----------
    segments : tuple[Prediction, ...]
        One prediction per analysed stretch of speech (smoothed across
        neighbours); silence has none.
    duration_s : float
        Duration of the whole recording.
    labels : tuple[str, ...]
        Classes of the model, in model order.
    threshold : float
        Rejection threshold that was applied.
    """

    segments: tuple[Prediction, ...]
    duration_s: float
    labels: tuple[str, ...]
    threshold: float = 0.0
    summary: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.summary:
            object.__setattr__(
                self, "summary", summarize(self.segments, self.labels, threshold=self.threshold)
            )

    @property
    def dominant(self) -> str:
        return self.summary["dominant"]

    def overall(self) -> Prediction:
        """The whole recording as one :class:`Prediction` (the summary distribution)."""
        dist = self.summary["distribution"]
        if not self.segments:
            return Prediction(UNKNOWN, 0.0, dict(dist), 0.0, self.duration_s)
        p = prediction_from_probs(
            np.array([dist[k] for k in self.labels]), self.labels,
            threshold=self.threshold, start_s=0.0, end_s=self.duration_s,
        )
        return p

    def to_dict(self, *, top_k: int | None = None) -> dict:
        return {
            "duration_s": round(float(self.duration_s), 3),
            "summary": self.summary,
            "segments": [s.to_dict(top_k=top_k) for s in self.segments],
        }
