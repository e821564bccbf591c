"""Fuzz the published OpenAPI schema with schemathesis against a real uvicorn: no 5xx, documented codes.

Bounded: a few dozen generated requests per operation (about 10 s). The
checks are ``not_a_server_error`` (the point: bad input is never a 500),
``status_code_conformance`` (every status returned is documented),
``content_type_conformance`` and ``response_schema_conformance``. Fuzzed
bodies are rarely audio, so real predictions (speech, a tone, a timeline,
a batch) are also checked against the published schema, and the schema's
enums against their sources in the library.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emovox.corpora import default_corpora_root

pytest.importorskip("fastapi")
pytest.importorskip("schemathesis")

CLIP = default_corpora_root() / "emodb" / "wav" / "03a01Wa.flac"
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
        [
            *cmd,
            "run",
            f"{server}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            "25",
            "--workers",
            "1",
            "--seed",
            "1",
            "--generation-database",
            "none",
            "--suppress-health-check",
            "all",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"},
    )
    tail = "\n".join(r.stdout.splitlines()[-40:])
    assert r.returncode == 0, tail
    assert "generated" in r.stdout


def _validator(openapi: dict, name: str):
    from jsonschema import Draft202012Validator

    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": openapi["components"]})


def _wav(y: np.ndarray) -> bytes:
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, y, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_published_schema_enumerates_reasons_and_flags(server):
    import httpx

    from emovox.audio.quality import FLAG_NAMES
    from emovox.inference.results import REASONS

    schemas = httpx.get(server + "/openapi.json").json()["components"]["schemas"]
    reason = schemas["PredictionOut"]["properties"]["reason"]["anyOf"]
    assert {"enum": list(REASONS), "type": "string"} in reason and {"type": "null"} in reason
    assert schemas["QualityOut"]["properties"]["flags"]["items"]["enum"] == list(FLAG_NAMES)
    assert {"quality", "warnings", "speech_s", "reason", "model"} <= set(schemas["PredictionOut"]["properties"])
    assert {"emotion_share", "unknown_share", "no_speech_share", "detail"} <= set(schemas["SummaryOut"]["required"])


def test_real_predictions_match_the_published_schema(server):
    import httpx

    openapi = httpx.get(server + "/openapi.json").json()
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(32000) / 16000)).astype(np.float32)
    bodies = [("tone.wav", _wav(tone))]
    if CLIP.is_file():
        bodies.append(("clip.flac", CLIP.read_bytes()))
    single, batch = _validator(openapi, "PredictionOut"), _validator(openapi, "BatchOut")
    for timeline in ("false", "true"):
        for name, data in bodies:
            r = httpx.post(f"{server}/v1/predict?timeline={timeline}", files={"file": (name, data)}, timeout=60)
            assert r.status_code == 200, r.text
            errors = [e.message for e in single.iter_errors(r.json())]
            assert not errors, (name, timeline, errors)
        r = httpx.post(
            f"{server}/v1/predict/batch?timeline={timeline}",
            files=[("files", b) for b in bodies] + [("files", ("bad.wav", b"no audio" * 40))],
            timeout=60,
        )
        assert r.status_code == 200 and not [e.message for e in batch.iter_errors(r.json())]
