"""The reverse-proxy recipe ``deploy/nginx/emovox.conf`` with the real nginx (issue 19, point 3).

The recipe file itself is run (ports, paths and a self-signed certificate
substituted) in front of two ``emovox serve`` processes: predictions and a
stream over TLS, HTTP redirected to HTTPS, a 100 MiB header refused at once
by nginx, ``/healthz`` answering while 300 idle connections sit on the TLS
port, and one instance drained by SIGTERM while a client keeps uploading:
nginx sends the work the draining instance refuses (503) to the other, so
the client sees no error. Skipped where ``nginx`` or ``openssl`` is absent
(``.ci/run`` installs both from Debian).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from emovox.corpora import default_corpora_root

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
websockets = pytest.importorskip("websockets")

RECIPE = Path(__file__).resolve().parents[1] / "deploy" / "nginx" / "emovox.conf"
CLIP = default_corpora_root() / "emodb" / "wav" / "03a01Wa.flac"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed (apt-get install openssl)"),
    pytest.mark.skipif(not CLIP.is_file(), reason=f"corpus file {CLIP} is absent"),
]


def render(recipe: str, *, https: int, http: int, upstreams: list[int], cert: Path, key: Path) -> str:
    """The recipe with this test's ports, certificate and loopback addresses."""
    text = re.sub(r"\n\s*listen \[::\]:\d+( ssl)?;", "", recipe)
    text = text.replace("listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http};")
    text = text.replace("/etc/ssl/certs/emovox.pem", str(cert)).replace("/etc/ssl/private/emovox.key", str(key))
    text = text.replace("server 127.0.0.1:8001", f"server 127.0.0.1:{upstreams[0]}")
    text = text.replace("server 127.0.0.1:8002", f"server 127.0.0.1:{upstreams[1]}")
    assert text.count(f"127.0.0.1:{upstreams[1]}") == 1 and f":{https} ssl" in text
    return text


def _start_emovox(port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emovox.cli.main",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--drain-s",
            "10",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from emovox.service.testing import free_port, healthz_latency_s

    tmp = tmp_path_factory.mktemp("nginx")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    ports = [free_port() for _ in range(4)]
    https, http, upstreams = ports[0], ports[1], ports[2:]
    (tmp / "emovox.conf").write_text(
        render(RECIPE.read_text(), https=https, http=http, upstreams=upstreams, cert=cert, key=key)
    )
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must write the temp folders below
    (tmp / "nginx.conf").write_text(f"""{user}worker_processes 1;
worker_rlimit_nofile 8192;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    include {tmp}/emovox.conf;
}}
""")
    check = subprocess.run([NGINX, "-t", "-p", str(tmp), "-c", str(tmp / "nginx.conf")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    backends = [_start_emovox(p) for p in upstreams]
    nginx = subprocess.Popen(
        [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"], stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        for p, port in zip(backends, upstreams):
            while healthz_latency_s(port, timeout_s=2.0) is None:
                assert p.poll() is None and time.monotonic() < deadline, "emovox serve did not start"
                time.sleep(0.2)
        yield {
            "url": f"https://127.0.0.1:{https}",
            "http": http,
            "https": https,
            "cert": str(cert),
            "backends": backends,
            "tmp": tmp,
        }
    finally:
        nginx.send_signal(signal.SIGQUIT)
        for p in backends:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in [nginx, *backends]:
            try:
                p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()


def test_predictions_and_streams_over_tls(stack):
    from emovox.audio import load_audio

    with httpx.Client(verify=ssl.create_default_context(cafile=stack["cert"]), timeout=60) as client:
        assert client.get(stack["url"] + "/healthz").json() == {"status": "ok"}
        with open(CLIP, "rb") as fh:
            r = client.post(stack["url"] + "/v1/predict", files={"file": ("clip.flac", fh)})
        assert r.status_code == 200 and r.json()["file"] == "clip.flac" and r.json()["label"]
    redirect = httpx.get(f"http://127.0.0.1:{stack['http']}/v1/model", follow_redirects=False)
    assert redirect.status_code == 308 and redirect.headers["location"].startswith("https://")

    pcm = (load_audio(CLIP) * 32767).astype("<i2")
    context = ssl.create_default_context(cafile=stack["cert"])

    async def stream():
        got = []
        async with websockets.connect(stack["url"].replace("https", "wss") + "/v1/stream", ssl=context) as ws:
            await ws.send(json.dumps({"format": "pcm16", "sample_rate_hz": 16000}))
            for i in range(0, pcm.size, 1600):
                await ws.send(pcm[i : i + 1600].tobytes())
            await ws.send(json.dumps({"type": "end"}))
            async for m in ws:
                got.append(json.loads(m)["type"])
        return got, ws.close_code

    got, code = asyncio.run(stream())
    assert got[0] == "ready" and got[-1] == "end" and "event" in got and code == 1000


def test_a_streamed_timeline_passes_nginx_line_by_line(stack, tmp_path):
    """``stream=true`` through the recipe: nginx forwards the first line long before the last one
    (the answer says ``X-Accel-Buffering: no``), and the lines end with the answer."""
    import io

    import soundfile as sf
    from test_progress import emodb_recording

    buf = io.BytesIO()
    sf.write(buf, emodb_recording(), 16000, format="FLAC")
    arrivals = []
    with httpx.Client(verify=ssl.create_default_context(cafile=stack["cert"]), timeout=120) as client:
        with client.stream(
            "POST",
            stack["url"] + "/v1/predict?timeline=true&stream=true",
            files={"file": ("meeting.flac", buf.getvalue())},
        ) as r:
            assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
            for line in r.iter_lines():
                if line:
                    arrivals.append((time.monotonic(), json.loads(line)))
    kinds = [m["type"] for _, m in arrivals]
    assert kinds[0] == "start" and kinds[-1] == "result" and "segment" in kinds
    assert arrivals[-1][0] - arrivals[0][0] > 0.2  # the lines came as they were computed, not in one piece


def test_nginx_refuses_huge_headers_and_idle_connections_do_not_starve_it(stack):
    t0 = time.monotonic()
    context = ssl.create_default_context(cafile=stack["cert"])
    with (
        socket.create_connection(("127.0.0.1", stack["https"]), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as s,
    ):
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ")
        try:
            for _ in range(100):  # up to 100 MiB: nginx stops reading after 8 KiB
                s.sendall(b"a" * 2**20)
        except OSError:
            pass
        try:
            answer = s.recv(4096)
        except OSError:
            answer = b""
    assert time.monotonic() - t0 < 10
    assert answer.startswith(b"HTTP/1.1 400 ") or answer == b"", answer[:100]  # 400, or reset first
    print("nginx answered a 100 MiB header with", answer[:40])
    idle = []
    try:
        for _ in range(300):
            idle.append(socket.create_connection(("127.0.0.1", stack["https"]), timeout=5))
        t0 = time.monotonic()
        r = httpx.get(stack["url"] + "/healthz", verify=context, timeout=5)
        assert r.status_code == 200 and time.monotonic() - t0 < 1.0
    finally:
        for s in idle:
            s.close()


def test_a_draining_instance_loses_no_request(stack):
    """SIGTERM one instance while a client uploads through nginx: its 503s are retried on the other."""
    clip = CLIP.read_bytes()
    statuses = []
    stop = threading.Event()

    def client():
        with httpx.Client(verify=ssl.create_default_context(cafile=stack["cert"]), timeout=60) as c:
            while not stop.is_set():
                statuses.append(c.post(stack["url"] + "/v1/predict", files={"file": ("clip.flac", clip)}).status_code)

    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    first = stack["backends"][0]
    first.send_signal(signal.SIGTERM)
    first.wait(30)
    time.sleep(2.0)  # the other instance serves everything now
    stop.set()
    for t in threads:
        t.join(60)
    assert first.returncode == 0
    assert statuses and set(statuses) == {200}, statuses
