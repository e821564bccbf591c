"""The REST API: every endpoint, the one prediction shape, the one error body.

Fast checks go through FastAPI's TestClient (the real app in process); the
prediction routes are also checked against a real uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from emovox.corpora import default_corpora_root

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

EMODB = default_corpora_root() / "emodb" / "wav"
CLIP = EMODB / "03a01Wa.flac"
needs_corpus = pytest.mark.skipif(not CLIP.is_file(), reason=f"corpus file {CLIP} is absent")


@pytest.fixture(scope="module")
def predictor():
    from emovox.inference import load_model

    return load_model(num_threads=1)


@pytest.fixture(scope="module")
def client(predictor):
    from fastapi.testclient import TestClient

    from emovox.service.app import create_app

    with TestClient(create_app(predictor)) as c:
        yield c


def _wav(y: np.ndarray, sr: int = 16000) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _error(response, status: int, code: str | None = None) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    if code is not None:
        assert body["error"]["code"] == code
    assert "Traceback" not in body["error"]["message"] and "/work/" not in body["error"]["message"]
    return body["error"]["message"]


# ---------------------------------------------------------------------- probes, model, metrics
def test_healthz_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    assert client.head("/healthz").status_code == 200 and client.head("/readyz").status_code == 200


def test_model_endpoint(client, predictor):
    m = client.get("/v1/model").json()
    assert m["labels"] == list(predictor.labels)
    assert m["sample_rate_hz"] == 16000 and 0 < m["threshold"] < 1 and m["temperature"] > 0
    assert m["backend"] and m["emovox_version"] and "calibration" in m and m["model_card"]
    assert m["stream"] == {"window_s": 3.0, "hop_s": 0.5, "vad": "auto"}
    assert m["limits"]["max_upload_mb"] == 25.0


def test_openapi_published_and_no_cdn_docs(client):
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/predict/batch", "/v1/model", "/healthz", "/readyz", "/metrics"} <= set(schema["paths"])
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/octet-stream"} <= set(body)
    _error(client.get("/docs"), 404, "not_found")
    _error(client.get("/redoc"), 404, "not_found")


def test_page_and_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css", "/static/pcm-worklet.js", "/static/favicon.svg"):
        assert client.get(asset).status_code == 200, asset
    assert "http://" not in page.text and "https://" not in page.text  # no CDN


# ---------------------------------------------------------------------- predictions
@needs_corpus
def test_predict_multipart_equals_library(client, predictor):
    expected = predictor.predict(CLIP).to_dict()
    r = client.post("/v1/predict", files={"file": ("clip.flac", CLIP.read_bytes(), "audio/flac")})
    assert r.status_code == 200
    assert r.json() == {"file": "clip.flac", **expected}


@needs_corpus
def test_predict_raw_body_and_timeline(client, predictor):
    r = client.post("/v1/predict", content=CLIP.read_bytes(), headers={"content-type": "audio/flac"})
    assert r.status_code == 200 and r.json()["file"] == "upload"
    assert r.json()["label"] == predictor.predict(CLIP).label
    t = client.post("/v1/predict?timeline=true", content=CLIP.read_bytes()).json()
    expected = predictor.predict_timeline(CLIP)
    assert t["timeline"] == expected.to_dict()
    assert t["label"] == expected.overall().label
    assert {"start_s", "end_s", "label", "confidence", "scores"} <= set(t)


@needs_corpus
def test_batch_gives_result_or_error_per_file(client, predictor):
    files = [("files", ("a.flac", CLIP.read_bytes())), ("files", ("/etc/secret/b.wav", b"not audio" * 50)),
             ("files", ("c.wav", _wav(np.zeros(80, np.float32))))]
    r = client.post("/v1/predict/batch", files=files)
    assert r.status_code == 200
    a, b, c = r.json()["results"]
    assert a == {"file": "a.flac", **predictor.predict(CLIP).to_dict()}
    assert b["file"] == "b.wav" and b["error"]["code"] == "invalid_audio"  # base name only
    assert c["error"]["code"] == "invalid_audio" and "shorter than" in c["error"]["message"]


def test_undecodable_and_empty_audio_is_422_with_the_gate_message(client):
    msg = _error(client.post("/v1/predict", files={"file": ("x.mp3", b"\x00garbage" * 100)}), 422, "invalid_audio")
    assert "x.mp3" in msg and "not audio" in msg
    msg = _error(client.post("/v1/predict", content=b""), 422, "invalid_audio")
    assert "no bytes" in msg
    _error(client.post("/v1/predict", content=_wav(np.zeros(160, np.float32))), 422, "invalid_audio")


def test_truncated_file_is_422(client):
    data = _wav(np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32))
    msg = _error(client.post("/v1/predict", content=data[: len(data) // 3]), 422, "invalid_audio")
    assert "trunc" in msg or "cut" in msg or "ends" in msg


def test_framework_errors_use_the_one_body(client):
    _error(client.get("/v1/nothing-here"), 404, "not_found")
    _error(client.delete("/v1/predict"), 405, "method_not_allowed")
    _error(client.post("/v1/predict?timeline=perhaps", content=b"x"), 422, "invalid_parameter")
    _error(client.post("/v1/predict", data={"note": "text only"}, files={"x": ("", b"")}), 422)
    _error(client.post("/v1/predict", files=[("file", ("a.wav", b"12")), ("file", ("b.wav", b"34"))]),
           413, "too_many_files")
    _error(client.post("/v1/predict/batch", content=b"abc"), 415, "unsupported_media_type")
    _error(client.post("/v1/predict/batch", data={"note": "no files"},
                       headers={"content-type": "multipart/form-data; boundary=x"}), 400)


def test_metrics_count_requests_by_route_and_status(client):
    client.get("/healthz")
    client.post("/v1/predict", content=b"")
    text = client.get("/metrics").text
    assert 'emovox_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'emovox_http_requests_total{method="POST",route="/v1/predict",status="422"}' in text
    assert "emovox_http_request_duration_seconds_bucket" in text and "emovox_streams_active 0.0" in text
    client.get("/no/such/path/12345")
    assert "/no/such/path" not in client.get("/metrics").text  # unmatched paths share one label


def test_unexpected_failure_is_a_json_500_without_trace(predictor, monkeypatch):
    from fastapi.testclient import TestClient

    from emovox.service.app import create_app

    app = create_app(predictor)

    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail at /srv/x.py")

    monkeypatch.setattr(predictor, "predict", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        msg = _error(c.post("/v1/predict", content=_wav(np.full(16000, 0.1, np.float32))), 500, "internal_error")
    assert "secret" not in msg and "/srv" not in msg


def test_not_ready_when_the_model_cannot_load(tmp_path):
    from fastapi.testclient import TestClient

    from emovox.service.app import create_app

    with TestClient(create_app(model_dir=str(tmp_path / "missing"))) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        _error(r, 503, "not_ready")
        assert r.headers["retry-after"] == "1"
        _error(c.post("/v1/predict", content=b"abc"), 503, "not_ready")
        assert str(tmp_path) not in r.text


@needs_corpus
def test_predict_against_a_real_server(predictor):
    from emovox.service.app import create_app
    from emovox.service.testing import serve_in_thread

    with serve_in_thread(create_app(predictor)) as url:
        with open(CLIP, "rb") as fh:
            r = httpx.post(url + "/v1/predict", files={"file": ("clip.flac", fh)}, timeout=30)
        assert r.status_code == 200 and r.json()["label"] == predictor.predict(CLIP).label
        r = httpx.post(url + "/v1/predict", content=b"\x01" * 1000, timeout=30)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_audio"
