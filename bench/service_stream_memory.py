"""Memory of live streams in ``emovox serve``: RSS before, during and after waves of concurrent streams.

Starts ``emovox serve`` in its own process (extra environment with
``--env NAME=VALUE``, e.g. ``MALLOC_ARENA_MAX=2``), then runs ``--waves``
waves of ``--concurrent`` WebSocket streams at once; each stream sends a
real EMO-DB clip (pcm16, 0.1 s frames, as fast as the server takes them),
then ``{"type": "end"}``, and reads its events to the end. Printed: the
server's RSS idle, at the peak of the first wave, after every
``--report-every`` waves, and ``--idle-s`` seconds after the last stream
closed; streams that did not end with ``end`` and close 1000 are errors.

    OMP_NUM_THREADS=1 .venv/bin/python bench/service_stream_memory.py --concurrent 32 --waves 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--concurrent", type=int, default=32)
    ap.add_argument("--waves", type=int, default=50)
    ap.add_argument("--report-every", type=int, default=10)
    ap.add_argument("--idle-s", type=float, default=10.0)
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args(argv)

    import psutil
    import websockets

    from emovox.audio import load_audio
    from emovox.corpora import default_corpora_root
    from emovox.service.testing import free_port, healthz_latency_s

    files = sorted((default_corpora_root() / "emodb" / "wav").glob("*.flac"))[::40][:8]
    if not files:
        sys.exit("no EMO-DB files under the corpora root: set EMOVOX_CORPORA")
    clips = [(load_audio(p) * 32767).astype("<i2") for p in files]
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", **dict(e.split("=", 1) for e in args.env)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emovox.cli.main",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--max-streams",
            str(args.concurrent),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = psutil.Process(proc.pid)

    def rss() -> float:
        return server.memory_info().rss / 2**20

    url = f"ws://127.0.0.1:{port}/v1/stream"
    errors = 0

    async def one(pcm) -> None:
        nonlocal errors
        got = []
        async with websockets.connect(url, max_size=None) as ws:
            await ws.send(json.dumps({"format": "pcm16", "sample_rate_hz": 16000}))
            await ws.recv()
            for i in range(0, pcm.size, 1600):
                await ws.send(pcm[i : i + 1600].tobytes())
            await ws.send(json.dumps({"type": "end"}))
            async for m in ws:
                got.append(json.loads(m)["type"])
        if not got or got[-1] != "end" or ws.close_code != 1000:
            errors += 1

    async def wave(w: int) -> None:
        await asyncio.gather(*(one(clips[(w + i) % len(clips)]) for i in range(args.concurrent)))

    try:
        deadline = time.monotonic() + 90
        while healthz_latency_s(port, timeout_s=2.0) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("the server did not start")
            time.sleep(0.2)
        asyncio.run(one(clips[0]))  # warm-up: first model calls, one engine
        time.sleep(1.0)
        idle = rss()
        print(
            f"emovox serve pid {proc.pid}, env {args.env or 'default'}; load average "
            f"{os.getloadavg()[0]:.2f}; idle RSS (after one warm-up stream) {idle:.0f} MB"
        )
        peak = [idle]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss())
                stop.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.monotonic()
        for w in range(args.waves):
            asyncio.run(wave(w))
            if w == 0:
                print(f"  wave 1 ({args.concurrent} streams at once): peak {peak[0]:.0f} MB, after {rss():.0f} MB")
            if (w + 1) % args.report_every == 0:
                print(
                    f"  after {(w + 1) * args.concurrent} streams ({time.monotonic() - t0:.0f} s): "
                    f"RSS {rss():.0f} MB, peak so far {peak[0]:.0f} MB"
                )
        stop.set()
        sampler.join()
        time.sleep(args.idle_s)
        print(
            f"{args.waves * args.concurrent} streams, {errors} errors; RSS idle {idle:.0f} MB, peak "
            f"{peak[0]:.0f} MB, {args.idle_s:g} s after the last stream {rss():.0f} MB "
            f"(+{rss() - idle:.0f} MB over idle)"
        )
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
