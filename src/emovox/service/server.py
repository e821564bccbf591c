"""The uvicorn server of ``emovox serve``: connection limits and a graceful drain on SIGTERM.

:func:`server_config` is the one place the service's uvicorn settings are
made (``emovox serve``, :func:`emovox.service.testing.serve_in_thread` and
the benchmarks use it): the HTTP protocol with header and connection limits
(:mod:`emovox.service.http_guard`), the WebSocket protocol that answers an
oversized frame with the stream's error frame, and the keep-alive.

:class:`EmovoxServer` is a ``uvicorn.Server`` that drains on SIGTERM
instead of stopping at once:

1. ``/readyz`` answers 503 ``draining`` (a load balancer stops sending), new
   predictions get 503 ``draining`` with ``Retry-After`` and
   ``Connection: close``, new streams an error frame and close 1013;
   ``/healthz`` still answers and the port stays open;
2. streams in progress are ended by the server: the audio received so far is
   analysed to its end, the last events are sent, then
   ``{"type": "end", ..., "reason": "server_shutdown"}`` and close 1001;
3. the process exits as soon as no prediction request or stream is left, or
   after ``Limits.drain_s`` at most (what is still running then is cut).

A second SIGTERM, or SIGINT (Ctrl-C), stops at once as uvicorn does.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import TYPE_CHECKING

from emovox.service.http_guard import GuardSettings, frame_limit_websocket_protocol, guarded_http_protocol
from emovox.service.limits import Limits

if TYPE_CHECKING:
    import uvicorn

    from emovox.service.app import ServiceState

__all__ = ["server_config", "EmovoxServer", "connection_cap", "raise_fd_limit"]

log = logging.getLogger("emovox.service")

#: Descriptors kept free for everything but client connections (model files, pipes, logs, the listener).
FD_RESERVE = 64
#: Keep-alive of idle connections, s: beyond common client pool expiries (httpx: 5 s), so a client
#: never reuses a connection at the moment the server closes it.
KEEP_ALIVE_S = 20


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft descriptor limit towards ``wanted`` (never above the hard limit).

    Returns the soft limit in force afterwards (a large number where the
    platform has no such limit).
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 1 << 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # pragma: no cover - not allowed here
            pass
    return 1 << 20 if soft == resource.RLIM_INFINITY else int(soft)


def connection_cap(limits: Limits) -> int:
    """The connection cap in force: ``limits.max_connections``, lowered to what the descriptors allow.

    Raises the soft descriptor limit first if the hard limit allows, so the
    common soft limit of 1,024 does not lower the cap where it need not.
    """
    soft = raise_fd_limit(limits.max_connections + FD_RESERVE)
    cap = max(1, min(limits.max_connections, soft - FD_RESERVE))
    if cap < limits.max_connections:
        log.warning(
            "emovox: at most %d connections (the process may open %d files; %d are kept for the "
            "server itself): raise the limit (ulimit -n) to allow %d",
            cap,
            soft,
            FD_RESERVE,
            limits.max_connections,
        )
    return cap


def server_config(app, *, limits: Limits | None = None, log_level: str = "info", **kwargs):
    """A ``uvicorn.Config`` for ``app`` with the service's protocols and limits.

    Parameters
    ----------
    app
        The ASGI app (:func:`emovox.service.create_app`); its limits are used
        when ``limits`` is ``None``.
    limits : Limits or None
        Header size and time-out, connection cap, WebSocket frame size.
    log_level : str
        uvicorn's log level.
    **kwargs
        Further ``uvicorn.Config`` arguments (they win over these settings).
    """
    import uvicorn

    if limits is None:
        state = getattr(getattr(app, "state", None), "emovox", None)
        limits = state.limits if state is not None else Limits()
    guard = GuardSettings(
        max_header_bytes=limits.max_header_bytes,
        header_timeout_s=limits.header_timeout_s,
        max_connections=connection_cap(limits),
        retry_after_s=limits.retry_after_s,
    )
    options = {
        "http": guarded_http_protocol(guard),
        "ws": frame_limit_websocket_protocol(),
        "ws_max_size": limits.max_frame_bytes,
        "log_level": log_level,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "timeout_graceful_shutdown": 5,
        "server_header": False,
    }
    options.update(kwargs)
    return uvicorn.Config(app, **options)


def _server_base():
    import uvicorn

    return uvicorn.Server


if TYPE_CHECKING:
    from uvicorn import Server as _ServerBase
else:
    _ServerBase = _server_base()


class EmovoxServer(_ServerBase):
    """``uvicorn.Server`` that drains on SIGTERM (see the module docstring).

    Parameters
    ----------
    config : uvicorn.Config
        From :func:`server_config`.
    state : ServiceState or None
        The app's state (``app.state.emovox``); ``None`` takes it from the config's app.
    """

    def __init__(self, config: uvicorn.Config, state: ServiceState | None = None) -> None:
        super().__init__(config)
        self.state: ServiceState | None = (
            state if state is not None else getattr(getattr(config.app, "state", None), "emovox", None)
        )
        self._drain_requested = False
        self._drain_deadline: float | None = None

    def handle_exit(self, sig, frame) -> None:
        if sig == signal.SIGTERM and self.state is not None and not self._drain_requested and not self.should_exit:
            self._drain_requested = True  # acted on by the next tick (a signal handler only sets flags)
            return
        super().handle_exit(sig, frame)

    def begin_drain(self) -> None:
        """Start draining now (what SIGTERM does); the server exits when drained."""
        self._drain_requested = True

    async def on_tick(self, counter: int) -> bool:
        if self._drain_requested and not self.should_exit:
            if self._drain_deadline is None:
                self._drain_deadline = self._start_drain()
            if self._drained():
                log.warning("emovox: drained; shutting down")
                self.config.timeout_graceful_shutdown = 1  # only idle connections are left
                return True
            if time.monotonic() >= self._drain_deadline:
                state = self._draining_state()
                log.warning(
                    "emovox: drain time of %g s is over: cutting %d request(s) and %d stream(s)",
                    state.limits.drain_s,
                    state.requests_gate.active,
                    state.streams_gate.active,
                )
                self.config.timeout_graceful_shutdown = 1  # the drain time was the grace
                return True
        return await super().on_tick(counter)

    def _draining_state(self) -> ServiceState:
        assert self.state is not None  # a drain needs the app's state (handle_exit() checks it)
        return self.state

    def _start_drain(self) -> float:
        """Begin the drain; returns its deadline."""
        state = self._draining_state()
        deadline = time.monotonic() + state.limits.drain_s
        state.begin_drain()
        log.warning(
            "emovox: SIGTERM: draining (not ready, new work refused); waiting up to %g s for %d "
            "request(s) and %d stream(s)",
            state.limits.drain_s,
            state.requests_gate.active,
            state.streams_gate.active,
        )
        return deadline

    def _drained(self) -> bool:
        state = self._draining_state()
        return state.requests_gate.active == 0 and state.streams_gate.active == 0

    async def shutdown(self, sockets=None) -> None:
        await super().shutdown(sockets=sockets)
        guard = getattr(self.config.http_protocol_class, "guard", None)
        if guard is not None:
            guard.flush()  # refusals counted since the last log line
        if self._drain_requested:  # a drained SIGTERM is a clean stop: do not die of it afterwards
            self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]
