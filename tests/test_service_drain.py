"""Graceful drain on SIGTERM (issue 19), against ``emovox serve`` in its own process, under load.

While three clients upload in a loop, two stream speech and one upload is
still arriving, the server gets SIGTERM. Then: ``/readyz`` is 503
``draining`` and ``/healthz`` 200; new predictions get 503 ``draining``
(``Retry-After``, ``Connection: close``) and new streams an error frame and
close 1013; the upload in progress is answered 200; the streams get their
last events, ``{"type": "end", "reason": "server_shutdown"}`` and close
1001; no request fails otherwise; the process exits 0 once drained, well
within ``--drain-s``. A request that outlives ``--drain-s`` is cut at it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from emovox.corpora import default_corpora_root

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
websockets = pytest.importorskip("websockets")

CLIP = default_corpora_root() / "emodb" / "wav" / "03a01Wa.flac"
pytestmark = pytest.mark.skipif(not CLIP.is_file(), reason=f"corpus file {CLIP} is absent")


def _start(*args: str) -> tuple[subprocess.Popen, str]:
    from emovox.service.testing import free_port, healthz_latency_s

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emovox.cli.main", "serve", "--port", str(port), "--log-level", "info", *args],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "emovox serve did not become ready"
        time.sleep(0.2)
    assert healthz_latency_s(port) is not None
    return proc, url


def _stop(proc: subprocess.Popen) -> str:
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def _trickled(data: bytes, *, seconds: float, started: threading.Event):
    """The upload's body, sent in 20 pieces over ``seconds`` (so it is in flight when SIGTERM comes)."""
    step = max(1, len(data) // 20)
    for i in range(0, len(data), step):
        yield data[i : i + step]
        started.set()
        time.sleep(seconds / 20)


def test_sigterm_drains_under_load():
    from emovox.audio import load_audio

    clip = CLIP.read_bytes()
    pcm = (load_audio(CLIP) * 32767).astype("<i2")
    proc, url = _start("--drain-s", "20")
    ws_url = url.replace("http://", "ws://") + "/v1/stream"
    stop = threading.Event()
    upload_statuses: list = []
    stream_results: list = []

    def uploader():
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                try:
                    r = client.post(url + "/v1/predict", files={"file": ("clip.flac", clip)})
                    upload_statuses.append((r.status_code, r.json().get("error", {}).get("code")))
                    if r.status_code == 503:
                        assert r.headers["retry-after"] == "1" and r.headers["connection"] == "close"
                except httpx.TransportError:  # the server has exited
                    upload_statuses.append(("gone", None))
                    return

    async def streamer():
        got = []
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"format": "pcm16", "sample_rate_hz": 16000}))
            got.append(json.loads(await ws.recv()))

            async def read():
                try:
                    async for m in ws:
                        got.append(json.loads(m))
                except websockets.ConnectionClosed:
                    pass

            reader = asyncio.create_task(read())
            try:
                i = 0
                while not reader.done():
                    await ws.send(pcm[i : i + 1600].tobytes())
                    i = (i + 1600) % (pcm.size - 1600)
                    await asyncio.sleep(0.05)
            except websockets.ConnectionClosed:
                pass
            await reader
        stream_results.append((got, ws.close_code))

    loaders = [threading.Thread(target=uploader) for _ in range(3)]
    streams = [threading.Thread(target=lambda: asyncio.run(streamer())) for _ in range(2)]
    in_flight: dict = {}
    sent = threading.Event()

    def slow_upload():
        body = _trickled(clip, seconds=3.0, started=sent)
        in_flight["r"] = httpx.post(url + "/v1/predict", content=body, timeout=60)

    slow = threading.Thread(target=slow_upload)
    try:
        for t in loaders + streams:
            t.start()
        time.sleep(2.0)  # load running, streams producing events
        slow.start()
        assert sent.wait(10)
        t_term = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        ready = httpx.get(url + "/readyz", timeout=5)
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "draining"
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200
        refused = httpx.post(url + "/v1/predict", content=clip, timeout=5)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "draining"

        async def new_stream():
            messages = []
            async with websockets.connect(ws_url) as ws:
                try:
                    async for m in ws:
                        messages.append(json.loads(m))
                except websockets.ConnectionClosed:
                    pass
            return messages, ws.close_code

        messages, code = asyncio.run(new_stream())
        assert messages[-1]["error"]["code"] == "draining" and code == 1013
        slow.join(30)
        proc.wait(30)
        exited_after = time.monotonic() - t_term
    finally:
        stop.set()
        for t in loaders + streams + [slow]:
            t.join(30)
        if proc.poll() is None:
            proc.kill()
        err = _stop(proc)
    assert proc.returncode == 0, err[-2000:]
    assert exited_after < 15, exited_after  # drained: the trickled upload ends ~3 s after SIGTERM
    # the upload in flight at SIGTERM was answered
    assert in_flight["r"].status_code == 200 and in_flight["r"].json()["label"]
    # every other upload: 200 before, 503 draining after, then the server is gone; nothing else
    assert set(upload_statuses) <= {(200, None), (503, "draining"), ("gone", None)}, upload_statuses
    assert (200, None) in upload_statuses and (503, "draining") in upload_statuses
    # the streams: their events, then the last events and the end, close 1001
    assert len(stream_results) == 2
    for got, close_code in stream_results:
        assert close_code == 1001
        assert got[0]["type"] == "ready" and got[-1]["type"] == "end"
        assert got[-1]["reason"] == "server_shutdown"
        assert got[-1]["events"] == sum(m["type"] == "event" for m in got) > 0
    assert "draining" in err and "drained; shutting down" in err


def test_a_request_past_the_drain_time_is_cut():
    clip = CLIP.read_bytes()
    proc, url = _start("--drain-s", "1.5")
    sent = threading.Event()
    result: dict = {}

    def endless_upload():
        body = _trickled(clip, seconds=60.0, started=sent)
        try:
            result["r"] = httpx.post(url + "/v1/predict", content=body, timeout=60)
        except httpx.TransportError as error:
            result["error"] = error

    t = threading.Thread(target=endless_upload, daemon=True)
    t.start()
    assert sent.wait(10)
    time.sleep(0.3)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    took = time.monotonic() - t0
    err = _stop(proc)
    assert proc.returncode == 0
    assert 1.4 < took < 6.0, took
    assert "drain time of 1.5 s is over: cutting 1 request(s)" in err
