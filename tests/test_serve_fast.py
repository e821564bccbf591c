"""``emovox serve --fast`` serves the small CNN, as ``predict``, ``listen`` and ``batch --fast`` do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")


def test_serve_fast_serves_the_cnn_and_refuses_fast_with_model(tmp_path):
    from emovox.service.testing import free_port

    both = subprocess.run(
        [sys.executable, "-m", "emovox.cli.main", "serve", "--fast", "--model", "default"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert both.returncode == 2 and "not allowed with argument" in both.stderr

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "serve.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emovox.cli.main", "serve", "--fast", "--port", str(port)],
            stderr=log,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(url + "/v1/model", timeout=5)
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        assert r.json()["name"] == "cnn"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(40)
    assert proc.returncode == 0
