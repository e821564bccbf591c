"""Give freed memory back to the system after streams and uploads end.

A stream holds a few MB while it runs (its voice-activity detector's ONNX
session, ring buffer, decoder) and an upload its decoded audio; they are
freed when they end, but glibc's allocator keeps freed pages in each worker
thread's arena, so the process's RSS stayed at its peak (``docs/service.md``,
*Memory*, has the measurements). :class:`MemoryReturner` calls glibc's
``malloc_trim(0)`` on a worker thread once activity pauses: at most
``delay_s`` after the last stream or request ended, and at least every
``max_delay_s`` under steady traffic. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

__all__ = ["malloc_trim", "MemoryReturner"]

log = logging.getLogger("emovox.service")

_LIBC = None
_LOADED = False


def _libc():
    global _LIBC, _LOADED
    if not _LOADED:
        _LOADED = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.malloc_trim.argtypes = [ctypes.c_size_t]
            libc.malloc_trim.restype = ctypes.c_int
            _LIBC = libc
        except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
            _LIBC = None
    return _LIBC


def malloc_trim() -> bool:
    """Return free heap memory of every arena to the system; False where glibc is absent."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)  # ctypes releases the GIL for the call
    return True


class MemoryReturner:
    """Debounced ``malloc_trim``: call :meth:`activity_ended` from the event loop when work ends.

    Parameters
    ----------
    delay_s : float
        Quiet time after the last ended activity before trimming.
    max_delay_s : float
        Longest time between an ended activity and a trim under steady traffic.
    """

    def __init__(self, *, delay_s: float = 1.0, max_delay_s: float = 10.0) -> None:
        self.delay_s = float(delay_s)
        self.max_delay_s = float(max_delay_s)
        self.trims = 0
        self._first_pending: float | None = None
        self._last_ended = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False

    def activity_ended(self) -> None:
        import asyncio

        if _libc() is None:
            return
        now = time.monotonic()
        self._last_ended = now
        if self._first_pending is None:
            self._first_pending = now
        loop = asyncio.get_running_loop()
        if self._handle is not None and self._loop is not loop:  # a new server for the same app
            self._handle = None
        if self._handle is None:
            self._loop = loop
            self._handle = loop.call_later(self.delay_s, self._check)

    def _check(self) -> None:
        import asyncio

        self._handle = None
        now = time.monotonic()
        assert self._first_pending is not None  # set by activity_ended() before it scheduled this check
        due = min(self._last_ended + self.delay_s, self._first_pending + self.max_delay_s)
        if now < due - 1e-3 or self._running:
            self._handle = asyncio.get_running_loop().call_later(max(due - now, self.delay_s / 2), self._check)
            return
        self._first_pending = None
        self._running = True
        threading.Thread(target=self._trim, name="emovox-malloc-trim", daemon=True).start()

    def _trim(self) -> None:
        try:
            malloc_trim()
            self.trims += 1
        finally:
            self._running = False
