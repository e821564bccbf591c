"""Run a real uvicorn server for an app on 127.0.0.1 (tests, benchmarks).

>>> with serve_in_thread(create_app(model)) as base_url:   # doctest: +SKIP
...     httpx.get(base_url + "/healthz")
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Iterator

__all__ = ["serve_in_thread", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_in_thread(app, *, host: str = "127.0.0.1", ws_max_size: int | None = None,
                    log_level: str = "warning", timeout_s: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a background thread; yields ``http://host:port``.

    The server listens on a free port of ``host`` (loopback by default) and
    is shut down when the block exits.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    limits = getattr(getattr(app.state, "emovox", None), "limits", None)
    if ws_max_size is None:
        ws_max_size = (limits.max_frame_bytes if limits else 1 << 20) + 4096
    config = uvicorn.Config(app, log_level=log_level, ws_max_size=ws_max_size, timeout_keep_alive=20)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # not the main thread
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()
