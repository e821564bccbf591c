"""Fuzz the published OpenAPI schema with schemathesis against a real uvicorn: no 5xx, documented codes.

Bounded: a few dozen generated requests per operation (about 10 s). The
checks are ``not_a_server_error`` (the point: bad input is never a 500),
``status_code_conformance`` (every status returned is documented),
``content_type_conformance`` and ``response_schema_conformance``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("schemathesis")

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def server():
    from emovox.inference import load_model
    from emovox.service.app import create_app
    from emovox.service.testing import serve_in_thread

    with serve_in_thread(create_app(load_model(num_threads=1))) as url:
        yield url


def test_schemathesis_finds_no_server_error(server, tmp_path):
    exe = Path(sys.executable).with_name("schemathesis")
    cmd = [str(exe)] if exe.exists() else [shutil.which("schemathesis") or "schemathesis"]
    r = subprocess.run(
        [*cmd, "run", f"{server}/openapi.json", "--checks", CHECKS, "--max-examples", "25", "--workers", "1",
         "--seed", "1", "--generation-database", "none", "--suppress-health-check", "all"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"},
    )
    tail = "\n".join(r.stdout.splitlines()[-40:])
    assert r.returncode == 0, tail
    assert "generated" in r.stdout
