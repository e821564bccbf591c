"""``POST /v1/predict?timeline=true&stream=true``: a long upload's timeline as JSON lines while it is computed.

The answer is ``application/x-ndjson``, one JSON object per line, sent as
each is known (a chunked response: it passes proxies, needs no job store and
no second request):

1. ``{"type": "start", "file", "model", "model_version", "duration_s", "labels"}``;
2. any number of ``{"type": "progress", "done_s", "total_s"}`` (seconds of
   audio analysed, the first at 0, then at most every
   :data:`PROGRESS_INTERVAL_S` of wall time, the last at ``total_s``) and
   ``{"type": "segment", "segment": i, ...Prediction.to_dict()}`` (each
   timeline segment once it is final, in time order: partial results);
3. the last line: ``{"type": "result", ...}``, exactly the JSON answer of the
   same request without ``stream=true``, or ``{"type": "error", "error":
   {"code", "message"}}`` when the analysis failed after the answer had
   started (the status line, already sent, says 200: read the last line).

Everything that can be refused is refused before the first line, with the
usual status and JSON error body: the upload size, a busy server (the
request's concurrency slot is held until the last line), audio longer than
the duration limit, a file that does not decode. A client that goes away
stops the analysis at its next progress step (at most
:data:`~emovox.inference.predictor.PROGRESS_STEP_S` of audio later).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.responses import StreamingResponse

from emovox.errors import EmovoxError
from emovox.service.errors import ServiceError, status_of

__all__ = [
    "MEDIA_TYPE",
    "PROGRESS_INTERVAL_S",
    "NdjsonResponse",
    "timeline_lines",
    "once",
    "start_line",
    "progress_line",
    "segment_line",
    "result_line",
    "error_line",
]

log = logging.getLogger("emovox.service")

MEDIA_TYPE = "application/x-ndjson"
#: Progress lines are sent at most this often (seconds of wall time), besides the first and the last.
PROGRESS_INTERVAL_S = 0.5


def start_line(*, file: str, model: str, model_version: str, duration_s: float, labels) -> dict:
    return {
        "type": "start",
        "file": file,
        "model": model,
        "model_version": model_version,
        "duration_s": round(float(duration_s), 3),
        "labels": list(labels),
    }


def progress_line(done_s: float, total_s: float | None) -> dict:
    return {
        "type": "progress",
        "done_s": round(float(done_s), 3),
        "total_s": None if total_s is None else round(float(total_s), 3),
    }


def segment_line(index: int, segment) -> dict:
    return {"type": "segment", "segment": int(index), **segment.to_dict()}


def result_line(answer: dict) -> dict:
    return {"type": "result", **answer}


def error_line(code: str, message: str) -> dict:
    return {"type": "error", "error": {"code": code, "message": message}}


def _encode(obj: dict) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


class _ClientGone(Exception):
    """Raised in the worker's callbacks once nobody reads the lines: stops the analysis."""


class NdjsonResponse(StreamingResponse):
    """A streamed ``application/x-ndjson`` answer that calls ``on_end`` once it ends, however it ends.

    ``on_end(outcome)`` (``"ok"`` or ``"error"``) runs exactly once: from the
    line generator when it finishes or is cancelled, or here when the
    response ended before the generator started (the client left first).
    """

    media_type = MEDIA_TYPE

    def __init__(self, lines: AsyncIterator[bytes], *, on_end: Callable[[str], None]) -> None:
        # proxies (nginx) must pass each line on at once, not buffer the answer
        super().__init__(lines, media_type=MEDIA_TYPE, headers={"X-Accel-Buffering": "no"})
        self._on_end = on_end

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_end("error")  # a no-op when the lines ended (they called it first)
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                try:
                    await close()  # a generator left at a line: its cleanup (the worker is told to stop)
                except Exception:  # noqa: BLE001 - already failing; the slot is released above
                    pass


def once(fn: Callable[[str], None]) -> Callable[[str], None]:
    """``fn`` made callable once (later calls do nothing): what ``on_end`` must be."""
    done = False

    def call(outcome: str) -> None:
        nonlocal done
        if not done:
            done = True
            fn(outcome)

    return call


async def timeline_lines(
    *, start: dict, work: Callable[..., dict], run_work: Callable[..., Awaitable[dict]], on_end: Callable[[str], None]
) -> AsyncIterator[bytes]:
    """The lines of a streamed timeline (see the module docstring).

    Parameters
    ----------
    start : dict
        The first line (:func:`start_line`).
    work : callable
        ``work(progress=, on_segment=) -> dict``: computes the answer on a
        worker thread, calling ``progress(done_s, total_s)`` and
        ``on_segment(index, segment)`` as
        :meth:`~emovox.inference.Predictor.predict_timeline` does.
    run_work : callable
        Awaits ``work`` on a worker thread (the app's upload pool).
    on_end : callable
        ``on_end(outcome)``, once, when the lines end (releases the request's slot).
    """
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()
    end = object()
    last = [0.0]

    def send(obj: dict) -> None:  # on the worker thread
        loop.call_soon_threadsafe(lines.put_nowait, obj)

    def progress(done_s: float, total_s: float | None) -> None:
        if stop.is_set():
            raise _ClientGone()
        now = time.monotonic()
        if done_s == 0 or (total_s is not None and done_s >= total_s) or now - last[0] >= PROGRESS_INTERVAL_S:
            last[0] = now
            send(progress_line(done_s, total_s))

    def on_segment(index: int, segment) -> None:
        if stop.is_set():
            raise _ClientGone()
        send(segment_line(index, segment))

    def finished(task: asyncio.Future) -> None:
        lines.put_nowait(end)  # after every line the worker sent (they were queued before it returned)
        if not task.cancelled():
            task.exception()  # retrieved here, so a stopped analysis logs no "never retrieved" warning

    outcome = "error"
    task = None
    try:
        yield _encode(start)
        task = asyncio.ensure_future(run_work(work, progress=progress, on_segment=on_segment))
        task.add_done_callback(finished)
        while (item := await lines.get()) is not end:
            yield _encode(item)
        try:
            answer = task.result()
        except EmovoxError as error:
            yield _encode(error_line(status_of(error)[1], str(error)))
        except ServiceError as error:
            yield _encode(error_line(error.code, error.message))
        except Exception:  # noqa: BLE001 - a bug: logged here, one line to the client, never a cut body
            log.exception("emovox: a streamed timeline failed")
            yield _encode(error_line("internal_error", "the analysis failed on the server; see its log"))
        else:
            outcome = "ok"
            yield _encode(result_line(answer))
    finally:
        stop.set()
        on_end(outcome)
