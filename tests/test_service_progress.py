"""``POST /v1/predict?timeline=true&stream=true`` (issue 18, point 2): a long upload's timeline as
JSON lines while it is computed -- progress, each segment, then the same answer as without
``stream`` -- with the application's limits intact and a JSON error line when it fails mid-way.

The recording is real speech: EMO-DB sentences of one speaker with pauses (about 40 s).
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from test_progress import EMODB, SR, emodb_recording

import emovox
from emovox.service.app import create_app
from emovox.service.limits import Limits
from emovox.service.ndjson import MEDIA_TYPE
from emovox.service.schemas import (
    StreamErrorLine,
    StreamProgressLine,
    StreamResultLine,
    StreamSegmentLine,
    StreamStartLine,
)
from emovox.service.testing import serve_in_thread

pytestmark = pytest.mark.skipif(not EMODB.is_dir(), reason=f"no EMO-DB at {EMODB}")

STREAM = "/v1/predict?timeline=true&stream=true"
LINE_MODELS = {
    "start": StreamStartLine,
    "progress": StreamProgressLine,
    "segment": StreamSegmentLine,
    "result": StreamResultLine,
    "error": StreamErrorLine,
}


@pytest.fixture(scope="module")
def predictor():
    return emovox.load_model(num_threads=1)


@pytest.fixture(scope="module")
def meeting(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("ndjson") / "meeting.flac"
    sf.write(path, emodb_recording(), SR)
    return path.read_bytes()


@pytest.fixture(scope="module")
def client(predictor):
    from fastapi.testclient import TestClient

    with TestClient(create_app(predictor)) as c:
        yield c


def parse_lines(text: str) -> list[dict]:
    """Every line is one JSON object that matches its published schema."""
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        LINE_MODELS[line["type"]].model_validate(line)
    return lines


def test_streamed_lines_end_with_the_same_answer_as_without_stream(client, predictor, meeting):
    with client.stream("POST", STREAM, files={"file": ("meeting.flac", meeting, "audio/flac")}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == MEDIA_TYPE and r.headers["x-accel-buffering"] == "no"
        text = "".join(r.iter_text())
    lines = parse_lines(text)
    plain = client.post("/v1/predict?timeline=true", files={"file": ("meeting.flac", meeting)}).json()
    start, *middle, result = lines
    total_s = sf.info(io.BytesIO(meeting)).duration
    assert start == {
        "type": "start",
        "file": "meeting.flac",
        "model": "default",
        "model_version": predictor.model_version,
        "duration_s": round(total_s, 3),
        "labels": list(predictor.labels),
    }
    # the last line is the answer of the same request without stream=true
    assert result.pop("type") == "result" and result == plain
    assert result["model"] == "default" and result["model_version"] == predictor.model_version
    # progress in seconds of audio: from 0, never back, up to the total
    progress = [(m["done_s"], m["total_s"]) for m in middle if m["type"] == "progress"]
    assert progress[0] == (0.0, round(total_s, 3)) and progress[-1][0] == progress[-1][1] == plain["end_s"]
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    # each segment once, in order, before the end, equal to the answer's segments
    segments = [m for m in middle if m["type"] == "segment"]
    assert [m.pop("segment") for m in segments] == list(range(len(plain["timeline"]["segments"])))
    assert [{k: v for k, v in m.items() if k != "type"} for m in segments] == plain["timeline"]["segments"]
    assert len(segments) >= 10
    # segments arrive while the analysis goes on, between progress lines, not all after it
    kinds = [m["type"] for m in middle]
    assert kinds.index("segment") < len(kinds) - 1 - kinds[::-1].index("progress")


def test_lines_reach_a_real_client_while_the_analysis_runs(predictor, meeting):
    """Through uvicorn: the first line arrives on its own, long before the result (no buffering)."""
    with serve_in_thread(create_app(predictor)) as url:
        with httpx.stream("POST", url + STREAM, files={"file": ("meeting.flac", meeting)}, timeout=60) as r:
            assert r.status_code == 200 and r.headers["transfer-encoding"] == "chunked"
            arrivals = []
            for chunk in r.iter_raw():
                arrivals.append((time.monotonic(), chunk.decode()))
    first_at, first = arrivals[0]
    assert '"type": "start"' in first and '"type": "result"' not in first
    result_at = next(t for t, chunk in arrivals if '"type": "result"' in chunk)
    assert len(arrivals) > 3 and result_at > first_at
    lines = parse_lines("".join(chunk for _, chunk in arrivals))
    assert lines[-1]["type"] == "result"


def test_limits_are_refused_before_any_line_with_the_json_error_body(predictor, meeting):
    from fastapi.testclient import TestClient

    def refused(r, status, code):
        assert r.status_code == status and r.headers["content-type"] == "application/json", r.text
        assert r.json()["error"]["code"] == code
        return r.json()["error"]["message"]

    with TestClient(create_app(predictor, limits=Limits(max_upload_mb=0.2, max_audio_s=20))) as c:
        refused(c.post(STREAM, files={"file": ("m.flac", meeting)}), 413, "payload_too_large")
        short = meeting[:0]
    with TestClient(create_app(predictor, limits=Limits(max_audio_s=20))) as c:
        msg = refused(c.post(STREAM, files={"file": ("m.flac", meeting)}), 413, "audio_too_long")
        assert "longer than the limit of 20 s" in msg
        refused(c.post(STREAM, files={"file": ("x.flac", b"\x00garbage" * 100)}), 422, "invalid_audio")
        refused(c.post(STREAM, content=short), 422, "missing_file")
        refused(c.post("/v1/predict?stream=true", files={"file": ("m.flac", meeting)}), 422, "invalid_parameter")
        msg = refused(c.post(STREAM + "&format=srt", files={"file": ("m.flac", meeting)}), 422, "invalid_parameter")
        assert "choose one" in msg
        assert c.app.state.emovox.requests_gate.active == 0


def test_the_stream_holds_its_concurrency_slot_and_gives_it_back(predictor, meeting):
    app = create_app(predictor, limits=Limits(max_concurrent_requests=1))
    state = app.state.emovox
    gate = state.requests_gate
    outcomes: list[str] = []  # how each piece of model work on the worker threads ended
    run_prediction = state.run_prediction

    async def recorded(fn, *args, **kwargs):
        try:
            result = await run_prediction(fn, *args, **kwargs)
        except BaseException as error:
            outcomes.append(type(error).__name__)
            raise
        outcomes.append("done")
        return result

    state.run_prediction = recorded
    with serve_in_thread(app) as url:
        with httpx.stream("POST", url + STREAM, files={"file": ("meeting.flac", meeting)}, timeout=60) as r:
            lines = r.iter_lines()
            assert json.loads(next(lines))["type"] == "start"
            busy = httpx.post(url + "/v1/predict", files={"file": ("m.flac", meeting)}, timeout=30)
            assert busy.status_code == 503 and busy.json()["error"]["code"] == "busy"
            assert busy.headers["retry-after"] == "1"
            rest = [json.loads(line) for line in lines if line]
        assert rest[-1]["type"] == "result" and gate.active == 0
        assert httpx.post(url + "/v1/predict", files={"file": ("m.flac", meeting)}, timeout=60).status_code == 200
        # a client that leaves mid-stream: the slot comes back and the analysis stops at its next step
        outcomes.clear()
        with httpx.stream("POST", url + STREAM, files={"file": ("meeting.flac", meeting)}, timeout=60) as r:
            assert json.loads(next(r.iter_lines()))["type"] == "start"
        deadline = time.monotonic() + 10
        while (gate.active or len(outcomes) < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gate.active == 0
        assert outcomes == ["done", "_ClientGone"]  # the duration check, then the timeline, stopped
        assert httpx.post(url + "/v1/predict", files={"file": ("m.flac", meeting)}, timeout=60).status_code == 200


def test_a_file_damaged_mid_way_ends_the_stream_with_a_json_error_line(client, meeting):
    """The header is sound (so the answer starts), the data breaks at 85 %: the segments before the damage,
    then one error line saying what is wrong, never a cut body or a 500."""
    damaged = bytearray(meeting)
    at = int(len(damaged) * 0.85)
    damaged[at : at + 4000] = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    with client.stream("POST", STREAM, files={"file": ("meeting.flac", bytes(damaged))}) as r:
        assert r.status_code == 200
        lines = parse_lines("".join(r.iter_text()))
    assert lines[0]["type"] == "start" and lines[-1]["type"] == "error"
    assert sum(m["type"] == "segment" for m in lines) >= 5  # what came before the damage was sent
    error = lines[-1]["error"]
    assert error["code"] == "invalid_audio"
    assert error["message"].startswith("meeting.flac: the file ends early: a truncated or damaged FLAC file")
    # the same upload without stream=true: the same message, as a 422
    plain = client.post("/v1/predict?timeline=true", files={"file": ("meeting.flac", bytes(damaged))})
    assert plain.status_code == 422 and plain.json()["error"] == error
    assert client.app.state.emovox.requests_gate.active == 0


def test_openapi_documents_stream_and_its_media_type(client):
    op = client.get("/openapi.json").json()["paths"]["/v1/predict"]["post"]
    assert "stream" in {p["name"] for p in op["parameters"]}
    assert MEDIA_TYPE in op["responses"]["200"]["content"]
