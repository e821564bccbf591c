"""Response shapes of the HTTP API, for the published OpenAPI schema.

They describe what :meth:`Prediction.to_dict` and :meth:`Timeline.to_dict`
produce (the one prediction shape of emovox); routes return those dicts.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Union

from pydantic import BaseModel, Field

__all__ = ["ErrorBody", "PredictionOut", "BatchOut", "ModelOut", "HealthOut", "ReadyOut",
           "ERROR_RESPONSES"]


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable error code, e.g. payload_too_large")
    message: str = Field(description="one line: what was wrong and what to do")


class ErrorBody(BaseModel):
    error: ErrorDetail


class Segment(BaseModel):
    start_s: float
    end_s: float
    label: str = Field(description="top class, or 'unknown' under the model's threshold")
    confidence: float = Field(description="calibrated probability of the top class")
    scores: Dict[str, float] = Field(description="calibrated probability of every class")


class TimelineOut(BaseModel):
    duration_s: float
    summary: dict = Field(description="speech_s, distribution, dominant, label_share")
    segments: List[Segment]


class PredictionOut(BaseModel):
    file: str = Field(description="the uploaded file's name ('upload' for a raw body)")
    start_s: float
    end_s: float
    label: str = Field(description="top class, or 'unknown' under the model's threshold")
    confidence: float = Field(description="calibrated probability of the top class")
    scores: Dict[str, float] = Field(description="calibrated probability of every class")
    timeline: Optional[TimelineOut] = Field(None, description="present with ?timeline=true")


class FileError(BaseModel):
    file: str
    error: ErrorDetail


class BatchOut(BaseModel):
    results: List[Union[PredictionOut, FileError]] = Field(
        description="one entry per uploaded file, in order: a prediction or an error")


class ModelOut(BaseModel):
    labels: List[str]
    sample_rate_hz: int
    threshold: float
    temperature: float
    backend: str
    emovox_version: str
    architecture: Optional[str] = None
    created_utc: Optional[str] = None
    calibration: dict = {}
    metrics: dict = {}
    model_card: Optional[str] = None
    stream: dict = Field({}, description="default window_s, hop_s and VAD of /v1/stream")
    limits: dict = {}


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    model: Optional[str] = None


def _err(description: str) -> dict:
    return {"model": ErrorBody, "description": description}


#: Error responses every prediction route documents.
ERROR_RESPONSES = {
    400: _err("malformed request (e.g. broken multipart body)"),
    401: _err("missing or wrong API key"),
    408: _err("the body took too long to arrive"),
    413: _err("body larger than --max-upload-mb, audio longer than --max-audio-s, or too many files"),
    422: _err("undecodable, empty or too short audio (the audio gate's message), or a bad parameter"),
    503: _err("too many concurrent requests or model not loaded yet (see Retry-After)"),
}
