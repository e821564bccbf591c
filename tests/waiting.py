"""Waiting on events in tests: a condition polled until it holds, with a bounded timeout.

Tests never sleep a fixed time and hope the other side got there: they wait for
what they need to see (a file appearing, a counter moving, a process state, a
socket accepting) and fail with a clear message when it does not happen within
a generous bound, so a loaded machine makes a test slower, never wrong.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Long enough for a model load or a Ray start-up on a loaded two-core machine.
DEFAULT_TIMEOUT_S = 120.0


def wait_until(condition: Callable[[], T], what: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> T:
    """Call ``condition`` until it returns something truthy; return that value.

    Raises ``AssertionError("timed out after ... waiting for <what>")`` when
    ``timeout_s`` passes first.
    """
    deadline = time.monotonic() + timeout_s
    tick = threading.Event()  # never set: a bounded pause between polls
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        tick.wait(0.005)
