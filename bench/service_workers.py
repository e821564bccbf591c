"""Throughput of ``emovox serve --workers N`` on this machine: uploads/s with 1 and with N workers.

For each worker count, starts ``emovox serve --workers N`` in its own
process, waits until it answers, then runs ``--clients`` concurrent clients
uploading real EMO-DB clips (multipart, ``POST /v1/predict``) for
``--duration-s`` seconds. Prints uploads/s, p50/p99 latency, errors (any
non-200) and the server's CPU (supervisor and workers), and the ratio of the
throughput with the most workers to that with one. The clients run on the
same machine and share its cores with the server.

    OMP_NUM_THREADS=1 .venv/bin/python bench/service_workers.py --workers 1 2 --clients 16 --duration-s 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import numpy as np


def run(n_workers: int, clips: list[tuple[str, bytes]], *, clients: int, duration_s: float) -> float:
    import httpx
    import psutil

    from emovox.service.testing import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emovox.cli.main",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(n_workers),
            "--log-level",
            "warning",
            "--max-concurrent",
            "64",
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stderr=subprocess.DEVNULL,
    )
    try:
        ok_in_row, deadline = 0, time.monotonic() + 180
        while ok_in_row < 10 * n_workers:
            try:
                ok_in_row = ok_in_row + 1 if httpx.get(url + "/readyz", timeout=5).status_code == 200 else 0
            except httpx.TransportError:
                ok_in_row = 0
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("the server did not start")
            time.sleep(0.05)
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]

        def cpu() -> float:
            return sum(sum(p.cpu_times()[:2]) for p in tree if p.is_running())

        latencies: list[float] = []
        errors = 0

        async def client(i: int, stop_at: float) -> None:
            nonlocal errors
            async with httpx.AsyncClient(timeout=120) as c:
                k = i
                while time.monotonic() < stop_at:
                    name, data = clips[k % len(clips)]
                    k += 1
                    t = time.perf_counter()
                    r = await c.post(url + "/v1/predict", files={"file": (name, data)})
                    latencies.append(time.perf_counter() - t)
                    errors += r.status_code != 200

        async def load() -> None:
            stop_at = time.monotonic() + duration_s
            await asyncio.gather(*(client(i, stop_at) for i in range(clients)))

        cpu0, t0 = cpu(), time.monotonic()
        asyncio.run(load())
        wall, used = time.monotonic() - t0, cpu() - cpu0
        rate = len(latencies) / wall
        print(
            f"{n_workers} worker(s): {rate:.1f} uploads/s ({len(latencies)} in {wall:.1f} s), p50 "
            f"{np.median(latencies) * 1000:.0f} ms, p99 {np.percentile(latencies, 99) * 1000:.0f} ms, errors "
            f"{errors}; server CPU {used / wall:.2f} cores ({used / max(1, len(latencies)) * 1000:.1f} ms per "
            f"upload); load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        return rate
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration-s", type=float, default=20.0)
    args = ap.parse_args(argv)
    from emovox.corpora import default_corpora_root

    files = sorted((default_corpora_root() / "emodb" / "wav").glob("*.flac"))[::20][:24]
    if not files:
        sys.exit("no EMO-DB files under the corpora root: set EMOVOX_CORPORA")
    clips = [(p.name, p.read_bytes()) for p in files]
    print(
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; {args.clients} clients uploading "
        f"{len(clips)} EMO-DB clips for {args.duration_s:g} s per setting"
    )
    rates = {n: run(n, clips, clients=args.clients, duration_s=args.duration_s) for n in args.workers}
    most = max(args.workers)
    if 1 in rates and most != 1:
        print(f"throughput ratio {most} workers / 1 worker: {rates[most] / rates[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
