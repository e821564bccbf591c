"""Response shapes of the HTTP API and the stream's events, for the published OpenAPI schema.

They describe what :meth:`Prediction.to_dict`, :meth:`Timeline.to_dict` and
:meth:`StreamEvent.to_dict` produce (the one prediction shape of emovox, whose
flat form is :mod:`emovox.inference.records`), with the model that answered
(``model``, ``model_version``); routes return those dicts. The ``Stream*Line``
models are the lines of ``/v1/predict?timeline=true&stream=true``
(:mod:`emovox.service.ndjson`): OpenAPI cannot type a line-delimited body, so
they document the lines here and the tests validate every line against them.
Reason codes and quality flags are enumerated from their sources
(:data:`emovox.inference.results.REASONS`, :data:`emovox.audio.quality.FLAG_NAMES`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from emovox.audio.quality import FLAG_NAMES
from emovox.inference.results import REASONS

__all__ = [
    "ErrorBody",
    "QualityOut",
    "Segment",
    "SummaryOut",
    "TimelineOut",
    "PredictionOut",
    "BatchOut",
    "StreamEventOut",
    "ModelOut",
    "HealthOut",
    "ReadyOut",
    "ERROR_RESPONSES",
    "StreamStartLine",
    "StreamProgressLine",
    "StreamSegmentLine",
    "StreamResultLine",
    "StreamErrorLine",
]

if TYPE_CHECKING:  # built from their sources at run time, which a type checker cannot follow: plain str
    Reason = str
    Flag = str
else:
    #: A reason code (why there is no emotion), as an enum in the schema.
    Reason = Literal[tuple(REASONS)]
    #: A quality flag name.
    Flag = Literal[FLAG_NAMES]

_LABEL = (
    "top class; or a non-answer: 'no_speech' (no speech found: confidence 0, scores empty) or 'unknown' "
    "(too little speech, or confidence under the model's threshold; see reason)"
)
_REASON = "why there is no emotion (null when label is one): " + "; ".join(f"{k}: {v}" for k, v in REASONS.items())
_WARNINGS = "one sentence per way the input lies outside what the model was measured on"


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable error code, e.g. payload_too_large")
    message: str = Field(description="one line: what was wrong and what to do")


class ErrorBody(BaseModel):
    error: ErrorDetail


class QualityOut(BaseModel):
    """Measured input quality (``Quality.to_dict()``)."""

    flags: list[Flag] = Field(
        description="raised flags: narrowband (telephone band), clipping, low_snr (noisy), low_level (very quiet)"
    )
    bandwidth_hz: float | None = Field(description="effective bandwidth; null for digital silence")
    clipped_share: float = Field(description="share of samples on clipped flat tops, in [0, 1]")
    snr_db: float | None = Field(description="estimated speech-to-noise ratio; null without speech")
    level_dbfs: float | None = Field(description="RMS level of the speech in dBFS; null for digital silence")


class Segment(BaseModel):
    """One prediction (``Prediction.to_dict()``)."""

    start_s: float
    end_s: float
    label: str = Field(description=_LABEL)
    confidence: float = Field(description="calibrated probability of the top class (0 for no_speech)")
    scores: dict[str, float] = Field(description="calibrated probability of every class (empty for no_speech)")
    speech_s: float = Field(description="seconds of speech the answer rests on")
    reason: Reason | None = Field(description=_REASON)
    quality: QualityOut | None = Field(description="input quality (null where it was not measured)")
    warnings: list[str] = Field(description=_WARNINGS)


class MergedSegment(BaseModel):
    """Adjacent segments with the same label, merged for display."""

    start_s: float
    end_s: float
    label: str
    confidence: float
    speech_s: float


class SummaryOut(BaseModel):
    """A long recording described by shares of its speech time (``results.summarize``)."""

    label: str = Field(description="the dominant emotion, or 'mixed', 'unknown' (no confident speech) or 'no_speech'")
    dominant: str = Field(description="the same as label")
    reason: Reason | None = Field(description=_REASON)
    detail: str = Field(description="one sentence saying what the label rests on")
    emotion_share: dict[str, float] = Field(
        description="share of the confidently classified speech time per "
        "emotion, largest first (sums to 1 when there is any)"
    )
    confident_share: float = Field(description="share of the speech time answered with an emotion")
    unknown_share: float = Field(description="share of the speech time answered 'unknown'")
    no_speech_share: float = Field(description="share of the recording without speech")
    speech_s: float
    confident_s: float
    duration_s: float
    distribution: dict[str, float] = Field(description="speech-time-weighted mean probability per class")


class TimelineOut(BaseModel):
    duration_s: float
    summary: SummaryOut
    quality: QualityOut | None = Field(description="quality of the whole recording")
    warnings: list[str] = Field(description=_WARNINGS)
    segments: list[Segment] = Field(description="one prediction per analysed window of speech")
    merged: list[MergedSegment] = Field(description="adjacent segments that agree, merged for display")


_MODEL = "name of the model that answered ('default', 'cnn' or its artifact folder's name; name of GET /v1/model)"
_MODEL_VERSION = (
    "version of the model that answered: the day it was built and a fingerprint of its config, "
    "e.g. '2026-12-03+1a2b3c4d' (version of GET /v1/model)"
)


class _Upload(BaseModel):
    file: str = Field(description="the uploaded file's name ('upload' for a raw body)")
    model: str | None = Field(None, description=_MODEL)
    model_version: str | None = Field(None, description=_MODEL_VERSION)


class PredictionOut(Segment, _Upload):
    """A recording's prediction: ``{file, model, model_version}`` and a :class:`Segment` spanning the recording."""

    label: str = Field(description=_LABEL + "; with ?timeline=true the summary's label (also 'mixed')")
    timeline: TimelineOut | None = Field(None, description="present with ?timeline=true")


class FileError(BaseModel):
    file: str
    error: ErrorDetail


class StreamStartLine(BaseModel):
    """First line of ``POST /v1/predict?timeline=true&stream=true`` (``application/x-ndjson``)."""

    type: Literal["start"]
    file: str
    model: str = Field(description=_MODEL)
    model_version: str = Field(description=_MODEL_VERSION)
    duration_s: float = Field(description="the recording's length from its header")
    labels: list[str]


class StreamProgressLine(BaseModel):
    """Progress of a streamed timeline, in seconds of audio."""

    type: Literal["progress"]
    done_s: float = Field(description="seconds of the recording analysed so far (never decreases)")
    total_s: float | None = Field(
        description="the recording's length (the last progress line has done_s == total_s, the length as decoded)"
    )


class StreamSegmentLine(Segment):
    """One timeline segment, sent once final (the same as ``timeline.segments[segment]`` of the result)."""

    type: Literal["segment"]
    segment: int = Field(description="the segment's number, from 0, in time order")


class StreamResultLine(PredictionOut):
    """Last line of a streamed timeline that succeeded: the JSON answer of the same request without stream=true."""

    type: Literal["result"]


class StreamErrorLine(ErrorBody):
    """Last line of a streamed timeline that failed after the answer started (the status says 200)."""

    type: Literal["error"]


class BatchOut(BaseModel):
    results: list[PredictionOut | FileError] = Field(
        description="one entry per uploaded file, in order: a prediction or an error"
    )


class StreamEventOut(BaseModel):
    """One ``{"type": "event"}`` message of ``WebSocket /v1/stream`` (``StreamEvent.to_dict()``)."""

    type: Literal["event"]
    t: float = Field(description="seconds of audio received when the event was computed")
    start_s: float
    end_s: float
    speech: bool = Field(description="whether the window holds any speech (false: label 'no_speech')")
    label: str = Field(description="smoothed top class, 'unknown' or 'no_speech'")
    confidence: float
    scores: dict[str, float]
    speech_s: float = Field(description="seconds of speech in the window")
    reason: Reason | None = Field(description=_REASON)
    quality: QualityOut | None = Field(description="the window's quality (null when the VAD is off)")


class ModelOut(BaseModel):
    name: str | None = Field(None, description=_MODEL)
    version: str | None = Field(None, description=_MODEL_VERSION)
    palette: dict[str, str] = Field(
        {},
        description="'#RRGGBB' colour of each label and of unknown, mixed and no_speech (emovox.palette: "
        "Okabe-Ito, colour-blind safe), the colours of the timeline PNG",
    )
    labels: list[str]
    sample_rate_hz: int
    threshold: float
    temperature: float
    backend: str
    emovox_version: str
    architecture: str | None = None
    created_utc: str | None = None
    calibration: dict = {}
    metrics: dict = {}
    model_card: str | None = None
    gate: dict[str, float] | None = Field(
        None,
        description="the speech gate: no_speech_s (less speech is no_speech), min_emotion_s (less is "
        "unknown, too_little_speech); null when the gate is off",
    )
    stream: dict = Field({}, description="default window_s, hop_s and VAD of /v1/stream")
    limits: dict = {}


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    model: str | None = Field(None, description=_MODEL)
    model_version: str | None = Field(None, description=_MODEL_VERSION)


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: Error responses every prediction route documents.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _err("malformed request (e.g. broken multipart body)"),
    401: _err("missing or wrong API key"),
    408: _err("the body took too long to arrive"),
    413: _err("body larger than --max-upload-mb, audio longer than --max-audio-s, or too many files"),
    422: _err("undecodable, empty or too short audio (the audio gate's message), or a bad parameter"),
    503: _err("too many concurrent requests, model not loaded yet, or the server is draining (see Retry-After)"),
}
