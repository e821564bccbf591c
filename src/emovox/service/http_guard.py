"""Connection-level limits under the app: header size, header time-out, open connections.

uvicorn's default HTTP/1.1 protocol (``httptools``) bounds neither the size
of a request's headers nor the time a client may take to send them, and it
accepts connections until the process runs out of file descriptors: one
request with a 100 MiB header held the event loop for seconds and grew the
process by hundreds of MB; 1,100 connections that never finish their headers
took every descriptor of a 1,024-descriptor process (``docs/service.md``,
*Connection limits*, has the measurements). :func:`guarded_http_protocol`
returns uvicorn's protocol class extended with

- a **header budget**: at most ``max_header_bytes`` of request line and
  headers are parsed; past it the client gets ``431`` (one JSON error body)
  and the connection is closed, before the app (or the API-key check) runs;
- a **header time-out**: a request's headers must be complete within
  ``header_timeout_s`` of its first byte (of the connection, for a new one);
  otherwise ``408`` and close (a connection that sent nothing is just closed);
- a **connection cap**: with ``max_connections`` open, a new connection
  closes the connection that has been *idle* longest (no request in
  progress: waiting for headers, or kept alive between requests), so
  connections that hold nothing cannot crowd out new clients; when every
  open connection has a request or stream in progress, the new one gets
  ``503`` + ``Retry-After`` and is closed.

Every refusal is counted in a log line of the ``emovox.service`` logger
(the first at once, then one summary at most every ``log_interval_s``), so
an attack shows up in the log without flooding it.

:func:`frame_limit_websocket_protocol` gives uvicorn's WebSocket protocol that
sends the stream protocol's JSON error frame (``frame_too_large``) before
the ``1009`` close when a frame is over ``ws_max_size`` (the frame is
refused from its header, never read).
"""

from __future__ import annotations

import http
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from emovox.errors import ConfigError

if TYPE_CHECKING:
    import asyncio

__all__ = ["GuardSettings", "ConnectionGuard", "guarded_http_protocol", "frame_limit_websocket_protocol"]

log = logging.getLogger("emovox.service")

#: Most bytes read and dropped after an error response before the connection is cut.
_LINGER_BYTES = 1 << 20
#: Seconds a connection lingers after an error response (so the client reads it before a reset).
_LINGER_S = 1.0


@dataclass(frozen=True)
class GuardSettings:
    """Connection limits (see the module docstring).

    Attributes
    ----------
    max_header_bytes : int
        Largest request line plus headers, bytes.
    header_timeout_s : float
        Longest time from a request's first byte to the end of its headers, s.
    max_connections : int
        Open connections (HTTP and WebSocket) at most.
    retry_after_s : int
        ``Retry-After`` of the 503 for a connection over the cap.
    log_interval_s : float
        Shortest time between two summary log lines.
    body_after_response_s : float
        Longest time a client may go on sending a body the server has already
        answered (e.g. with 413) before the connection is closed, s.
    """

    max_header_bytes: int = 32 * 1024
    header_timeout_s: float = 10.0
    max_connections: int = 1000
    retry_after_s: int = 1
    log_interval_s: float = 10.0
    body_after_response_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_header_bytes < 1024:
            raise ConfigError(f"max_header_bytes={self.max_header_bytes} is too small: allow at least 1024")
        if not self.header_timeout_s > 0:
            raise ConfigError(f"header_timeout_s={self.header_timeout_s} must be positive")
        if self.max_connections < 1:
            raise ConfigError(f"max_connections={self.max_connections} must be at least 1")


class ConnectionGuard:
    """State shared by the connections of one server: idle connections (oldest first) and the log."""

    def __init__(self, settings: GuardSettings) -> None:
        self.settings = settings
        self.idle: dict = {}  # protocol -> None, in the order they became idle
        self.counts: dict[str, int] = {}
        self.total: dict[str, int] = {}
        self._last_log = -float("inf")
        self._flush_scheduled = False

    # ------------------------------------------------------------------ idle registry
    def mark_idle(self, conn) -> None:
        self.idle.pop(conn, None)
        self.idle[conn] = None

    def mark_busy(self, conn) -> None:
        self.idle.pop(conn, None)

    def evict_oldest_idle(self, but) -> bool:
        """Close the longest-idle connection other than ``but``; False when there is none."""
        for conn in self.idle:
            if conn is not but:
                self.idle.pop(conn)
                conn.transport.abort()  # frees the descriptor now; the client sees a reset
                return True
        return False

    # ------------------------------------------------------------------ log
    _WHAT = {
        "headers_too_large": "request headers over {max_header_bytes} bytes (431)",
        "header_timeout": "headers not complete within {header_timeout_s:g} s (408/closed)",
        "evicted": "idle connections closed at the cap of {max_connections} connections",
        "refused": "connections refused at the cap of {max_connections} busy connections (503)",
    }

    def note(self, kind: str, loop, client=None) -> None:
        """Count one refusal; log at once if the last line is old, else in the next summary."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.total[kind] = self.total.get(kind, 0) + 1
        now = time.monotonic()
        if now - self._last_log >= self.settings.log_interval_s:
            self.flush(client=client)
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_later(self._last_log + self.settings.log_interval_s - now, self.flush)

    def flush(self, client=None) -> None:
        self._flush_scheduled = False
        if not self.counts:
            return
        parts = [f"{n} {self._WHAT[k].format(**self.settings.__dict__)}" for k, n in sorted(self.counts.items())]
        where = f" (latest from {client[0]}:{client[1]})" if client else ""
        log.warning("emovox: connection limits: %s%s", "; ".join(parts), where)
        self.counts = {}
        self._last_log = time.monotonic()


def _error_response(status: int, code: str, message: str, *, default_headers=(), retry_after_s=None) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}".encode()]
    lines += [name + b": " + value for name, value in default_headers]
    lines += [b"content-type: application/json", b"content-length: " + str(len(body)).encode(), b"connection: close"]
    if retry_after_s is not None:
        lines.append(b"retry-after: " + str(int(retry_after_s)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def guarded_http_protocol(settings: GuardSettings):
    """uvicorn's ``httptools`` HTTP/1.1 protocol class with the limits of ``settings``.

    One class per server: its connections share one :class:`ConnectionGuard`
    (the class attribute ``guard``). Pass it as ``uvicorn.Config(http=...)``.

    Raises
    ------
    ConfigError
        ``httptools`` is not installed (it comes with ``uvicorn[standard]``).
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError("the service needs httptools: pip install 'emovox[service]'") from None

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """``HttpToolsProtocol`` + header budget, header time-out and the connection cap."""

        guard = ConnectionGuard(settings)

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._awaiting_headers = True  # between requests, or inside a request line / headers
            self._header_bytes = 0
            self._header_timer: asyncio.TimerHandle | None = None
            self._lingering = False
            self._linger_bytes = 0

        # -------------------------------------------------------------- connection
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            guard = self.guard
            if len(self.connections) > settings.max_connections and not guard.evict_oldest_idle(self):
                guard.note("refused", self.loop, self.client)
                self._refuse(
                    503,
                    "too_many_connections",
                    f"the server is at its limit of {settings.max_connections} open connections: "
                    f"retry in {settings.retry_after_s} s",
                    retry_after_s=settings.retry_after_s,
                )
                return
            if len(self.connections) > settings.max_connections:
                guard.note("evicted", self.loop, self.client)
            guard.mark_idle(self)
            self._arm_header_timer()

        def connection_lost(self, exc) -> None:
            self.guard.mark_busy(self)
            self._cancel_header_timer()
            super().connection_lost(exc)

        # -------------------------------------------------------------- bytes in
        def data_received(self, data: bytes) -> None:
            if self.transport.get_protocol() is not self:  # upgraded to a WebSocket in this very chunk
                return
            if self._lingering:
                self._linger_bytes += len(data)
                if self._linger_bytes > _LINGER_BYTES:
                    self.transport.abort()
                return
            if not self._awaiting_headers:
                super().data_received(data)
                return
            if self._header_timer is None:  # the first byte of a request on a kept-alive connection
                self._arm_header_timer()
            budget = settings.max_header_bytes - self._header_bytes
            if len(data) <= budget:
                self._header_bytes += len(data)
                super().data_received(data)
                return
            head, rest = data[:budget], data[budget:]
            self._header_bytes += len(head)
            if head:
                super().data_received(head)
            if self.transport.is_closing():
                return
            if self._awaiting_headers:  # the budget is spent and the headers go on
                self.guard.note("headers_too_large", self.loop, self.client)
                self._refuse(
                    431,
                    "headers_too_large",
                    f"the request line and headers are longer than the limit of "
                    f"{settings.max_header_bytes} bytes: send shorter headers (cookies, URLs)",
                )
                return
            super().data_received(rest)

        # -------------------------------------------------------------- parser callbacks
        def on_headers_complete(self) -> None:
            self._awaiting_headers = False
            self._cancel_header_timer()
            self.guard.mark_busy(self)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._awaiting_headers = True  # what comes next is the next request's
            self._header_bytes = 0

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.transport.is_closing():
                return
            if self._awaiting_headers:
                self.guard.mark_idle(self)
            else:  # answered before the body ended (e.g. 413): the rest may come, but not forever
                self._cancel_header_timer()
                self._header_timer = self.loop.call_later(settings.body_after_response_s, self._body_timeout)

        def _body_timeout(self) -> None:
            self._header_timer = None
            if not self._awaiting_headers and not self.transport.is_closing():
                self.transport.close()

        def handle_websocket_upgrade(self) -> None:
            self.guard.mark_busy(self)
            self._cancel_header_timer()
            super().handle_websocket_upgrade()

        # -------------------------------------------------------------- refusals
        def _arm_header_timer(self) -> None:
            self._cancel_header_timer()
            self._header_timer = self.loop.call_later(settings.header_timeout_s, self._header_timeout)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            if not self._awaiting_headers or self.transport.is_closing():
                return
            self.guard.note("header_timeout", self.loop, self.client)
            if self._header_bytes == 0:  # a connection that never sent a byte: nothing to answer
                self.guard.mark_busy(self)
                self.transport.close()
                return
            self._refuse(
                408,
                "request_timeout",
                f"the request headers took longer than {settings.header_timeout_s:g} s to arrive",
            )

        def _refuse(self, status: int, code: str, message: str, *, retry_after_s=None) -> None:
            """Answer one JSON error, close the write side and drop what still comes for a moment."""
            self._cancel_header_timer()
            self._awaiting_headers = False
            self.transport.write(
                _error_response(
                    status,
                    code,
                    message,
                    retry_after_s=retry_after_s,
                    default_headers=self.server_state.default_headers,
                )
            )
            self._lingering = True
            self.guard.mark_idle(self)  # nothing in progress: first to go at the cap
            try:
                if self.transport.can_write_eof():
                    self.transport.write_eof()
            except (OSError, RuntimeError):  # pragma: no cover - the peer is already gone
                pass
            self.loop.call_later(_LINGER_S, self._end_linger)

        def _end_linger(self) -> None:
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedHttpToolsProtocol


_WS_CLASS = None


def frame_limit_websocket_protocol():
    """uvicorn's WebSocket protocol (websockets, Sans-I/O) answering an oversized frame like the app.

    A frame over ``ws_max_size`` gets ``{"type": "error", "error": {"code":
    "frame_too_large", ...}}`` and then close ``1009``, as the stream
    protocol documents; the frame's payload is never read. Pass the class
    as ``uvicorn.Config(ws=...)``.
    """
    global _WS_CLASS
    if _WS_CLASS is not None:
        return _WS_CLASS
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
        from websockets.frames import Frame, Opcode
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError("the service needs websockets: pip install 'emovox[service]'") from None
    from emovox.service.stream_protocol import CLOSE_TOO_BIG, error_message

    class FrameLimitWebSocketProtocol(WebSocketsSansIOProtocol):
        def handle_parser_exception(self) -> None:
            sent = self.conn.close_sent
            exc = self.conn.parser_exc
            if sent is not None and sent.code == CLOSE_TOO_BIG:
                size = getattr(exc, "size", None)
                limit = getattr(exc, "max_size", None) or self.config.ws_max_size
                what = f"a frame of {size} bytes" if size else "a message"
                text = json.dumps(
                    error_message("frame_too_large", f"{what} exceeds the limit of {limit} bytes: send smaller chunks")
                )
                # before the close frame the parser queued (uncompressed: allowed with permessage-deflate)
                self.transport.write(Frame(Opcode.TEXT, text.encode()).serialize(mask=False))
            super().handle_parser_exception()

    _WS_CLASS = FrameLimitWebSocketProtocol
    return _WS_CLASS
