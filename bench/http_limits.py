"""The two connection-level attacks of issue 19, against a real server process, with raw sockets.

1. **huge headers**: ``--parallel`` connections each send one request whose
   ``X-Big`` header is ``--header-mib`` MiB long;
2. **slow headers**: ``--slow`` connections each send
   ``GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nX-Slow: `` and then nothing, held
   for ``--hold-s`` seconds.

During each, ``/healthz`` is requested on a new connection every 0.25 s
(5 s time-out) and the server's RSS is sampled every 0.1 s. Printed: the
answers the attackers got, ``/healthz`` answered / asked and its latency
(p50, max), RSS idle / peak / after, and for the slow connections how many
the server had closed by the end of the hold.

The server runs with ``--nofile`` file descriptors (soft and hard limit;
default 1,024, the common limit of the issue's reproduction) and is one of:

- ``emovox``: ``emovox serve`` (the protocol of ``emovox.service.http_guard``);
- ``stock``: the server as it was before (uvicorn's ``httptools`` protocol,
  keep-alive 20 s), the same app and model;
- ``h11``: uvicorn's ``h11`` protocol with ``h11_max_incomplete_event_size=32768``;
- ``limit-concurrency``: ``stock`` with uvicorn's ``limit_concurrency=900``.

    OMP_NUM_THREADS=1 .venv/bin/python bench/http_limits.py --server emovox
    OMP_NUM_THREADS=1 .venv/bin/python bench/http_limits.py --server stock --header-mib 25 --parallel 1
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time

import numpy as np

SERVERS = ("emovox", "stock", "h11", "limit-concurrency")


def run_inline_server(kind: str, port: int) -> None:
    """Serve the app with one of the reference uvicorn settings (a child process of the bench)."""
    import uvicorn

    from emovox.inference import load_model
    from emovox.service.app import create_app

    app = create_app(load_model(num_threads=1))
    options = {"log_level": "warning", "timeout_keep_alive": 20, "server_header": False, "ws_max_size": 1 << 20}
    if kind == "h11":
        options.update(http="h11", h11_max_incomplete_event_size=32768)
    elif kind == "limit-concurrency":
        options.update(limit_concurrency=900)
    uvicorn.run(app, host="127.0.0.1", port=port, **options)


def start(kind: str, port: int, nofile: int) -> subprocess.Popen:
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if kind == "emovox":
        cmd = [sys.executable, "-m", "emovox.cli.main", "serve", "--port", str(port), "--log-level", "warning"]
    else:
        cmd = [sys.executable, __file__, "--inline", kind, "--port", str(port)]
    return subprocess.Popen(cmd, env=env, preexec_fn=limit, stderr=subprocess.PIPE, text=True)


class Watch:
    """Polls /healthz (new connection each time) and samples the server's RSS until stopped."""

    def __init__(self, port: int, pid: int) -> None:
        import psutil

        from emovox.service.testing import healthz_latency_s

        self.proc = psutil.Process(pid)
        self.port = port
        self.health: list[float | None] = []
        self.rss: list[float] = []
        self._stop = threading.Event()
        self._probe = healthz_latency_s

        def probe():
            while not self._stop.is_set():
                self.health.append(self._probe(port, timeout_s=5.0))
                self._stop.wait(0.25)

        def sample():
            while not self._stop.is_set():
                self.rss.append(self.proc.memory_info().rss / 2**20)
                self._stop.wait(0.1)

        self.threads = [threading.Thread(target=probe, daemon=True), threading.Thread(target=sample, daemon=True)]
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self.threads:
            t.join(10)

    def summary(self) -> str:
        ok = [h for h in self.health if h is not None]
        lat = f"p50 {np.median(ok) * 1000:.0f} ms, max {max(ok) * 1000:.0f} ms" if ok else "never answered"
        return f"/healthz answered {len(ok)}/{len(self.health)} ({lat}); RSS peak {max(self.rss):.0f} MB"


def rate(port: int, pid: int, n: int) -> str:
    """Sequential keep-alive requests on one connection: wall and server CPU per request."""
    import io
    import socket

    import psutil
    import soundfile as sf

    proc = psutil.Process(pid)
    buf = io.BytesIO()
    t = np.arange(32000) / 16000
    sf.write(buf, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000, format="WAV", subtype="PCM_16")
    wav = buf.getvalue()
    out = []
    for what, request, count in [
        ("GET /healthz", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", n),
        (
            "POST /v1/predict (2 s WAV)",
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
            b"Content-Length: " + str(len(wav)).encode() + b"\r\n\r\n" + wav,
            max(1, n // 10),
        ),
    ]:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            f = s.makefile("rb")
            cpu0 = sum(proc.cpu_times()[:2])
            t0 = time.perf_counter()
            for _ in range(count):
                s.sendall(request)
                length = 0
                status = f.readline()
                while True:
                    line = f.readline()
                    if line in (b"\r\n", b""):
                        break
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                f.read(length)
                assert status.split()[1] == b"200", status
            wall = time.perf_counter() - t0
            cpu = sum(proc.cpu_times()[:2]) - cpu0
        out.append(f"{what}: {count / wall:.0f}/s, server CPU {cpu / count * 1000:.2f} ms per request")
    return "rate (one keep-alive connection, sequential): " + "; ".join(out)


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", choices=SERVERS, default="emovox")
    ap.add_argument("--attack", choices=("headers", "slow", "both", "none"), default="both")
    ap.add_argument(
        "--rate-requests",
        type=int,
        default=0,
        help="also time this many keep-alive GET /healthz and a tenth as many 2 s uploads",
    )
    ap.add_argument("--header-mib", type=float, default=100.0)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--slow", type=int, default=1100)
    ap.add_argument("--hold-s", type=float, default=15.0)
    ap.add_argument("--nofile", type=int, default=1024)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--inline", choices=SERVERS[1:], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.inline:
        run_inline_server(args.inline, args.port)
        return 0

    import resource

    from emovox.service.testing import (
        closed_by_server,
        free_port,
        healthz_latency_s,
        open_slow_connections,
        send_huge_header,
    )

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.slow + 200:  # the bench itself holds the slow connections
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.slow + 1000), hard))
    port = args.port or free_port()
    proc = start(args.server, port, args.nofile)
    try:
        deadline = time.monotonic() + 90
        while healthz_latency_s(port, timeout_s=2.0) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                print(proc.stderr.read() if proc.poll() is not None else "", file=sys.stderr)
                sys.exit("the server did not start")
            time.sleep(0.2)
        for _ in range(20):
            healthz_latency_s(port)
        time.sleep(1.0)
        idle = rss_mb(proc.pid)
        print(
            f"server {args.server!r} pid {proc.pid} on 127.0.0.1:{port}, {args.nofile} descriptors; "
            f"load average {os.getloadavg()[0]:.2f}; idle RSS {idle:.0f} MB"
        )

        if args.rate_requests:
            print(rate(port, proc.pid, args.rate_requests))

        if args.attack in ("headers", "both"):
            watch = Watch(port, proc.pid)
            results: list[dict] = []
            t0 = time.monotonic()
            senders = [
                threading.Thread(
                    target=lambda: results.append(send_huge_header(port, int(args.header_mib * 2**20), timeout_s=120.0))
                )
                for _ in range(args.parallel)
            ]
            for t in senders:
                t.start()
            for t in senders:
                t.join()
            took = time.monotonic() - t0
            time.sleep(2.0)
            watch.stop()
            statuses = sorted(r["status"] for r in results)
            sent = [r["sent"] / 2**20 for r in results]
            print(
                f"huge headers: {args.parallel} x {args.header_mib:g} MiB in {took:.1f} s: answers {statuses} "
                f"(0 = none), MiB the server let in before closing {[round(s, 1) for s in sent]}; "
                f"{watch.summary()}, after {rss_mb(proc.pid):.0f} MB (idle {idle:.0f} MB)"
            )

        if args.attack in ("slow", "both"):
            watch = Watch(port, proc.pid)
            t0 = time.monotonic()
            socks = open_slow_connections(port, args.slow)
            opened = time.monotonic() - t0
            time.sleep(max(0.0, args.hold_s - opened))
            closed = closed_by_server(socks)
            watch.stop()
            for s in socks:
                s.close()
            time.sleep(1.0)
            after = healthz_latency_s(port)
            print(
                f"slow headers: {len(socks)}/{args.slow} connections opened in {opened:.1f} s, held "
                f"{args.hold_s:g} s, {closed} closed by the server by then; {watch.summary()}, after "
                f"{rss_mb(proc.pid):.0f} MB; /healthz after release "
                f"{'%.0f ms' % (after * 1000) if after is not None else 'failed'}"
            )
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    lines = [line for line in err.splitlines() if "connection limits" in line]
    print(f"server log lines about connection limits: {len(lines)}")
    for line in lines[:4]:
        print("  " + line[:300])
    return 0


if __name__ == "__main__":
    sys.exit(main())
