"""Service load on loopback: concurrent clients mixing uploads and WebSocket streams, bounded in time.

Starts ``emovox serve`` in its own process on 127.0.0.1 (so its RSS is the
server's alone), waits for ``/readyz``, then:

1. **reference** (same run): one client, sequential uploads for
   ``--ref-s`` seconds -> latency of an upload on an idle server;
2. **load**: ``--clients`` concurrent clients (plus one streaming speech at
   its real pace, whose event latency is measured, as it is alone before) for ``--duration-s`` seconds;
   each repeatedly either uploads a real corpus clip (``POST /v1/predict``,
   multipart) or streams one over ``/v1/stream`` (16-bit PCM in 0.1 s
   frames, sent as fast as the server takes them, then ``{"type": "end"}``),
   a stream with probability ``--stream-fraction``.

Prints requests/s, p50/p99 latency of uploads and of whole streams, stream
audio seconds analysed per wall second, errors (any non-200 upload or a
stream not ending with its ``end`` message and close 1000; must be 0), the
upload p50 under load as a ratio of the idle reference, and the server's RSS
before, at peak and after. Everything runs on this machine: the clients
share its cores with the server.

    OMP_NUM_THREADS=1 .venv/bin/python bench/service_load.py [--clients 32] [--duration-s 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

import numpy as np


def corpus_clips(n: int) -> list[tuple[str, bytes, np.ndarray]]:
    """``(name, FLAC bytes, int16 samples at 16 kHz)`` of ``n`` EMO-DB clips (spread over speakers)."""
    from emovox.audio import load_audio
    from emovox.corpora import default_corpora_root

    files = sorted((default_corpora_root() / "emodb" / "wav").glob("*.flac"))
    if not files:
        sys.exit("no EMO-DB files under the corpora root: set EMOVOX_CORPORA")
    files = files[:: max(1, len(files) // n)][:n]
    return [(p.name, p.read_bytes(), (load_audio(p) * 32767).astype("<i2")) for p in files]


def start_server(port: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "emovox.cli.main",
        "serve",
        "--port",
        str(port),
        "--threads",
        str(threads),
        "--log-level",
        "warning",
    ]  # default limits: 32 concurrent requests, 32 streams
    return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited: {proc.stderr.read()}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit("the server did not become ready")


async def upload(client, url, clip) -> float:
    name, data, _ = clip
    t = time.perf_counter()
    r = await client.post(url + "/v1/predict", files={"file": (name, data, "audio/flac")})
    if r.status_code != 200:
        raise RuntimeError(f"upload {name}: HTTP {r.status_code} {r.text[:200]}")
    return time.perf_counter() - t


async def stream(ws_url, clip, frame_samples: int = 1600) -> tuple[float, float, int]:
    """One whole stream; returns (seconds, audio seconds, events)."""
    import websockets

    _, _, pcm = clip
    t = time.perf_counter()
    async with websockets.connect(ws_url, max_size=None) as ws:
        await ws.send(json.dumps({"format": "pcm16", "sample_rate_hz": 16000}))
        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            raise RuntimeError(f"stream refused: {ready}")
        events = 0
        end = None

        async def reader():
            nonlocal events, end
            async for m in ws:
                msg = json.loads(m)
                if msg["type"] == "event":
                    events += 1
                elif msg["type"] == "end":
                    end = msg
                else:
                    raise RuntimeError(f"stream error: {msg}")

        task = asyncio.create_task(reader())
        for i in range(0, pcm.size, frame_samples):
            await ws.send(pcm[i : i + frame_samples].tobytes())
        await ws.send(json.dumps({"type": "end"}))
        await task
        if end is None or ws.close_code != 1000:
            raise RuntimeError(f"stream ended badly (close {ws.close_code})")
    return time.perf_counter() - t, end["audio_s"], events


async def paced_stream(ws_url, clips, duration_s: float, frame_s: float = 0.1) -> list[float]:
    """Stream speech at its real pace; per event, seconds from sending the frame that completed
    its window (the audio up to ``t``) to receiving the event."""
    import websockets

    pcm = np.concatenate([c[2] for c in clips])
    frame = int(frame_s * 16000)
    n_frames = int(duration_s / frame_s)
    sent_at: list[tuple[int, float]] = []  # (end sample, send time)
    latencies: list[float] = []
    async with websockets.connect(ws_url, max_size=None) as ws:
        await ws.send(json.dumps({"format": "pcm16", "sample_rate_hz": 16000}))
        await ws.recv()

        async def reader():
            async for m in ws:
                msg = json.loads(m)
                if msg["type"] == "event":
                    now = time.perf_counter()
                    due = int(round(msg["t"] * 16000))
                    sent = next((ts for end, ts in sent_at if end >= due), None)
                    if sent is not None:
                        latencies.append(now - sent)
                elif msg["type"] != "end":
                    raise RuntimeError(f"paced stream error: {msg}")

        task = asyncio.create_task(reader())
        start = time.perf_counter()
        for i in range(n_frames):
            lo = (i * frame) % (pcm.size - frame)
            sent_at.append(((i + 1) * frame, time.perf_counter()))
            await ws.send(pcm[lo : lo + frame].tobytes())
            await asyncio.sleep(max(0.0, start + (i + 1) * frame_s - time.perf_counter()))
        await ws.send(json.dumps({"type": "end"}))
        await task
    return latencies[:-1]  # the last event is the flushed tail, due at close


async def load(url: str, clips, *, clients: int, duration_s: float, stream_fraction: float, seed: int) -> dict:
    import httpx

    ws_url = url.replace("http://", "ws://") + "/v1/stream"
    up_lat: list[float] = []
    st_lat: list[float] = []
    audio_s = [0.0]
    events = [0]
    errors: list[str] = []
    stop = time.perf_counter() + duration_s
    limits = httpx.Limits(
        max_connections=clients * 2, max_keepalive_connections=clients * 2, keepalive_expiry=5.0
    )  # shorter than the server's 20 s keep-alive

    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def worker(k: int) -> None:
            rng = np.random.default_rng(seed + k)
            while time.perf_counter() < stop:
                clip = clips[int(rng.integers(len(clips)))]
                try:
                    if rng.random() < stream_fraction:
                        dt, a, e = await stream(ws_url, clip)
                        st_lat.append(dt)
                        audio_s[0] += a
                        events[0] += e
                    else:
                        up_lat.append(await upload(client, url, clip))
                except Exception as error:  # noqa: BLE001 -- counted and shown
                    errors.append(f"{type(error).__name__}: {error}"[:300])

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(clients)))
        wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "uploads": up_lat,
        "streams": st_lat,
        "stream_audio_s": audio_s[0],
        "events": events[0],
        "errors": errors,
    }


def pct(x, q) -> float:
    return float(np.percentile(x, q)) if len(x) else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration-s", type=float, default=30.0)
    ap.add_argument("--ref-s", type=float, default=8.0)
    ap.add_argument("--stream-fraction", type=float, default=0.25)
    ap.add_argument("--threads", type=int, default=1, help="model threads per call in the server")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2, help="load rounds (RSS after each shows growth or plateau)")
    args = ap.parse_args()

    import psutil

    from emovox.service.testing import free_port

    clips = corpus_clips(args.clips)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(port, args.threads)
    errors = ["did not run"]
    try:
        wait_ready(url, proc)
        server = psutil.Process(proc.pid)
        print(
            f"server pid {proc.pid} on {url}; {len(clips)} EMO-DB clips "
            f"({np.mean([c[2].size for c in clips]) / 16000:.2f} s mean); "
            f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores"
        )
        # warm-up: one upload and one stream
        asyncio.run(load(url, clips[:2], clients=2, duration_s=1.0, stream_fraction=0.5, seed=99))
        ws_url = url.replace("http://", "ws://") + "/v1/stream"
        idle_lat = asyncio.run(paced_stream(ws_url, clips, args.ref_s))
        print(
            f"reference (1 real-time stream, {args.ref_s:.0f} s): event latency p50 {1000 * pct(idle_lat, 50):.0f} ms, "
            f"p99 {1000 * pct(idle_lat, 99):.0f} ms over {len(idle_lat)} events (from sending the frame that "
            "completes a hop to receiving its event)"
        )
        rss_before = server.memory_info().rss
        c0 = server.cpu_times()
        ref = asyncio.run(load(url, clips, clients=1, duration_s=args.ref_s, stream_fraction=0.0, seed=1))
        c1 = server.cpu_times()
        ref_p50 = pct(ref["uploads"], 50)
        ref_cpu_ms = 1000 * ((c1.user + c1.system) - (c0.user + c0.system)) / max(1, len(ref["uploads"]))
        print(
            f"reference (1 client, uploads only, {ref['wall_s']:.1f} s): {len(ref['uploads'])} uploads, "
            f"{len(ref['uploads']) / ref['wall_s']:.1f} req/s, p50 {1000 * ref_p50:.0f} ms, "
            f"p99 {1000 * pct(ref['uploads'], 99):.0f} ms, errors {len(ref['errors'])}; "
            f"server CPU {ref_cpu_ms:.1f} ms per upload"
        )

        peak = [rss_before]

        async def sample_rss(stop_evt):
            while not stop_evt.is_set():
                peak[0] = max(peak[0], server.memory_info().rss)
                await asyncio.sleep(0.5)

        async def run_load():
            stop_evt = asyncio.Event()
            sampler = asyncio.create_task(sample_rss(stop_evt))
            result, paced = await asyncio.gather(
                load(
                    url,
                    clips,
                    clients=args.clients,
                    duration_s=args.duration_s,
                    stream_fraction=args.stream_fraction,
                    seed=args.seed,
                ),
                paced_stream(ws_url, clips, args.duration_s - 1.0),
            )
            stop_evt.set()
            await sampler
            result["paced"] = paced
            return result

        errors = []
        for round_ in range(1, args.rounds + 1):
            cpu0, me0 = server.cpu_times(), os.times()
            res = asyncio.run(run_load())
            cpu1, me1 = server.cpu_times(), os.times()
            rss_after = server.memory_info().rss
            errors += res["errors"]
            n_up, n_st = len(res["uploads"]), len(res["streams"])
            wall = res["wall_s"]
            server_cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
            client_cpu = (me1.user + me1.system) - (me0.user + me0.system)
            print(
                f"load round {round_} ({args.clients} clients, {args.stream_fraction:.0%} streams, {wall:.1f} s): "
                f"{(n_up + n_st) / wall:.1f} requests/s ({n_up} uploads, {n_st} streams), "
                f"errors {len(res['errors'])}"
            )
            print(
                f"  uploads: {n_up / wall:.1f}/s, p50 {1000 * pct(res['uploads'], 50):.0f} ms, "
                f"p99 {1000 * pct(res['uploads'], 99):.0f} ms  "
                f"(p50 = {pct(res['uploads'], 50) / ref_p50:.1f}x the idle reference)"
            )
            print(
                f"  streams: {n_st / wall:.2f}/s, whole-stream p50 {1000 * pct(res['streams'], 50):.0f} ms, "
                f"p99 {1000 * pct(res['streams'], 99):.0f} ms; {res['stream_audio_s']:.0f} s of audio "
                f"({res['stream_audio_s'] / wall:.1f} s per s), {res['events']} events"
            )
            print(
                f"  one more client streaming at real time: event latency p50 {1000 * pct(res['paced'], 50):.0f} ms, "
                f"p99 {1000 * pct(res['paced'], 99):.0f} ms over {len(res['paced'])} events "
                f"(idle: p50 {1000 * pct(idle_lat, 50):.0f} ms)"
            )
            print(
                f"  CPU: server {server_cpu / wall:.2f} cores ({1000 * server_cpu / max(1, n_up + n_st):.1f} ms "
                f"per request), clients {client_cpu / wall:.2f} cores; "
                f"server RSS before {rss_before / 2**20:.0f} MB, peak {peak[0] / 2**20:.0f} MB, "
                f"after {rss_after / 2**20:.0f} MB"
            )
            for e in res["errors"][:5]:
                print("  error:", e)
        print(f"load average at end {os.getloadavg()[0]:.2f}")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
