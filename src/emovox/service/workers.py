"""``emovox serve --workers N``: N server processes on one listening socket, under one supervisor.

The supervisor (the ``emovox serve`` process) binds the port once and starts
``N`` worker processes (``spawn``: each imports and loads the model itself,
nothing is shared but the socket). The kernel hands each new connection to
one of the workers waiting in ``accept``; each worker is a whole server with
its own limits (``--max-concurrent``, ``--max-streams``,
``--max-connections`` apply per worker) and its own ``/metrics``.

Signals go to the supervisor: SIGTERM is passed to every worker, which
drains (see :mod:`emovox.service.server`), and the supervisor exits once all
have; SIGINT (Ctrl-C) stops them at once. A worker that dies is restarted;
one that dies within 5 s of its start three times in a row stops the
whole server (exit 1: something is wrong with the model or the options).
Workers whose supervisor is killed outright (SIGKILL) notice within a
second, drain and exit (``emovox.cli.serve.serve_worker``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import time

__all__ = ["run_workers"]

log = logging.getLogger("emovox.service")

#: A worker that exits this soon after its start counts as failing to start, s.
QUICK_EXIT_S = 5.0
#: Consecutive quick exits that stop the server.
MAX_QUICK_EXITS = 3


def _say(message: str) -> None:
    print(f"emovox: {message}", file=sys.stderr, flush=True)


def run_workers(target, args, sock, *, n: int, drain_s: float) -> int:
    """Run ``target(args, sock)`` in ``n`` worker processes until a signal stops them.

    Parameters
    ----------
    target : callable
        A module-level function (it is pickled by name): one worker's body.
    args
        Picklable options passed to every worker.
    sock : socket.socket
        The listening socket the workers share.
    n : int
        Worker processes.
    drain_s : float
        Each worker's drain time: how long SIGTERM may take before workers are killed
        (plus 15 s for the model-free rest of the shutdown).

    Returns
    -------
    int
        0 after a signal, 1 when workers kept failing to start.
    """
    ctx = multiprocessing.get_context("spawn")
    received: list[int] = []

    def on_signal(sig, frame) -> None:
        received.append(sig)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    started_at: dict[int, float] = {}  # worker index -> when its current process started

    def start(i: int):
        p = ctx.Process(target=target, args=(args, sock), name=f"emovox-worker-{i}", daemon=False)
        p.start()
        started_at[i] = time.monotonic()
        return p

    procs = [start(i) for i in range(n)]
    quick_exits = 0
    status = 0
    try:
        while not received:
            for i, p in enumerate(procs):
                if p.is_alive():
                    continue
                quick = time.monotonic() - started_at[i] < QUICK_EXIT_S
                quick_exits = quick_exits + 1 if quick else 0
                if quick_exits >= MAX_QUICK_EXITS:
                    _say(
                        f"worker {i} exited {MAX_QUICK_EXITS} times right after starting (last exit code "
                        f"{p.exitcode}): stopping; see the messages above"
                    )
                    received.append(signal.SIGTERM)
                    status = 1
                    break
                _say(f"worker {i} (pid {p.pid}) exited with code {p.exitcode}: restarting it")
                procs[i] = start(i)
            time.sleep(0.2)
        sig = received[0]
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, sig)
        deadline = time.monotonic() + (drain_s if sig == signal.SIGTERM else 0) + 15
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in procs:
            if p.is_alive():
                _say(f"worker pid {p.pid} did not stop in time: killing it")
                p.kill()
                p.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _say("server stopped")
    return status
