"""One WebSocket stream of ``/v1/stream``: start message, audio frames in, events out.

The protocol (messages, close codes) is defined and validated in
:mod:`emovox.service.stream_protocol`; this module drives it over a
connection: authentication, the stream limit, idle and total time-outs, one
:class:`~emovox.inference.streaming.StreamEngine` per stream fed on a worker
thread (a :class:`~emovox.audio.container_stream.ContainerStreamDecoder`
first for WebM/Ogg), and one error frame plus a close code for any failure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from emovox.errors import AudioError, ConfigError, EmovoxError, UnsupportedAudioError
from emovox.service.container_head import ContainerHead
from emovox.service.stream_protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    CLOSE_INVALID_DATA,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
    ProtocolError,
    StreamStart,
    decode_samples,
    end_message,
    error_message,
    event_message,
    parse_control_message,
    parse_start_message,
    ready_message,
)

__all__ = ["run_stream"]

log = logging.getLogger("emovox.service")


#: Container bytes a stream may send without any audio coming out of the decoder.
MAX_CONTAINER_BYTES_WITHOUT_AUDIO = 256 * 1024


class _Closed(Exception):
    """The client disconnected (or the WebSocket layer closed the connection: ``code``)."""

    def __init__(self, code: int | None = None) -> None:
        super().__init__(code)
        self.code = code


class _Draining(Exception):
    """The server is shutting down (SIGTERM): end the stream with what it has."""


class _Session:
    """State of one stream: engine, optional container decoder, counters (worker-thread side)."""

    def __init__(self, start: StreamStart, engine, decoder) -> None:
        self.start = start
        self.engine = engine
        self.decoder = decoder
        self.head = ContainerHead(start.format) if decoder is not None else None
        self.audio_s = 0.0
        self.events = 0

    def feed(self, data: bytes) -> list[dict]:
        events = []
        if self.decoder is None:
            y = decode_samples(data, self.start)
            assert self.start.sample_rate_hz is not None  # a raw format needs its rate (parse_start checks)
            self.audio_s += y.size / self.start.sample_rate_hz
            events = self.engine.feed(y, self.start.sample_rate_hz)
        else:
            assert self.head is not None  # there is a head whenever there is a decoder
            if not self.head.done:
                self.head.feed(data)  # garbage after the magic is refused here, not waited on
            if self.decoder.samples_out == 0 and self.decoder.bytes_in + len(data) > MAX_CONTAINER_BYTES_WITHOUT_AUDIO:
                raise UnsupportedAudioError(
                    f"{self.decoder.bytes_in + len(data)} bytes of {self.start.format} without any audio: send "
                    "the recorder's chunks exactly as MediaRecorder produces them"
                )
            for y, rate in self.decoder.feed(data):
                self.audio_s += y.size / rate
                events += self.engine.feed(y, rate)
        self.events += len(events)
        return [e.to_dict() for e in events]

    def finish(self) -> list[dict]:
        events = []
        if self.decoder is not None:
            for y, rate in self.decoder.close():
                self.audio_s += y.size / rate
                events += self.engine.feed(y, rate)
        events += self.engine.close()
        self.events += len(events)
        return [e.to_dict() for e in events]

    def abort(self) -> None:
        if self.decoder is not None:
            self.decoder.abort()


def _make_session(state, start: StreamStart) -> _Session:
    from emovox.audio.container_stream import ContainerStreamDecoder
    from emovox.inference.streaming import StreamEngine

    d = state.stream
    try:
        engine = StreamEngine(
            state.predictor,
            window_s=start.window_s or d.window_s,
            hop_s=start.hop_s or min(d.hop_s, start.window_s or d.hop_s),
            vad=d.vad,
        )
    except ConfigError as error:
        raise ProtocolError("bad_start", str(error)) from None
    decoder = ContainerStreamDecoder(format=start.format) if start.is_container else None
    return _Session(start, engine, decoder)


async def _send(websocket, message: dict) -> None:
    try:
        await websocket.send_text(json.dumps(message, separators=(",", ":")))
    except Exception as error:  # noqa: BLE001 -- any send failure means the client is gone
        raise _Closed() from error


async def _fail(websocket, code: str, message: str, close_code: int) -> None:
    try:
        await websocket.send_text(json.dumps(error_message(code, message)))
        await websocket.close(code=close_code, reason=code[:100])
    except Exception:  # noqa: BLE001 -- the client may already be gone
        pass


async def _receive(websocket, timeout_s: float, drain) -> dict:
    """The next message; ``asyncio.TimeoutError`` after ``timeout_s``, ``_Draining`` once ``drain`` is done."""
    if drain.done():
        raise _Draining()
    receiving = asyncio.ensure_future(websocket.receive())
    try:
        await asyncio.wait((receiving, drain), timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not receiving.done():
            receiving.cancel()
    if not receiving.done() or receiving.cancelled():
        if drain.done():
            raise _Draining()
        raise asyncio.TimeoutError()
    message = receiving.result()
    if message["type"] == "websocket.disconnect":
        raise _Closed(message.get("code"))
    return message


async def run_stream(websocket, state) -> None:
    """Serve one stream until it ends, fails or times out (never raises)."""
    from starlette.concurrency import run_in_threadpool

    metrics = state.metrics
    limits = state.limits
    await websocket.accept()
    if state.api_keys is not None and not state.api_keys.authenticates(websocket.headers, websocket.query_params):
        metrics.streams.labels("unauthorized").inc()
        await _fail(
            websocket,
            "unauthorized",
            "a valid API key is required: send it as ?api_key=KEY, 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
            CLOSE_POLICY,
        )
        return
    if state.draining:
        metrics.streams.labels("draining").inc()
        await _fail(
            websocket, "draining", "the server is shutting down: retry, another instance will answer", CLOSE_TRY_AGAIN
        )
        return
    if state.predictor is None:
        metrics.streams.labels("not_ready").inc()
        await _fail(websocket, "not_ready", "the model is not loaded yet: retry shortly", CLOSE_TRY_AGAIN)
        return
    if not state.streams_gate.try_acquire():
        metrics.streams.labels("busy").inc()
        await _fail(
            websocket,
            "too_many_streams",
            f"the server is at its limit of {state.streams_gate.capacity} concurrent streams: "
            f"retry in {limits.retry_after_s} s",
            CLOSE_TRY_AGAIN,
        )
        return
    metrics.streams_active.inc()
    session: _Session | None = None
    outcome = "error"
    started = time.monotonic()
    deadline = started + limits.stream_max_duration_s
    drain = state.drain_future()

    async def next_message() -> dict:
        remaining = deadline - time.monotonic()
        timeout = min(limits.stream_idle_timeout_s, remaining)
        try:
            return await _receive(websocket, max(0.0, timeout), drain)
        except asyncio.TimeoutError:
            if remaining <= limits.stream_idle_timeout_s:
                raise ProtocolError(
                    "stream_too_long",
                    f"the stream reached its limit of {limits.stream_max_duration_s:g} s: start a new one",
                ) from None
            raise ProtocolError(
                "idle_timeout",
                f"no message for {limits.stream_idle_timeout_s:g} s: "
                'send audio continuously, or {"type": "end"} to finish',
            ) from None

    try:
        first = await next_message()
        start = parse_start_message(first["text"] if first.get("text") is not None else first.get("bytes"))
        session = await run_in_threadpool(_make_session, state, start)
        await _send(
            websocket,
            ready_message(
                start,
                window_s=session.engine.window_s,
                hop_s=session.engine.hop_s,
                labels=state.predictor.labels,
                threshold=state.predictor.threshold,
                model=state.predictor.model_name,
                model_version=state.predictor.model_version,
                idle_timeout_s=limits.stream_idle_timeout_s,
                max_duration_s=limits.stream_max_duration_s,
                max_frame_bytes=limits.max_frame_bytes,
            ),
        )
        while True:
            message = await next_message()
            data = message.get("bytes")
            if data is None:
                parse_control_message(message.get("text"))  # only {"type": "end"} passes
                events = await run_in_threadpool(session.finish)
                for event in events:
                    await _send(websocket, event_message(event))
                await _send(websocket, end_message(audio_s=session.audio_s, events=session.events))
                await websocket.close(code=CLOSE_NORMAL)
                outcome = "ok"
                break
            if len(data) > limits.max_frame_bytes:
                raise ProtocolError(
                    "frame_too_large",
                    f"a frame of {len(data)} bytes exceeds the limit of "
                    f"{limits.max_frame_bytes} bytes: send smaller chunks",
                    close_code=CLOSE_TOO_BIG,
                )
            before = session.audio_s
            events = await run_in_threadpool(session.feed, data)
            metrics.stream_audio.inc(session.audio_s - before)
            for event in events:
                await _send(websocket, event_message(event))
            metrics.stream_events.inc(len(events))
    except _Draining:
        outcome = await _end_for_shutdown(websocket, session)
    except _Closed as closed:
        # 1009: the WebSocket layer refused an oversized frame (its error frame is already sent)
        outcome = "frame_too_large" if closed.code == CLOSE_TOO_BIG else "client_closed"
    except ProtocolError as error:
        outcome = error.code
        await _fail(websocket, error.code, error.message, error.close_code)
    except AudioError as error:
        outcome = "invalid_audio"
        await _fail(websocket, "invalid_audio", str(error), CLOSE_INVALID_DATA)
    except EmovoxError as error:
        outcome = "invalid_input"
        await _fail(websocket, "invalid_input", str(error), CLOSE_INVALID_DATA)
    except Exception:  # noqa: BLE001 -- never a traceback to the client
        log.exception("unexpected error in a stream")
        outcome = "internal_error"
        await _fail(websocket, "internal_error", "the server failed unexpectedly; the error was logged", CLOSE_INTERNAL)
    finally:
        if session is not None and outcome not in ("ok", "drained"):
            await run_in_threadpool(session.abort)
        state.streams_gate.release()
        state.memory.activity_ended()  # the engine's detector session and buffers are freed
        metrics.streams_active.dec()
        metrics.streams.labels(outcome).inc()


async def _end_for_shutdown(websocket, session: _Session | None) -> str:
    """End a stream because the server drains: its last events, an end message, close 1001."""
    from starlette.concurrency import run_in_threadpool

    if session is None:  # not started yet: nothing to finish
        await _fail(
            websocket, "draining", "the server is shutting down: retry, another instance will answer", CLOSE_TRY_AGAIN
        )
        return "draining"
    try:
        events = await run_in_threadpool(session.finish)
    except Exception as error:  # noqa: BLE001 -- e.g. a container stream that held no audio yet
        log.info("a stream ended by the drain had no tail: %s", error)
        events = []
    try:
        for event in events:
            await _send(websocket, event_message(event))
        await _send(websocket, end_message(audio_s=session.audio_s, events=session.events, reason="server_shutdown"))
        await websocket.close(code=CLOSE_GOING_AWAY, reason="server_shutdown")
    except _Closed:
        return "client_closed"
    except Exception:  # noqa: BLE001 -- the client may be gone
        return "client_closed"
    return "drained"
