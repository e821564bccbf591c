"""``emovox serve --ray`` (issue 19, point 3, Ray Serve): the same app as two Ray Serve replicas.

One real server (embedded Ray, two replicas each loading the bundled model,
API keys on): the API key is enforced as without Ray, a corpus clip's
prediction equals the in-process Predictor's, a WebSocket stream gives the
events of a ``StreamEngine`` fed directly, and SIGTERM drains (a live
stream gets its last events, ``server_shutdown`` and close 1001), exits 0
and leaves no Ray process behind. Options that do not combine with
``--ray`` are one line, exit 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from emovox.corpora import default_corpora_root

pytest.importorskip("ray.serve")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
psutil = pytest.importorskip("psutil")
websockets = pytest.importorskip("websockets")

CLIP = default_corpora_root() / "emodb" / "wav" / "03a01Wa.flac"
KEY = "ray-test-key-0123456789abcdef"
AUTH = {"X-API-Key": KEY}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--ray", "--workers", "2"], "--ray and --workers 2 do not combine"),
        (["--replicas", "2"], "--replicas needs --ray"),
        (["--address", "auto"], "--address needs --ray"),
        (["--ray", "--replicas", "2", "--max-replicas", "3"], "either --replicas N or --min-replicas/--max-replicas"),
        (["--ray", "--min-replicas", "3", "--max-replicas", "2"], "--min-replicas 3 is more than --max-replicas 2"),
        (["--ray", "--max-header-kb", "64"], "--max-header-kb does not apply with --ray"),
    ],
)
def test_options_that_do_not_combine_are_one_line(argv, message, capsys):
    from emovox.cli.main import main

    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("emovox: error: ") and message in err, err


def _descendants(pid: int) -> list:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _alive(p) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_ready(url: str, proc, log, timeout_s: float = 120.0) -> None:
    """Until every replica runs (the serving line, printed once Ray Serve says so) and ``/readyz`` answers."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if (
                "emovox: serving on" in log.read_text()
                and httpx.get(url + "/readyz", headers=AUTH, timeout=5).status_code == 200
            ):
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, "emovox serve --ray exited while starting"
        assert time.monotonic() < deadline, "the replicas did not become ready"
        time.sleep(0.2)


async def _stream(url: str, frames: list[bytes], *, end: bool, after_frames=None) -> tuple[list[dict], int]:
    """One pcm16 stream: (messages received, close code); ``after_frames()`` runs once the audio is sent."""
    got = []
    async with websockets.connect(url, additional_headers=AUTH, max_size=None, open_timeout=20) as ws:
        await ws.send(json.dumps({"format": "pcm16", "sample_rate_hz": 16000}))
        got.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
        for f in frames:
            await ws.send(f)
        if end:
            await ws.send(json.dumps({"type": "end"}))
        if after_frames is not None:
            await asyncio.sleep(0.5)  # the frames are being analysed
            after_frames()
        try:
            while True:
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
        except websockets.ConnectionClosed:
            pass
        return got, ws.close_code


@pytest.mark.skipif(not CLIP.is_file(), reason=f"corpus file {CLIP} is absent")
def test_two_replicas_serve_the_same_api_and_drain_on_sigterm(tmp_path):
    from emovox.audio import load_audio
    from emovox.inference import load_model
    from emovox.inference.streaming import StreamEngine
    from emovox.service.testing import free_port

    keys = tmp_path / "keys.txt"
    keys.write_text(KEY + "\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with open(log, "w") as fh:  # a file, not a pipe: Ray processes outliving a failed test cannot block it
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emovox.cli.main",
                "serve",
                "--ray",
                "--replicas",
                "2",
                "--port",
                str(port),
                "--api-key-file",
                str(keys),
                "--log-level",
                "warning",
            ],
            stderr=fh,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            start_new_session=True,
        )
    ray_processes: dict[int, object] = {}
    try:
        predictor = load_model(num_threads=1)  # while the server starts
        _wait_ready(url, proc, log)
        for p in _descendants(proc.pid):
            ray_processes[p.pid] = p
        names = [p.name() for p in ray_processes.values() if _alive(p)]
        assert sum("ServeReplica" in n for n in names) == 2, names

        # the API key is checked by the app in each replica: only /healthz is open
        assert httpx.get(url + "/healthz", timeout=10).status_code == 200
        refused = httpx.post(url + "/v1/predict", content=CLIP.read_bytes(), timeout=10)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        assert httpx.get(url + "/readyz", timeout=10).status_code == 401

        # a real prediction, equal to the library's
        with open(CLIP, "rb") as fh:
            r = httpx.post(url + "/v1/predict", files={"file": (CLIP.name, fh)}, headers=AUTH, timeout=60)
        assert r.status_code == 200, r.text
        got, expected = r.json(), predictor.predict(CLIP).to_dict()
        assert (got["file"], got["label"], got["reason"]) == (CLIP.name, expected["label"], expected["reason"])
        assert got["scores"] == pytest.approx(expected["scores"], abs=1e-4)
        assert got["confidence"] == pytest.approx(expected["confidence"], abs=1e-4)

        # a stream end to end: the events of an engine fed the same audio
        speech = load_audio(CLIP, sample_rate_hz=16000)
        pcm = (speech * 32767).astype("<i2")
        frames = [pcm[i : i + 1600].tobytes() for i in range(0, pcm.size, 1600)]
        ws_url = url.replace("http://", "ws://") + "/v1/stream"
        msgs, code = asyncio.run(_stream(ws_url, frames, end=True))
        engine = StreamEngine(predictor)
        want = [e.to_dict() for e in engine.feed(pcm, 16000) + engine.close()]
        events = [{k: v for k, v in m.items() if k != "type"} for m in msgs if m["type"] == "event"]
        assert code == 1000 and msgs[0]["type"] == "ready" and msgs[-1]["type"] == "end", msgs[-1]
        assert events == want and msgs[-1]["events"] == len(want)

        # SIGTERM drains: a stream in progress gets its last events and server_shutdown, close 1001
        msgs, code = asyncio.run(
            _stream(ws_url, frames, end=False, after_frames=lambda: os.kill(proc.pid, signal.SIGTERM))
        )
        assert code == 1001, (code, msgs[-1])
        assert msgs[-1]["type"] == "end" and msgs[-1].get("reason") == "server_shutdown", msgs[-1]
        assert [m for m in msgs if m["type"] == "event"], "no events before the end"
        proc.wait(60)
        assert proc.returncode == 0
        deadline = time.monotonic() + 30
        while left := [p for p in ray_processes.values() if _alive(p)]:
            assert time.monotonic() < deadline, f"Ray processes left behind: {[p.name() for p in left]}"
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        for p in ray_processes.values():
            try:
                p.kill()
            except psutil.Error:
                pass
    err = log.read_text()
    assert "2 Ray Serve replicas, embedded Ray" in err and "API keys required" in err, err
    assert "SIGTERM: draining" in err and "Traceback" not in err, err
    assert KEY not in err


@pytest.mark.skipif(not CLIP.is_file(), reason=f"corpus file {CLIP} is absent")
def test_overload_is_the_apps_503_and_ctrl_c_stops(tmp_path):
    """One replica with ``--max-concurrent 1``: a burst gets 200s and the app's own 503 ``busy``; SIGINT stops."""
    from concurrent.futures import ThreadPoolExecutor

    from emovox.service.testing import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emovox.cli.main",
                "serve",
                "--ray",
                "--port",
                str(port),
                "--max-concurrent",
                "1",
                "--log-level",
                "warning",
            ],
            stderr=fh,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            start_new_session=True,
        )
    ray_processes: list = []
    try:
        _wait_ready(url, proc, log)
        ray_processes = _descendants(proc.pid)
        data = CLIP.read_bytes()

        def upload(_):
            return httpx.post(url + "/v1/predict", content=data, timeout=60)

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(upload, range(16)))
        statuses = sorted(r.status_code for r in answers)
        assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
        busy = next(r for r in answers if r.status_code == 503)
        assert busy.json()["error"]["code"] == "busy" and busy.headers["retry-after"] == "1"
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        assert proc.returncode == 0
        deadline = time.monotonic() + 30
        while left := [p for p in ray_processes if _alive(p)]:
            assert time.monotonic() < deadline, f"Ray processes left behind: {[p.name() for p in left]}"
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        for p in ray_processes:
            try:
                p.kill()
            except psutil.Error:
                pass
    err = log.read_text()
    assert "1 Ray Serve replica, embedded Ray" in err and "server stopped" in err and "Traceback" not in err, err
