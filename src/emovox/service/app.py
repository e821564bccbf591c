"""The emovox HTTP/WebSocket service: :func:`create_app` builds the FastAPI app.

Routes (see ``docs/service.md``):

- ``GET /`` -- the web page (``static/``: no CDN, every asset served here);
- ``POST /v1/predict`` -- one file (multipart field ``file`` or the raw
  body), ``?timeline=true`` for a timeline, ``&format=srt|vtt|audacity|elan``
  for that timeline as subtitles, labels or an ELAN document (the text, with
  its media type and a ``Content-Disposition`` file name), ``&stream=true``
  for the timeline as JSON lines while it is computed (progress, each
  segment, then the answer: :mod:`emovox.service.ndjson`);
  ``POST /v1/predict/batch`` -- several files, a result or an error per file;
  every JSON answer names the model (``model``, ``model_version``);
- ``GET /v1/model`` (with the colour of each label, ``palette``), ``/healthz``,
  ``/readyz``, ``/metrics``;
- ``WebSocket /v1/stream`` -- live audio in, events out
  (:mod:`emovox.service.stream_protocol`, :mod:`emovox.service.stream_session`).

The app stays thin: it parses, checks limits, calls the
:class:`~emovox.inference.Predictor` on a worker thread (the event loop never
runs the model) and formats. Every error has the one body
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from emovox.errors import ConfigError, EmovoxError
from emovox.export.timeline_formats import FORMATS, render_timeline
from emovox.palette import palette_for

try:  # route signatures need these names at module level (FastAPI reads the annotations)
    from fastapi import FastAPI, Query, Request, WebSocket
    from fastapi.responses import FileResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect
    from starlette.staticfiles import StaticFiles
except ImportError as _error:  # pragma: no cover - depends on the environment
    raise ConfigError(f"the service needs FastAPI ({_error.name} is missing): pip install 'emovox[service]'") from None
import emovox.service.ndjson as ndjson
from emovox.service.auth import ApiKeys, authorize_http
from emovox.service.errors import ServiceError, error_body, install_error_handlers, status_of
from emovox.service.limits import CapacityGate, Limits, read_body
from emovox.service.memory import MemoryReturner
from emovox.service.metrics import Metrics, MetricsMiddleware

__all__ = ["create_app", "ServiceState", "StreamDefaults"]

log = logging.getLogger("emovox.service")

STATIC_DIR = Path(__file__).parent / "static"

_RAW_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "the audio: multipart field `file`, or the file's bytes as the raw body",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
_BATCH_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "several audio files as multipart fields (any field name, e.g. `files`)",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {"type": "array", "minItems": 1, "items": {"type": "string", "format": "binary"}}
                    },
                }
            }
        },
    }
}


@dataclass(frozen=True)
class StreamDefaults:
    """Analysis settings of ``/v1/stream`` when the start message leaves them out."""

    window_s: float = 3.0
    hop_s: float = 0.5
    vad: str = "auto"


@dataclass
class ServiceState:
    """Everything the routes share (one per app)."""

    limits: Limits
    metrics: Metrics
    api_keys: ApiKeys | None
    stream: StreamDefaults
    predictor: Any = None
    load_error: str | None = None
    backend_name: str = ""
    requests_gate: CapacityGate = field(init=False)
    streams_gate: CapacityGate = field(init=False)
    draining: bool = field(init=False, default=False)
    memory: MemoryReturner = field(init=False, default_factory=MemoryReturner)
    _drain_future: Any = field(init=False, default=None)
    _timeline_pool: queue.SimpleQueue = field(init=False, default_factory=queue.SimpleQueue)
    _upload_limiter: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.requests_gate = CapacityGate(
            self.limits.max_concurrent_requests,
            what="prediction requests",
            code="busy",
            retry_after_s=self.limits.retry_after_s,
        )
        self.streams_gate = CapacityGate(
            self.limits.max_streams, what="streams", code="too_many_streams", retry_after_s=self.limits.retry_after_s
        )

    def ready_predictor(self):
        if self.predictor is None:
            message = (
                "the model could not be loaded; see the server log"
                if self.load_error
                else "the model is still loading: retry shortly"
            )
            raise ServiceError(503, "not_ready", message, headers={"Retry-After": str(self.limits.retry_after_s)})
        return self.predictor

    def refuse_if_draining(self) -> None:
        """503 ``draining`` once the server is shutting down (SIGTERM): new work goes elsewhere."""
        if self.draining:
            raise ServiceError(
                503,
                "draining",
                "the server is shutting down: retry, another instance will answer",
                headers={"Retry-After": str(self.limits.retry_after_s), "Connection": "close"},
            )

    def begin_drain(self) -> None:
        """Refuse new work from now on and wake the streams in progress (they end with their last events)."""
        self.draining = True
        if self._drain_future is not None and not self._drain_future.done():
            self._drain_future.set_result(None)

    def drain_future(self):
        """A future of the event loop, done once the server drains (what streams wait on beside their frames)."""
        import asyncio

        loop = asyncio.get_running_loop()
        if self._drain_future is None or self._drain_future.get_loop() is not loop:  # one app, a new server
            self._drain_future = loop.create_future()
            if self.draining:
                self._drain_future.set_result(None)
        return self._drain_future

    async def run_prediction(self, fn, *args, **kwargs):
        """Run an upload's model work on a worker thread, at most one per CPU core at a time.

        Uploads queue here instead of crowding the CPU with dozens of threads,
        so a live stream's frames (on the general pool) are not starved.
        """
        import functools

        import anyio.to_thread

        if self._upload_limiter is None:  # created inside the event loop
            self._upload_limiter = anyio.CapacityLimiter(max(1, os.cpu_count() or 1))
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self._upload_limiter)

    def timeline_predict(self, source, **kwargs):
        """``predict_timeline`` on a predictor of its own (its VAD is not shared across threads).

        ``kwargs`` go to :meth:`~emovox.inference.Predictor.predict_timeline`
        (``progress``, ``on_segment``).
        """
        from emovox.inference import Predictor

        base = self.ready_predictor()
        try:
            p = self._timeline_pool.get_nowait()
        except queue.Empty:  # a clone sharing the (thread-safe) backend
            p = Predictor(
                base.backend,
                base.info,
                min_confidence=base.threshold,
                batch_size=base.batch_size,
                adaptation=base.adaptation,
                gate=base.gate or False,
            )
        try:
            return p.predict_timeline(source, **kwargs)
        finally:
            self._timeline_pool.put(p)


# ---------------------------------------------------------------------- helpers
def model_name(predictor) -> str | None:
    """The served model's architecture name (``architecture`` of ``GET /v1/model``)."""
    return (predictor.info.config.get("architecture") or {}).get("name")


def model_head(predictor) -> dict:
    """``{model, model_version}``: the model that answered, as every answer names it."""
    return {"model": predictor.model_name, "model_version": predictor.model_version}


_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def safe_filename(name: str | None) -> str:
    """A client-supplied file name reduced to its base name, printable, at most 120 characters."""
    if not name:
        return "upload"
    base = re.split(r"[\\/]", str(name))[-1]
    base = _UNSAFE.sub("", base).strip()[:120]
    return base or "upload"


def _named_bytes(data: bytes, name: str) -> io.BytesIO:
    bio = io.BytesIO(data)
    bio.name = name  # what the audio layer quotes in its messages (never a server path)
    return bio


def _check_duration(state: ServiceState, data: bytes, name: str) -> float:
    """The upload's duration in seconds; 413 ``audio_too_long`` past ``max_audio_s``; an undecodable
    upload raises its AudioError."""
    from emovox.audio import audio_duration_s

    duration_s = audio_duration_s(_named_bytes(data, name))
    limit = state.limits.max_audio_s
    if duration_s > limit:
        raise ServiceError(
            413,
            "audio_too_long",
            f"{name!r} lasts {duration_s:.1f} s, longer than the limit of {limit:g} s: "
            "cut it into shorter parts or use `emovox predict` locally",
        )
    return duration_s


def predict_bytes(
    state: ServiceState,
    data: bytes,
    name: str,
    *,
    timeline: bool,
    checked: bool = False,
    progress=None,
    on_segment=None,
) -> dict:
    """One file's prediction dict (runs on a worker thread).

    ``{file, model, model_version, **Prediction.to_dict()}``, plus ``timeline``
    (``Timeline.to_dict()``) when asked, the top level then being
    ``Timeline.overall()``. Audio without speech is a prediction too
    (label ``no_speech``), not an error. ``checked``: the duration was checked
    already; ``progress`` and ``on_segment`` go to ``predict_timeline``.

    Raises
    ------
    ServiceError
        413 for audio longer than ``max_audio_s``.
    EmovoxError
        Undecodable, empty or too short audio (422).
    """
    predictor = state.ready_predictor()
    if not checked:
        _check_duration(state, data, name)
    head = {"file": name, **model_head(predictor)}
    if timeline:
        t = state.timeline_predict(_named_bytes(data, name), progress=progress, on_segment=on_segment)
        return {**head, **t.overall().to_dict(), "timeline": t.to_dict()}
    return {**head, **predictor.predict(_named_bytes(data, name)).to_dict()}


#: ``format`` of ``/v1/predict``: a timeline export (:data:`emovox.export.timeline_formats.FORMATS`).
if TYPE_CHECKING:  # built from the formats at run time, which a type checker cannot follow: plain str
    ExportFormat = str
else:
    ExportFormat = Literal[tuple(FORMATS)]
#: The 200 answers of ``/v1/predict`` besides JSON, for the published schema.
_EXPORT_CONTENT = {f"{fmt.media_type}": {"schema": {"type": "string"}} for fmt in FORMATS.values()}
_EXPORT_CONTENT[ndjson.MEDIA_TYPE] = {
    "schema": {
        "type": "string",
        "description": "with stream=true: one JSON object per line, `type` start, then progress "
        "and segment lines, then result (the JSON answer) or error",
    }
}


def content_disposition(filename: str) -> str:
    """``attachment`` with ``filename`` as ASCII (others replaced) and as RFC 5987 UTF-8 (``filename*``)."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def export_bytes(state: ServiceState, data: bytes, name: str, *, fmt: str) -> tuple[str, str, str]:
    """One file's timeline in export format ``fmt`` (runs on a worker thread).

    Returns ``(text, media type, file name)``: the file name is the upload's
    stem with the format's extension (``interview.srt``). Errors as
    :func:`predict_bytes`.
    """
    spec = FORMATS[fmt]
    _check_duration(state, data, name)
    t = state.timeline_predict(_named_bytes(data, name))
    text = render_timeline(t, fmt, title=name, media=name)  # the upload's bare name: never a server path
    return text, f"{spec.media_type}; charset=utf-8", f"{Path(name).stem or 'upload'}{spec.extension}"


async def _files_of(request, body: bytes, *, max_files: int) -> list[tuple[str, bytes]]:
    """``(file name, bytes)`` of every file part of a multipart body (or the raw body)."""
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException
    from starlette.requests import Request

    ctype = request.headers.get("content-type", "").lower()
    if ctype.startswith("application/x-www-form-urlencoded"):
        return []  # a form without a file field: "missing_file"
    if not ctype.startswith("multipart/form-data"):
        return [("upload", body)] if body else []  # no body: "missing_file", not an empty recording
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        # the parser's own file cap is loose: the body size is already bounded, and the count is checked below
        form = await Request(request.scope, replay).form(max_files=1000, max_fields=64)
    except HTTPException as error:
        raise ServiceError(400, "bad_multipart", f"the multipart body is malformed: {error.detail}") from None
    try:
        files = []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files.append((key, safe_filename(value.filename), await value.read()))
    finally:
        await form.close()
    if len(files) > max_files:
        raise ServiceError(
            413,
            "too_many_files",
            f"{len(files)} files in one request, more than the limit of {max_files}: split the batch",
        )
    return [(name, data) for _, name, data in files]


# ---------------------------------------------------------------------- the app
def create_app(
    predictor=None,
    *,
    model_dir: str | None = None,
    backend: str = "auto",
    limits: Limits | None = None,
    api_keys: ApiKeys | None = None,
    stream: StreamDefaults | None = None,
    num_threads: int | None = None,
):
    """Build the service.

    Parameters
    ----------
    predictor : Predictor or None
        A loaded model to serve; ``None`` loads ``model_dir`` (the bundled
        model when ``None``) at start-up on a worker thread (``/readyz`` says
        when it is ready).
    model_dir, backend, num_threads
        Passed to :func:`emovox.inference.load_model` when ``predictor`` is ``None``.
    limits : Limits or None
        Upload size, duration, concurrency and time-outs (defaults: :class:`Limits`).
    api_keys : ApiKeys or None
        Keys accepted (see :mod:`emovox.service.auth`); ``None``: open service.
    stream : StreamDefaults or None
        Default window, hop and VAD of streams.
    """
    import emovox.service.schemas as schemas
    from emovox import __version__
    from emovox.service.stream_session import run_stream

    state = ServiceState(
        limits=limits or Limits(),
        metrics=Metrics(),
        api_keys=api_keys,
        stream=stream or StreamDefaults(),
        predictor=predictor,
    )
    if predictor is not None:
        state.backend_name = getattr(predictor.backend, "name", type(predictor.backend).__name__)

    @asynccontextmanager
    async def lifespan(app):
        if state.predictor is None:
            from emovox.inference import load_model

            try:
                state.predictor = await run_in_threadpool(
                    load_model, model_dir, backend=backend, num_threads=num_threads
                )
                state.backend_name = getattr(state.predictor.backend, "name", backend)
            except EmovoxError as error:
                state.load_error = str(error)
                log.error("emovox: the model could not be loaded: %s", error)
        yield

    app = FastAPI(
        title="emovox",
        version=__version__,
        lifespan=lifespan,
        description="Speech emotion recognition: predict files, stream live audio. "
        'Every error is `{"error": {"code", "message"}}`.',
        docs_url=None,
        redoc_url=None,  # their pages load scripts from a CDN: the service works offline
    )
    app.state.emovox = state
    install_error_handlers(app)

    @app.middleware("http")
    async def _auth(request: Request, call_next):  # with keys on, only /healthz is open (see auth.py)
        if state.api_keys is not None:
            refusal = await authorize_http(request, state.api_keys)
            if refusal is not None:
                return refusal
            response = await call_next(request)
            # what needed a key must not be served from a cache to someone without one
            response.headers.setdefault("Cache-Control", "private, no-cache")
            return response
        return await call_next(request)

    app.add_middleware(MetricsMiddleware, metrics=state.metrics)

    # ------------------------------------------------------------------ page and probes
    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.head("/healthz", include_in_schema=False)
    @app.get("/healthz", response_model=schemas.HealthOut, summary="liveness: the process answers")
    async def healthz():
        return {"status": "ok"}

    @app.head("/readyz", include_in_schema=False)
    @app.get(
        "/readyz",
        response_model=schemas.ReadyOut,
        summary="readiness: the model is loaded",
        responses={
            503: {"model": schemas.ErrorBody, "description": "model not loaded (yet), or the server is draining"}
        },
    )
    async def readyz():
        state.ready_predictor()
        state.refuse_if_draining()
        return {"status": "ready", **model_head(state.predictor)}

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    async def metrics():
        body, ctype = state.metrics.render()
        return Response(body, media_type=ctype)

    @app.get(
        "/v1/model",
        response_model=schemas.ModelOut,
        summary="the served model",
        responses={401: schemas.ERROR_RESPONSES[401], 503: schemas.ERROR_RESPONSES[503]},
    )
    async def model_info():
        p = state.ready_predictor()
        config = p.info.config
        gate = getattr(p, "gate", None)
        return {
            "name": p.model_name,
            "version": p.model_version,
            "palette": palette_for(p.labels),
            "labels": list(p.labels),
            "sample_rate_hz": p.sample_rate_hz,
            "threshold": p.threshold,
            "temperature": p.temperature,
            "backend": state.backend_name,
            "emovox_version": __version__,
            "architecture": model_name(p),
            "created_utc": config.get("created_utc"),
            "calibration": config.get("calibration") or {},
            "metrics": config.get("metrics") or {},
            "model_card": config.get("model_card"),
            "gate": {"no_speech_s": gate.no_speech_s, "min_emotion_s": gate.min_emotion_s} if gate else None,
            "stream": {"window_s": state.stream.window_s, "hop_s": state.stream.hop_s, "vad": state.stream.vad},
            "limits": state.limits.to_dict(),
        }

    # ------------------------------------------------------------------ predictions
    async def _body(request: Request) -> bytes:
        try:
            return await read_body(
                request, max_bytes=state.limits.max_upload_bytes, timeout_s=state.limits.body_timeout_s
            )
        except ClientDisconnect:
            raise ServiceError(400, "client_disconnected", "the client closed the connection mid-upload") from None

    @app.post(
        "/v1/predict",
        response_model=schemas.PredictionOut,
        openapi_extra=_RAW_BODY_DOC,
        response_model_exclude_unset=True,
        summary="emotion of one recording",
        responses={
            200: {
                "content": _EXPORT_CONTENT,
                "description": "the prediction as JSON, or with format= the timeline as text",
            },
            **schemas.ERROR_RESPONSES,
        },
    )
    async def predict(
        request: Request,
        timeline: bool = Query(False, description="analyse as a timeline of speech segments"),
        format: ExportFormat | None = Query(  # noqa: A002 - the query parameter's name
            None,
            description="with timeline=true: the timeline as srt (SubRip), vtt (WebVTT), "
            "audacity (label track) or elan (EAF 3.0) text instead of JSON",
        ),
        stream: bool = Query(
            False,
            description="with timeline=true: answer application/x-ndjson, "
            "one JSON line per progress step and segment as it "
            "is computed, then the JSON answer as the last line",
        ),
    ):
        state.refuse_if_draining()
        if format is not None and not timeline:
            raise ServiceError(422, "invalid_parameter", f"format={format} exports a timeline: add timeline=true")
        if stream and not timeline:
            raise ServiceError(
                422,
                "invalid_parameter",
                "stream=true sends a timeline's segments as they are computed: add timeline=true",
            )
        if stream and format is not None:
            raise ServiceError(
                422, "invalid_parameter", f"stream=true answers JSON lines and format={format} a text file: choose one"
            )
        gate = state.requests_gate
        if not gate.try_acquire():
            raise gate.busy_error()
        streaming = False  # once the streamed answer starts, it releases the slot itself
        try:
            state.ready_predictor()
            body = await _body(request)
            files = await _files_of(request, body, max_files=1)
            if not files:
                raise ServiceError(
                    422, "missing_file", "no audio: send it as multipart field 'file' or as the raw request body"
                )
            name, data = files[0]
            try:
                if stream:
                    result = await _streamed_timeline(name, data)
                    streaming = True
                    return result
                if format is not None:
                    text, media_type, filename = await state.run_prediction(export_bytes, state, data, name, fmt=format)
                    result = Response(
                        text, media_type=media_type, headers={"Content-Disposition": content_disposition(filename)}
                    )
                else:
                    result = await state.run_prediction(predict_bytes, state, data, name, timeline=timeline)
            except EmovoxError:
                state.metrics.predictions.labels("error").inc()
                raise
            finally:
                if not streaming:
                    state.memory.activity_ended()  # the decoded audio is freed: give it back once traffic pauses
            state.metrics.predictions.labels("ok").inc()
            return result
        finally:
            if not streaming:
                gate.release()

    async def _streamed_timeline(name: str, data: bytes):
        """``stream=true``: the checks first (a normal error status), then the lines (:mod:`.ndjson`)."""
        predictor = state.ready_predictor()
        duration_s = await state.run_prediction(_check_duration, state, data, name)  # 413 / 422 before any line
        if not duration_s > 0:  # what decoding would find at once: refused with a status, not a line
            from emovox.errors import EmptyAudioError

            raise EmptyAudioError(f"audio input {name!r} contains no samples: pass a recording with sound in it")

        def work(**callbacks) -> dict:
            return predict_bytes(state, data, name, timeline=True, checked=True, **callbacks)

        def run_work(fn, **kwargs):
            return state.run_prediction(fn, **kwargs)

        @ndjson.once
        def on_end(outcome: str) -> None:
            state.requests_gate.release()
            state.metrics.predictions.labels(outcome).inc()
            state.memory.activity_ended()

        start = ndjson.start_line(file=name, duration_s=duration_s, labels=predictor.labels, **model_head(predictor))
        return ndjson.NdjsonResponse(
            ndjson.timeline_lines(start=start, work=work, run_work=run_work, on_end=on_end), on_end=on_end
        )

    @app.post(
        "/v1/predict/batch",
        response_model=schemas.BatchOut,
        openapi_extra=_BATCH_BODY_DOC,
        response_model_exclude_unset=True,
        summary="emotion of several recordings (a result or an error per file)",
        responses={
            **schemas.ERROR_RESPONSES,
            415: {"model": schemas.ErrorBody, "description": "the body is not multipart/form-data"},
        },
    )
    async def predict_batch(
        request: Request, timeline: bool = Query(False, description="analyse each file as a timeline")
    ):
        state.refuse_if_draining()
        with state.requests_gate.slot():
            state.ready_predictor()
            body = await _body(request)
            if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
                raise ServiceError(
                    415,
                    "unsupported_media_type",
                    "send the files as multipart/form-data fields (e.g. files=@a.wav files=@b.wav)",
                )
            files = await _files_of(request, body, max_files=state.limits.max_batch_files)
            if not files:
                raise ServiceError(422, "missing_file", "the multipart body holds no file: add file fields")
            results = []
            for name, data in files:
                try:
                    results.append(await state.run_prediction(predict_bytes, state, data, name, timeline=timeline))
                    state.metrics.predictions.labels("ok").inc()
                except EmovoxError as error:
                    state.metrics.predictions.labels("error").inc()
                    results.append({"file": name, **error_body(status_of(error)[1], str(error))})
                except ServiceError as error:
                    if error.status == 503:
                        raise
                    state.metrics.predictions.labels("error").inc()
                    results.append({"file": name, **error_body(error.code, error.message)})
            state.memory.activity_ended()
            return {"results": results}

    # ------------------------------------------------------------------ streaming
    @app.websocket("/v1/stream", name="stream")
    async def stream_route(websocket: WebSocket):  # not "stream": that is create_app's parameter
        await run_stream(websocket, state)

    return app
