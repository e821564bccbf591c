"""Throughput of ``emovox serve --ray`` with 1 and 2 Ray Serve replicas, beside ``--workers 1`` and ``2``.

For each setting, starts ``emovox serve`` in its own process (``OMP_NUM_THREADS=1``,
one model thread per replica or worker), waits until ``/readyz`` answers and
warms it up, then ``--clients`` concurrent clients upload 3.0 s clips
(EMO-DB sentences, cut or repeated to 3.0 s, FLAC, multipart
``POST /v1/predict``) until ``--requests`` uploads are answered or
``--max-s`` seconds have passed. Prints uploads/s, p50/p99 latency, errors
(any non-200) and the CPU of the whole server process tree (for Ray: GCS,
raylet, proxy, controller and replicas), then the ratios 2:1 for replicas and
for workers. The clients run on the same machine and share its cores with
the server; the settings run one after the other in the same run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/service_replicas.py --clients 8 --requests 200
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import subprocess
import sys
import time

import numpy as np

#: Clip length of every upload, s.
CLIP_S = 3.0
SR = 16000


def make_clips(n: int) -> list[tuple[str, bytes]]:
    """``n`` EMO-DB sentences as 3.0 s FLAC bytes (shorter ones repeated, longer ones cut)."""
    import soundfile as sf

    from emovox.audio import load_audio
    from emovox.corpora import default_corpora_root

    files = sorted((default_corpora_root() / "emodb" / "wav").glob("*.flac"))[::20][:n]
    if not files:
        sys.exit("no EMO-DB files under the corpora root: set EMOVOX_CORPORA")
    clips = []
    for path in files:
        y = load_audio(path, sample_rate_hz=SR)
        y = np.resize(y, int(CLIP_S * SR))  # repeats a short sentence, cuts a long one
        buf = io.BytesIO()
        sf.write(buf, y, SR, format="FLAC")
        clips.append((path.stem + "_3s.flac", buf.getvalue()))
    return clips


def start_server(kind: str, n: int, port: int) -> subprocess.Popen:
    flag = ["--ray", "--replicas", str(n)] if kind == "ray" else ["--workers", str(n)]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emovox.cli.main",
            "serve",
            "--port",
            str(port),
            *flag,
            "--log-level",
            "warning",
            "--max-concurrent",
            "64",
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_ready(url: str, proc: subprocess.Popen, *, n_ok: int, timeout_s: float = 240.0) -> None:
    import httpx

    ok_in_row, deadline = 0, time.monotonic() + timeout_s
    while ok_in_row < n_ok:
        try:
            ok_in_row = ok_in_row + 1 if httpx.get(url + "/readyz", timeout=5).status_code == 200 else 0
        except httpx.TransportError:
            ok_in_row = 0
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the server did not start (exit code {proc.poll()})")
        time.sleep(0.05)


def stop_server(proc: subprocess.Popen, tree: list) -> None:
    import psutil

    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 30
    for p in tree:  # Ray's processes exit once its driver has shut it down
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except (psutil.TimeoutExpired, psutil.Error):
            pass


def measure(kind: str, n: int, clips, *, clients: int, requests: int, max_s: float) -> float:
    """Uploads/s of one setting (prints its line)."""
    import httpx
    import psutil

    from emovox.service.testing import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    t_start = time.monotonic()
    proc = start_server(kind, n, port)
    tree: list = []
    try:
        wait_ready(url, proc, n_ok=10 * n)
        start_s = time.monotonic() - t_start
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]

        def cpu() -> float:
            total = 0.0
            for p in tree:
                try:
                    total += sum(p.cpu_times()[:2])
                except psutil.Error:
                    pass
            return total

        async def load(n_requests: int, seconds: float) -> tuple[list[float], int]:
            """Upload until ``n_requests`` are answered or ``seconds`` are over: (latencies of the 200s, errors)."""
            latencies: list[float] = []
            errors = 0
            left = n_requests
            stop_at = time.monotonic() + seconds

            async def client() -> None:
                nonlocal errors, left
                async with httpx.AsyncClient(timeout=120) as c:
                    while left > 0 and time.monotonic() < stop_at:
                        left -= 1
                        name, data = clips[left % len(clips)]
                        t = time.perf_counter()
                        try:
                            ok = (await c.post(url + "/v1/predict", files={"file": (name, data)})).status_code == 200
                        except httpx.HTTPError:
                            ok = False
                        if ok:
                            latencies.append(time.perf_counter() - t)
                        errors += not ok

            await asyncio.gather(*(client() for _ in range(clients)))
            return latencies, errors

        asyncio.run(load(4 * clients, 60.0))  # warm-up (model sessions, connections), not counted
        cpu0, t0 = cpu(), time.monotonic()
        latencies, errors = asyncio.run(load(requests, max_s))
        wall, used = time.monotonic() - t0, cpu() - cpu0
        rate = len(latencies) / wall
        what = f"{n} Ray Serve replica(s)" if kind == "ray" else f"{n} worker(s)"
        p50, p99 = (np.percentile(latencies, q) * 1000 for q in (50, 99)) if latencies else (float("nan"),) * 2
        print(
            f"{what}: {rate:.1f} uploads/s ({len(latencies)} in {wall:.1f} s), p50 {p50:.0f} ms, "
            f"p99 {p99:.0f} ms, errors {errors}; server CPU {used / wall:.2f} cores "
            f"({used / max(1, len(latencies)) * 1000:.1f} ms per upload); ready after {start_s:.1f} s; "
            f"load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        return rate
    finally:
        stop_server(proc, tree)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients (default: 8)")
    ap.add_argument("--requests", type=int, default=200, help="uploads per setting (default: 200)")
    ap.add_argument("--max-s", type=float, default=120.0, help="time bound per setting, s (default: 120)")
    ap.add_argument(
        "--settings",
        nargs="+",
        default=["ray:1", "ray:2", "workers:1", "workers:2"],
        help="KIND:N with KIND ray or workers (default: ray:1 ray:2 workers:1 workers:2)",
    )
    args = ap.parse_args(argv)
    clips = make_clips(24)
    print(
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; {args.clients} clients, "
        f"{args.requests} uploads of {len(clips)} {CLIP_S:g} s EMO-DB clips per setting "
        f"(at most {args.max_s:g} s)",
        flush=True,
    )
    rates = {}
    for setting in args.settings:
        kind, _, n = setting.partition(":")
        if kind not in ("ray", "workers") or not n.isdigit():
            sys.exit(f"--settings {setting!r}: write ray:N or workers:N")
        rates[(kind, int(n))] = measure(
            kind, int(n), clips, clients=args.clients, requests=args.requests, max_s=args.max_s
        )
    for kind, name in (("ray", "replicas"), ("workers", "workers")):
        if (kind, 1) in rates and (kind, 2) in rates:
            print(f"throughput ratio 2 {name} / 1: {rates[(kind, 2)] / rates[(kind, 1)]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
