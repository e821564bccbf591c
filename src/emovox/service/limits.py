"""Service limits: upload size, audio duration, concurrency and time-outs.

:class:`Limits` holds the settings (validated; ``emovox serve`` options map
onto its fields). :func:`read_body` reads a request body while counting its
bytes, so an oversized upload is refused (413) as soon as it crosses the
limit, never read whole into memory. :class:`CapacityGate` admits a bounded
number of concurrent requests or streams and refuses the rest at once with
503 and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import asdict, dataclass

from emovox.errors import ConfigError
from emovox.service.errors import ServiceError

__all__ = ["Limits", "CapacityGate", "read_body"]


@dataclass(frozen=True)
class Limits:
    """What one server accepts.

    Attributes
    ----------
    max_upload_mb : float
        Largest request body (one file, or all files of a batch), MiB.
    max_audio_s : float
        Longest recording accepted by ``/v1/predict`` (per file in a batch), s.
    max_batch_files : int
        Most files in one ``/v1/predict/batch`` request.
    max_concurrent_requests : int
        Prediction requests processed at once; more get 503 + ``Retry-After``.
    max_streams : int
        WebSocket streams open at once; more are refused (close 1013).
    body_timeout_s : float
        Longest time to receive a request body (slow uploads get 408).
    stream_idle_timeout_s : float
        A stream without a message for this long is closed.
    stream_max_duration_s : float
        Longest wall-clock life of one stream.
    max_frame_kb : float
        Largest WebSocket message, KiB.
    retry_after_s : int
        Value of ``Retry-After`` on 503.
    max_header_kb : float
        Largest request line plus headers, KiB (more: 431, before the app runs).
    header_timeout_s : float
        Longest time from a request's first byte to the end of its headers (more: 408).
    max_connections : int
        Open connections at most; a new one over the cap closes the longest-idle one,
        or gets 503 when none is idle (see :mod:`emovox.service.http_guard`).
    drain_s : float
        On SIGTERM, longest time in-flight requests and streams get to finish.
    """

    max_upload_mb: float = 25.0
    max_audio_s: float = 600.0
    max_batch_files: int = 16
    max_concurrent_requests: int = 32
    max_streams: int = 32
    body_timeout_s: float = 60.0
    stream_idle_timeout_s: float = 30.0
    stream_max_duration_s: float = 3600.0
    max_frame_kb: float = 1024.0
    retry_after_s: int = 1
    max_header_kb: float = 32.0
    header_timeout_s: float = 10.0
    max_connections: int = 1000
    drain_s: float = 20.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"limit {name}={value!r} must be a positive number")
        for name in ("max_batch_files", "max_concurrent_requests", "max_streams", "retry_after_s", "max_connections"):
            if int(getattr(self, name)) != getattr(self, name):
                raise ConfigError(f"limit {name}={getattr(self, name)!r} must be a whole number")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_frame_bytes(self) -> int:
        return int(self.max_frame_kb * 1024)

    @property
    def max_header_bytes(self) -> int:
        return int(self.max_header_kb * 1024)

    def to_dict(self) -> dict:
        return asdict(self)


class CapacityGate:
    """At most ``capacity`` holders at once; the next is refused immediately.

    Use as ``with gate.slot(): ...`` inside the event loop (no lock needed:
    the counter is only touched from the loop's thread).
    """

    def __init__(self, capacity: int, *, what: str, code: str, retry_after_s: int) -> None:
        self.capacity = int(capacity)
        self.active = 0
        self.what = what
        self.code = code
        self.retry_after_s = int(retry_after_s)

    def try_acquire(self) -> bool:
        if self.active >= self.capacity:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active = max(0, self.active - 1)

    def busy_error(self) -> ServiceError:
        return ServiceError(
            503,
            self.code,
            f"the server is at its limit of {self.capacity} concurrent {self.what}: retry in {self.retry_after_s} s",
            headers={"Retry-After": str(self.retry_after_s)},
        )

    def slot(self) -> _Slot:
        return _Slot(self)


class _Slot:
    def __init__(self, gate: CapacityGate) -> None:
        self.gate = gate

    def __enter__(self) -> _Slot:
        if not self.gate.try_acquire():
            raise self.gate.busy_error()
        return self

    def __exit__(self, *exc) -> None:
        self.gate.release()


def _too_large(limit: int) -> ServiceError:
    return ServiceError(
        413,
        "payload_too_large",
        f"the request body is larger than the limit of {limit / 1048576:g} MiB: send a smaller or "
        "shorter file (the server's --max-upload-mb sets the limit)",
    )


async def read_body(request, *, max_bytes: int, timeout_s: float) -> bytes:
    """The body of ``request``, refused as soon as it exceeds ``max_bytes``.

    A ``Content-Length`` over the limit is refused before reading; otherwise
    bytes are counted as they arrive and reading stops at the limit.

    Raises
    ------
    ServiceError
        413 when too large, 408 when the body takes longer than ``timeout_s``,
        400 for an invalid ``Content-Length``.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise ServiceError(400, "bad_request", f"Content-Length {declared[:40]!r} is not a number") from None
        if n > max_bytes:
            raise _too_large(max_bytes)
    chunks: list[bytes] = []
    total = 0
    deadline = time.monotonic() + timeout_s
    stream = request.stream().__aiter__()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ServiceError(408, "request_timeout", f"the request body took longer than {timeout_s:g} s to arrive")
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), remaining)
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            raise ServiceError(
                408, "request_timeout", f"the request body took longer than {timeout_s:g} s to arrive"
            ) from None
        total += len(chunk)
        if total > max_bytes:
            raise _too_large(max_bytes)
        if chunk:
            chunks.append(chunk)
    return b"".join(chunks)
