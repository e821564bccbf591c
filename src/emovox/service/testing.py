"""Run a real uvicorn server for an app on 127.0.0.1 (tests, benchmarks).

>>> with serve_in_thread(create_app(model)) as base_url:   # doctest: +SKIP
...     httpx.get(base_url + "/healthz")
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

__all__ = [
    "serve_in_thread",
    "free_port",
    "raw_request",
    "healthz_latency_s",
    "send_huge_header",
    "open_slow_connections",
    "closed_by_server",
]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_in_thread(
    app, *, host: str = "127.0.0.1", ws_max_size: int | None = None, log_level: str = "warning", timeout_s: float = 30.0
) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a background thread; yields ``http://host:port``.

    The server listens on a free port of ``host`` (loopback by default),
    with the settings of ``emovox serve`` (:func:`emovox.service.server.server_config`),
    and is shut down when the block exits.
    """
    from emovox.service.server import EmovoxServer, server_config

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    if ws_max_size is None:
        config = server_config(app, log_level=log_level)
    else:
        config = server_config(app, log_level=log_level, ws_max_size=ws_max_size)
    server = EmovoxServer(config)  # signals: main thread only
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


# ---------------------------------------------------------------------- raw-socket clients
def raw_request(port: int, data: bytes, *, host: str = "127.0.0.1", timeout_s: float = 5.0) -> tuple[int, bytes]:
    """Send ``data`` on a new connection and read the answer until the server closes it.

    Returns ``(status, body)``; status 0 when the server closed without an answer.
    """
    with socket.create_connection((host, port), timeout=timeout_s) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            head, sep, body = b"".join(chunks).partition(b"\r\n\r\n")
            if sep and b"content-length:" in head.lower():
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    break
    answer = b"".join(chunks)
    if not answer.startswith(b"HTTP/1."):
        return 0, answer
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def healthz_latency_s(port: int, *, host: str = "127.0.0.1", timeout_s: float = 5.0) -> float | None:
    """Seconds for ``GET /healthz`` on a new connection to answer 200; None if it failed or timed out."""
    start = time.monotonic()
    try:
        status, _ = raw_request(
            port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", host=host, timeout_s=timeout_s
        )
    except OSError:
        return None
    return time.monotonic() - start if status == 200 else None


def send_huge_header(
    port: int, header_bytes: int, *, host: str = "127.0.0.1", chunk_bytes: int = 1 << 20, timeout_s: float = 60.0
) -> dict:
    """One request whose ``X-Big`` header is ``header_bytes`` long: ``{status, sent, elapsed_s}``.

    ``status`` is the server's answer (0: none, the connection was reset or closed).
    """
    start = time.monotonic()
    sent = 0
    status = 0
    with socket.create_connection((host, port), timeout=timeout_s) as s:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            block = b"a" * chunk_bytes
            while sent < header_bytes:
                n = min(chunk_bytes, header_bytes - sent)
                s.sendall(block[:n])
                sent += n
            s.sendall(b"\r\n\r\n")
        except OSError:
            pass
        try:
            answer = s.recv(4096)
            if answer.startswith(b"HTTP/1."):
                status = int(answer.split(b" ", 2)[1])
        except OSError:
            pass
    return {"status": status, "sent": sent, "elapsed_s": time.monotonic() - start}


def open_slow_connections(
    port: int, n: int, *, host: str = "127.0.0.1", partial: bytes = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
) -> list:
    """``n`` connections that each send ``partial`` (headers never finished) and then nothing."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(5.0)
        try:
            s.connect((host, port))
            s.sendall(partial)
        except OSError:
            s.close()
            continue
        socks.append(s)
    return socks


def closed_by_server(socks: list) -> int:
    """How many of ``socks`` the server has closed (EOF, an answer, or a reset)."""
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(4096) is not None:
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed
