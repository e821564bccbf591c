"""``emovox serve --workers 2`` (issue 19, point 3, one machine): two processes on one port.

Both workers take connections; a prediction is served; a killed worker is
restarted while the other goes on answering; SIGTERM drains both and the
supervisor exits 0.
"""

from __future__ import annotations

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
psutil = pytest.importorskip("psutil")

CLIP = default_corpora_root() / "emodb" / "wav" / "03a01Wa.flac"


def _workers(supervisor: psutil.Process) -> list:
    """The supervisor's live worker processes (not multiprocessing's resource tracker, not zombies)."""
    found = []
    for c in supervisor.children():
        try:
            if c.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(c.cmdline()):
                found.append(c)
        except psutil.Error:  # gone meanwhile
            pass
    return found


def _wait_ready(url: str, proc, n_ok: int = 5, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    ok = 0
    while ok < n_ok:
        try:
            ok = ok + 1 if httpx.get(url + "/readyz", timeout=5).status_code == 200 else 0
        except httpx.TransportError:
            ok = 0
        assert proc.poll() is None and time.monotonic() < deadline, "the workers did not become ready"
        time.sleep(0.1)


def _connections_held(url: str, port: int, workers: list) -> list[int]:
    """Open 16 concurrent keep-alive connections; how many of them each worker holds."""
    clients = [httpx.Client(timeout=10) for _ in range(16)]
    barrier = threading.Barrier(16)

    def hit(c):
        barrier.wait()
        assert c.get(url + "/healthz").status_code == 200

    threads = [threading.Thread(target=hit, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    holders = [
        sum(1 for c in w.net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port)
        for w in workers
    ]
    for c in clients:
        c.close()
    return holders


@pytest.mark.skipif(not CLIP.is_file(), reason=f"corpus file {CLIP} is absent")
def test_two_workers_share_the_port_restart_and_drain(tmp_path):
    from emovox.service.testing import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with open(log, "w") as fh:  # a file, not a pipe: workers outliving a failed test cannot block it
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emovox.cli.main",
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
                "--log-level",
                "warning",
            ],
            stderr=fh,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    supervisor = psutil.Process(proc.pid)
    try:
        _wait_ready(url, proc)
        workers = _workers(supervisor)
        assert len(workers) == 2
        # 16 concurrent keep-alive clients: the kernel hands connections to both workers
        holders = _connections_held(url, port, workers)
        assert sum(holders) == 16 and min(holders) >= 1, holders
        with open(CLIP, "rb") as fh:
            r = httpx.post(url + "/v1/predict", files={"file": ("clip.flac", fh)}, timeout=60)
        assert r.status_code == 200 and r.json()["label"]
        # a worker that dies is replaced; the other answers meanwhile
        killed = workers[0].pid
        os.kill(killed, signal.SIGKILL)
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200
        deadline = time.monotonic() + 60
        while True:
            now = _workers(supervisor)
            if len(now) == 2 and killed not in {w.pid for w in now}:
                break
            assert time.monotonic() < deadline, "the dead worker was not restarted"
            time.sleep(0.2)
        # /readyz is answered by the survivor meanwhile: wait until the new worker takes connections
        while min(_connections_held(url, port, now)) == 0:
            assert time.monotonic() < deadline + 60, "the restarted worker never took a connection"
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        proc.wait(40)
    finally:
        if proc.poll() is None:
            for w in _workers(supervisor):
                w.terminate()
            proc.kill()
        proc.wait(30)
    err = log.read_text()
    assert "2 worker processes" in err
    assert proc.returncode == 0, err
    assert "exited with code -9: restarting it" in err and err.count("drained; shutting down") == 2, err
