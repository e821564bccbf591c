"""Connection-level limits (issue 19), with raw sockets against real servers.

The two reproductions of the issue run against ``emovox serve`` in its own
process with 1,024 file descriptors: four parallel requests with 100 MiB
headers, and 1,100 connections that never finish their headers. ``/healthz``
must answer within 1 s throughout and the server's RSS stay within 50 MB of
idle. The rest (431 before the API-key check, 408 for slow headers, the
connection cap's eviction and 503, the log line, normal requests unharmed)
runs on in-process servers with small limits.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("fastapi")
psutil = pytest.importorskip("psutil")
websockets = pytest.importorskip("websockets")

from emovox.service.testing import (  # noqa: E402
    closed_by_server,
    free_port,
    healthz_latency_s,
    open_slow_connections,
    raw_request,
    send_huge_header,
)

KEY = "k3y-for-tests-0123456789"
SERVER_FDS = 1024  # the common descriptor limit of the reproduction


@pytest.fixture(scope="module")
def predictor():
    from emovox.inference import load_model

    return load_model(num_threads=1)


def _serve(predictor, api_keys=None, **limits):
    from emovox.service.app import create_app
    from emovox.service.limits import Limits
    from emovox.service.testing import serve_in_thread

    return serve_in_thread(create_app(predictor, limits=Limits(**limits), api_keys=api_keys))


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _own_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"this test opens {needed} sockets; the descriptor limit is {hard} (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _response(sock) -> bytes:
    """One whole response (head and ``Content-Length`` body) read from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


class _Watch:
    """/healthz every 0.2 s on a new connection, and the server's RSS every 0.1 s, until stopped."""

    def __init__(self, port: int, pid: int) -> None:
        self.health: list[float | None] = []
        self.rss: list[float] = []
        self._stop = threading.Event()
        proc = psutil.Process(pid)

        def probe():
            while not self._stop.is_set():
                self.health.append(healthz_latency_s(port, timeout_s=5.0))
                self._stop.wait(0.2)

        def sample():
            while not self._stop.is_set():
                self.rss.append(proc.memory_info().rss / 2**20)
                self._stop.wait(0.1)

        self._threads = [threading.Thread(target=probe), threading.Thread(target=sample)]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)


@pytest.fixture(scope="module")
def serve_process():
    """``emovox serve`` with 1,024 descriptors; yields ``(port, pid, idle RSS MB)``."""

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (SERVER_FDS, SERVER_FDS))

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emovox.cli.main", "serve", "--port", str(port), "--log-level", "warning"],
        preexec_fn=limit,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.monotonic() + 90
        while healthz_latency_s(port, timeout_s=2.0) is None:
            assert proc.poll() is None and time.monotonic() < deadline, "emovox serve did not start"
            time.sleep(0.2)
        for _ in range(20):
            healthz_latency_s(port)
        time.sleep(0.5)
        yield port, proc.pid, psutil.Process(proc.pid).memory_info().rss / 2**20
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


# ---------------------------------------------------------------------- the reproductions
def test_four_parallel_100_mib_headers_are_refused_at_once(serve_process):
    port, pid, idle_mb = serve_process
    watch = _Watch(port, pid)
    results = []
    senders = [threading.Thread(target=lambda: results.append(send_huge_header(port, 100 * 2**20))) for _ in range(4)]
    for t in senders:
        t.start()
    for t in senders:
        t.join(60)
    time.sleep(1.0)
    watch.stop()
    # 431, or a reset if the refusal overtook the client's writes: never 200, never read whole
    assert all(r["status"] in (431, 0) for r in results), results
    assert any(r["status"] == 431 for r in results), results
    assert all(r["elapsed_s"] < 10 for r in results), results
    assert watch.health and all(h is not None and h < 1.0 for h in watch.health), watch.health
    assert max(watch.rss) < idle_mb + 50, (idle_mb, max(watch.rss))


def test_1100_connections_that_never_finish_their_headers(serve_process):
    port, pid, idle_mb = serve_process
    _own_fd_limit(1100 + 300)
    watch = _Watch(port, pid)
    socks = open_slow_connections(port, 1100)
    try:
        assert len(socks) == 1100
        time.sleep(4.0)  # under the 10 s header time-out: the cap (960 here) sheds the oldest
        watch.stop()
        assert len(watch.health) >= 10
        assert all(h is not None and h < 1.0 for h in watch.health), watch.health
        assert max(watch.rss) < idle_mb + 50, (idle_mb, max(watch.rss))
        assert closed_by_server(socks) >= 1100 - 960  # shed to stay under the cap
    finally:
        for s in socks:
            s.close()
    assert healthz_latency_s(port) is not None


# ---------------------------------------------------------------------- the limits one by one
def test_headers_over_the_limit_get_431_json_before_the_api_key_check(predictor):
    from emovox.service.auth import ApiKeys

    with _serve(predictor, api_keys=ApiKeys([KEY]), max_header_kb=4) as url:
        port = _port(url)
        big = b"GET /v1/model HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * 5000 + b"\r\n\r\n"
        status, body = raw_request(port, big)
        assert status == 431 and json.loads(body)["error"]["code"] == "headers_too_large"
        assert "4096 bytes" in json.loads(body)["error"]["message"]
        # just under the limit: an ordinary request (401 without a key, 200 with one)
        fits = b"GET /v1/model HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: " + b"c" * 3900 + b"\r\n"
        assert raw_request(port, fits + b"\r\n")[0] == 401
        assert raw_request(port, fits + b"X-API-Key: " + KEY.encode() + b"\r\n\r\n")[0] == 200


def test_slow_headers_get_408_and_silent_connections_are_closed(predictor, caplog):
    caplog.set_level(logging.WARNING, logger="emovox.service")
    with _serve(predictor, header_timeout_s=0.5) as url:
        port = _port(url)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as slow,
            socket.create_connection(("127.0.0.1", port), timeout=5) as silent,
        ):
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            t0 = time.monotonic()
            answer = _response(slow)
            assert answer.startswith(b"HTTP/1.1 408 ") and b'"request_timeout"' in answer
            assert 0.4 < time.monotonic() - t0 < 3.0
            assert silent.recv(4096) == b""  # closed, nothing to answer
        # a client sending its headers byte by byte within the time-out is served
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n":
                s.sendall(bytes([byte]))
            assert s.recv(4096).startswith(b"HTTP/1.1 200 ")
        # kept alive between requests: the time-out starts with the next request's first byte
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _response(s).startswith(b"HTTP/1.1 200 ")
            time.sleep(0.8)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _response(s).startswith(b"HTTP/1.1 200 ")
    assert any("connection limits" in r.getMessage() and "0.5 s" in r.getMessage() for r in caplog.records)


def test_the_connection_cap_sheds_idle_connections_then_refuses_with_503(predictor, caplog):
    import asyncio

    caplog.set_level(logging.WARNING, logger="emovox.service")
    with _serve(predictor, max_connections=2) as url:
        port = _port(url)
        ws_url = url.replace("http://", "ws://") + "/v1/stream"

        async def scenario():
            idle = socket.create_connection(("127.0.0.1", port), timeout=5)
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _response(idle).startswith(b"HTTP/1.1 200 ")  # kept alive: idle
            async with websockets.connect(ws_url) as busy:  # a stream in progress: busy
                await busy.send(json.dumps({"format": "pcm16", "sample_rate_hz": 16000}))
                assert json.loads(await busy.recv())["type"] == "ready"
                # a third connection closes the idle one and is served
                status, _ = await asyncio.to_thread(
                    raw_request, port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                assert status == 200
                assert closed_by_server([idle]) == 1
                async with websockets.connect(ws_url) as busy2:
                    await busy2.send(json.dumps({"format": "pcm16", "sample_rate_hz": 16000}))
                    assert json.loads(await busy2.recv())["type"] == "ready"
                    # both connections busy: the next one is refused with 503 + Retry-After
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                        answer = _response(s)
                    assert answer.startswith(b"HTTP/1.1 503 ") and b"retry-after: 1" in answer.lower()
                    assert b'"too_many_connections"' in answer
                # the streams still work
                await busy.send(json.dumps({"type": "end"}))
                assert [json.loads(m)["type"] async for m in busy][-1] == "end"
            idle.close()

        asyncio.run(scenario())
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "idle connections closed at the cap of 2" in text and "refused at the cap of 2" in text


def test_ordinary_traffic_passes_the_guard(predictor):
    with _serve(predictor) as url:
        port = _port(url)
        # pipelined requests on one connection, in one write
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
            got = b""
            while got.count(b"HTTP/1.1 200 ") < 3:
                chunk = s.recv(65536)
                assert chunk
                got += chunk
        # a body larger than the header budget after headers in the same write
        body = b"x" * 100_000
        request = (
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: audio/wav\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        status, answer = raw_request(port, request)
        assert status == 422 and json.loads(answer)["error"]["code"] == "invalid_audio"
