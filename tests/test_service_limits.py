"""Service limits, API keys and ``emovox serve`` itself, against real uvicorn servers.

Upload size (413 from Content-Length and while a chunked body streams in),
audio duration (413), slow bodies (408), concurrent requests and streams
(503 + Retry-After / close 1013), API keys (401, WebSocket 1008; the full
matrix is in ``test_service_auth.py``), and the
command: it serves, and a port in use or a bad key file is one line, exit 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
from waiting import wait_until

from emovox.corpora import default_corpora_root

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
websockets = pytest.importorskip("websockets")

CLIP = default_corpora_root() / "emodb" / "wav" / "03a01Wa.flac"
KEY = "k3y-for-tests-0123456789"


@pytest.fixture(scope="module")
def predictor():
    from emovox.inference import load_model

    return load_model(num_threads=1)


def _serve(predictor, api_keys=None, **limits):
    from emovox.service.app import create_app
    from emovox.service.limits import Limits
    from emovox.service.testing import serve_in_thread

    return serve_in_thread(create_app(predictor, limits=Limits(**limits), api_keys=api_keys))


@contextlib.contextmanager
def _serving(predictor, **limits):
    """Like :func:`_serve`, yielding ``(url, state)``: the app's state shows what the server is doing."""
    from emovox.service.app import create_app
    from emovox.service.limits import Limits
    from emovox.service.testing import serve_in_thread

    app = create_app(predictor, limits=Limits(**limits))
    with serve_in_thread(app) as url:
        yield url, app.state.emovox


def _answered(state, status: int) -> float:
    """How many ``POST /v1/predict`` the server has answered with ``status`` (its own metrics)."""
    labels = {"method": "POST", "route": "/v1/predict", "status": str(status)}
    return state.metrics.registry.get_sample_value("emovox_http_requests_total", labels) or 0.0


def _wav(seconds: float) -> bytes:
    """A 220 Hz tone (the service answers it ``no_speech``)."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    y = 0.1 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * 16000)) / 16000)
    sf.write(buf, y.astype(np.float32), 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _code(response) -> str:
    return response.json()["error"]["code"]


def test_limits_are_validated():
    from emovox.errors import ConfigError
    from emovox.service.limits import Limits

    with pytest.raises(ConfigError, match="max_upload_mb"):
        Limits(max_upload_mb=0)
    with pytest.raises(ConfigError, match="whole number"):
        Limits(max_streams=1.5)


def test_upload_size_and_duration_limits(predictor):
    with _serve(predictor, max_upload_mb=0.1, max_audio_s=1.0) as url:
        r = httpx.post(url + "/v1/predict", content=_wav(4.0))  # 128 kB > 102 kB: Content-Length
        assert r.status_code == 413 and _code(r) == "payload_too_large"

        sent = []

        def chunks():  # no Content-Length: counted as it arrives, refused before the end
            for _ in range(200):
                sent.append(1)
                yield b"\0" * 4096

        try:
            r = httpx.post(url + "/v1/predict", content=chunks(), timeout=10)
            assert r.status_code == 413 and _code(r) == "payload_too_large"
        except httpx.TransportError:
            pass  # the server may answer and close before the client finished sending
        assert len(sent) < 200 or r.status_code == 413
        r = httpx.post(url + "/v1/predict", content=_wav(1.5))
        assert r.status_code == 413 and _code(r) == "audio_too_long" and "1.5 s" in r.json()["error"]["message"]
        r = httpx.post(
            url + "/v1/predict/batch", files=[("files", ("long.wav", _wav(1.5))), ("files", ("ok.wav", _wav(0.8)))]
        )
        long, ok = r.json()["results"]
        assert long["error"]["code"] == "audio_too_long"
        assert ok["label"] == "no_speech" and ok["end_s"] == 0.8  # a tone: answered, not refused


def test_too_many_batch_files(predictor):
    with _serve(predictor, max_batch_files=2) as url:
        files = [("files", (f"{i}.wav", _wav(0.1))) for i in range(5)]
        r = httpx.post(url + "/v1/predict/batch", files=files)
        assert r.status_code == 413 and _code(r) == "too_many_files"


def test_slow_body_times_out_with_408(predictor):
    with _serving(predictor, body_timeout_s=0.5) as (url, state):

        def slow():  # the rest of the body comes only once the server has given up on it
            yield b"RIFF"
            wait_until(lambda: _answered(state, 408), "the server to answer 408 to the stalled body")
            yield b"...."

        r = httpx.post(url + "/v1/predict", content=slow(), timeout=10)
        assert r.status_code == 408 and _code(r) == "request_timeout"


def test_concurrent_requests_over_the_limit_get_503_retry_after(predictor):
    with _serving(predictor, max_concurrent_requests=1, retry_after_s=2) as (url, state):
        release = threading.Event()
        first = {}

        def held_body():
            yield _wav(0.5)[:100]
            release.wait(10)
            yield _wav(0.5)[100:]

        t = threading.Thread(
            target=lambda: first.update(r=httpx.post(url + "/v1/predict", content=held_body(), timeout=20))
        )
        t.start()
        wait_until(lambda: state.requests_gate.active == 1, "the first request to hold the only slot")
        r = httpx.post(url + "/v1/predict", content=_wav(0.5))
        release.set()
        t.join(20)
        assert r.status_code == 503 and _code(r) == "busy" and r.headers["retry-after"] == "2"
        assert first["r"].status_code == 200
        assert httpx.post(url + "/v1/predict", content=_wav(0.5)).status_code == 200  # slot released


def test_streams_over_the_limit_are_refused_with_1013(predictor):
    with _serve(predictor, max_streams=1) as url:
        ws_url = url.replace("http://", "ws://") + "/v1/stream"

        async def two():
            async with websockets.connect(ws_url) as a:
                await a.send(json.dumps({"format": "pcm16", "sample_rate_hz": 16000}))
                assert json.loads(await a.recv())["type"] == "ready"
                async with websockets.connect(ws_url) as b:
                    msg = json.loads(await b.recv())
                    try:
                        await b.recv()
                    except websockets.ConnectionClosed:
                        pass
                    return msg, b.close_code

        msg, code = asyncio.run(two())
        assert msg["error"]["code"] == "too_many_streams" and code == 1013


def test_api_keys(predictor, tmp_path):
    from emovox.service.auth import load_api_keys

    path = tmp_path / "keys.txt"
    path.write_text(f"# operators\n{KEY}\n\nanother-key-abcdefghijkl\n")
    keys = load_api_keys(path)
    assert len(keys) == 2
    with _serve(predictor, api_keys=keys) as url:
        assert httpx.get(url + "/healthz").status_code == 200
        for route in ("/", "/readyz", "/static/app.js", "/v1/model", "/metrics", "/openapi.json"):
            r = httpx.get(url + route)
            assert r.status_code == 401 and _code(r) == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
        r = httpx.post(url + "/v1/predict", content=_wav(0.5))
        assert r.status_code == 401
        assert httpx.get(url + "/v1/model", headers={"Authorization": "Bearer wrong-key-000000000"}).status_code == 401
        assert httpx.get(url + "/v1/model", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        r = httpx.post(url + "/v1/predict", content=_wav(0.5), headers={"X-API-Key": KEY})
        assert r.status_code == 200
        ws_url = url.replace("http://", "ws://") + "/v1/stream"

        async def stream(query: str):
            async with websockets.connect(ws_url + query) as ws:
                try:  # an unauthorized client is refused before its start message
                    await ws.send(json.dumps({"format": "pcm16", "sample_rate_hz": 16000}))
                except websockets.ConnectionClosed:
                    pass
                msg = json.loads(await ws.recv())
                try:
                    if msg["type"] == "ready":
                        await ws.send(json.dumps({"type": "end"}))
                    async for _ in ws:
                        pass
                except websockets.ConnectionClosed:
                    pass
                return msg, ws.close_code

        msg, code = asyncio.run(stream(""))
        assert msg["error"]["code"] == "unauthorized" and code == 1008
        msg, code = asyncio.run(stream(f"?api_key={KEY}"))
        assert msg["type"] == "ready"


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "holds no key"),
        ("short\n", "at least 16 characters"),
        ("has a space in it!!\n", "at least 16 characters"),
    ],
)
def test_bad_key_files(tmp_path, text, match):
    from emovox.errors import ConfigError
    from emovox.service.auth import load_api_keys

    path = tmp_path / "keys.txt"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_api_keys(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_api_keys(tmp_path / "missing.txt")


# ---------------------------------------------------------------------- the command
def _emovox(*args, timeout=60):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "emovox.cli.main", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_serve_command_errors_are_one_line(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        r = _emovox("serve", "--port", str(port))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"emovox: error: port {port} on 127.0.0.1 is already in use: pick another with --port"
    ]
    r = _emovox("serve", "--port", "0", "--api-key-file", str(tmp_path / "none.txt"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "does not exist" in r.stderr
    r = _emovox("serve", "--max-upload-mb", "-1")
    assert r.returncode == 2 and "max_upload_mb" in r.stderr and "Traceback" not in r.stderr
    r = _emovox("serve", "--hop-s", "5", "--window-s", "3")
    assert r.returncode == 2 and "hop_s" in r.stderr


def test_serve_help_says_only_healthz_is_open_under_api_keys():
    """Issue 19: the help said the probes and the page were open; only /healthz is (docs/service.md)."""
    r = _emovox("serve", "--help")
    text = " ".join(r.stdout.split())
    assert r.returncode == 0 and "every route but /healthz" in text and "/readyz" in text
    assert "probes and the page" not in text
    for option in ("--max-header-kb", "--header-timeout-s", "--max-connections", "--drain-s"):
        assert option in text


@pytest.mark.skipif(not CLIP.is_file(), reason=f"corpus file {CLIP} is absent")
def test_serve_command_serves_until_interrupted():
    from emovox.service.testing import free_port

    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emovox.cli.main",
            "serve",
            "--port",
            str(port),
            "--threads",
            "1",
            "--log-level",
            "warning",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stderr.readline()
        assert f"serving on http://127.0.0.1:{port}/" in line

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, "the server to become ready")
        with open(CLIP, "rb") as fh:
            r = httpx.post(f"http://127.0.0.1:{port}/v1/predict", files={"file": ("clip.flac", fh)}, timeout=30)
        assert r.status_code == 200 and r.json()["file"] == "clip.flac"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


def test_serve_without_the_service_extra_gives_the_install_hint():
    code = (
        "import sys; sys.modules['uvicorn'] = None; sys.modules['fastapi'] = None\n"
        "from emovox.cli.main import main; sys.exit(main(['serve']))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 2 and "pip install 'emovox[service]'" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(not CLIP.is_file(), reason=f"corpus file {CLIP} is absent")
def test_the_event_loop_answers_while_a_long_prediction_runs(predictor, monkeypatch):
    """The timeline is held mid-prediction until /healthz has answered: on the event loop it never would."""
    import io

    import soundfile as sf

    from emovox.audio import load_audio

    y = np.tile(load_audio(CLIP), 40)  # 80 s of speech: a timeline
    buf = io.BytesIO()
    sf.write(buf, y, 16000, format="WAV", subtype="PCM_16")
    with _serving(predictor) as (url, state):
        running, release = threading.Event(), threading.Event()
        timeline_predict = state.timeline_predict

        def held(source, **kwargs):
            running.set()
            assert release.wait(120), "the test never let the prediction go on"
            return timeline_predict(source, **kwargs)

        monkeypatch.setattr(state, "timeline_predict", held)
        result = {}

        def long_request():
            result["r"] = httpx.post(url + "/v1/predict?timeline=true", content=buf.getvalue(), timeout=300)

        t = threading.Thread(target=long_request)
        t.start()
        try:
            assert running.wait(120), "the prediction did not start"
            health = httpx.get(url + "/healthz", timeout=30)  # while the prediction is held
        finally:
            release.set()
            t.join(300)
    assert health.status_code == 200  # the model runs on a worker thread, not on the event loop
    assert result["r"].status_code == 200 and len(result["r"].json()["timeline"]["segments"]) > 10
    assert result["r"].json()["timeline"]["summary"]["speech_s"] > 60


def test_serve_with_keys_never_logs_a_key(tmp_path):
    from emovox.service.testing import free_port

    (tmp_path / "keys.txt").write_text(KEY + "\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emovox.cli.main",
            "serve",
            "--port",
            str(port),
            "--api-key-file",
            str(tmp_path / "keys.txt"),
            "--log-level",
            "info",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        assert "API keys required" in proc.stderr.readline()
        url = f"http://127.0.0.1:{port}"

        def accepting() -> bool:
            try:
                return httpx.get(url + "/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(accepting, "the server to accept connections")
        assert httpx.get(url + f"/v1/model?api_key={KEY}", headers={"X-API-Key": KEY}).status_code == 200
        assert httpx.get(url + f"/?api_key={KEY}").status_code == 303  # the browser sign-in link

        async def stream():
            async with websockets.connect(url.replace("http", "ws") + f"/v1/stream?api_key={KEY}") as ws:
                await ws.send(json.dumps({"format": "pcm16", "sample_rate_hz": 16000}))
                assert json.loads(await ws.recv())["type"] == "ready"
                await ws.send(json.dumps({"type": "end"}))
                async for _ in ws:
                    pass

        asyncio.run(stream())
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert "api_key=***" in err and KEY not in err
