"""One result schema (issue 18, point 3): the same columns in ``predict --csv`` and ``batch --csv``
(one ``kind`` per row), the model's name and version in every answer, one colour per emotion in the
PNG and the page (served by ``GET /v1/model``), and ``--fast``/``--model`` on every command that predicts.

Real speech throughout: EMO-DB sentences, and a recording of several of them with pauses.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_progress import EMODB, SR, emodb_recording

import emovox
from emovox.cli.main import main
from emovox.inference.records import KINDS, result_columns
from emovox.palette import PALETTE, palette_for, rgb

needs_emodb = pytest.mark.skipif(not EMODB.is_dir(), reason=f"no EMO-DB at {EMODB}")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[str]:
    """Two EMO-DB sentences and a 40 s recording of fourteen (absolute paths, as batch records them)."""
    if not EMODB.is_dir():
        pytest.skip(f"no EMO-DB at {EMODB}")
    d = tmp_path_factory.mktemp("schema")
    sf.write(d / "meeting.flac", emodb_recording(), SR)
    clips = sorted(EMODB.glob("03*.flac"))[:2]
    return [str(p) for p in clips] + [str(d / "meeting.flac")]


@pytest.fixture(scope="module")
def fast():
    return emovox.load_model("cnn", num_threads=1)


def _csv_rows(text: str) -> tuple[str, list[dict]]:
    return text.splitlines()[0], list(csv.DictReader(io.StringIO(text)))


def _same_rows(a: list[dict], b: list[dict]) -> None:
    """Row by row: text equal, numbers equal to their printed precision (threads may move the last digit)."""
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for key in ra:
            if key.startswith("score_") or key == "confidence":
                assert (ra[key] == rb[key] == "") or float(ra[key]) == pytest.approx(float(rb[key]), abs=2e-4), key
            else:
                assert ra[key] == rb[key], (key, ra[key], rb[key])


# ---------------------------------------------------------------------- one set of columns
@needs_emodb
def test_predict_csv_and_batch_csv_have_the_same_header_and_rows(inputs, fast, tmp_path, capsys):
    pytest.importorskip("ray.data")
    assert main(["predict", *inputs, "--fast", "--csv", "--timeline", "-q"]) == 0
    predict_header, predict_rows = _csv_rows(capsys.readouterr().out)
    out = tmp_path / "scores"
    assert (
        main(["batch", *inputs, "--out", str(out), "--fast", "--csv", "--timeline", "--workers", "1", "-q"]) == 0
    )  # --fast: the same small CNN as predict's
    capsys.readouterr()
    with open(out / "csv" / "part-00000.csv", newline="", encoding="utf-8") as fh:
        batch_header, batch_rows = _csv_rows(fh.read())
    # byte for byte the same header: the one result record
    assert predict_header == batch_header == ",".join(result_columns(fast.labels))
    assert predict_header.startswith(
        "file,input_index,kind,segment,start_s,end_s,label,confidence,speech_s,reason,flags,score_neutral,"
    )
    assert predict_header.endswith(",score_surprised,model,model_version,error")
    _same_rows(predict_rows, batch_rows)
    # one kind per row, documented: each input's file row, then its segments
    assert {r["kind"] for r in predict_rows} == set(KINDS)
    files = [r for r in predict_rows if r["kind"] == "file"]
    assert [(r["file"], r["input_index"]) for r in files] == [(p, str(i)) for i, p in enumerate(inputs)]
    meeting = [r for r in predict_rows if r["file"] == inputs[2]]
    assert meeting[0]["kind"] == "file" and [r["segment"] for r in meeting[1:]] == [
        str(i) for i in range(len(meeting) - 1)
    ]
    assert len(meeting) > 10
    # the Parquet part holds the same columns, typed
    import pyarrow.parquet as pq

    table = pq.read_table(out / "parquet")
    assert table.schema.names == result_columns(fast.labels)
    assert set(table.column("model").to_pylist()) == {"cnn"}
    assert set(table.column("model_version").to_pylist()) == {fast.model_version}


@needs_emodb
def test_a_folder_never_mixes_parts_of_two_formats(inputs, fast, tmp_path, capsys):
    """A part with other columns (an older emovox), or parts without a job file, stop the run: nothing is added."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from emovox.batch.job import _model_identity, run_batch
    from emovox.batch.parts import JobSpec, OutputDir, inputs_digest
    from emovox.errors import ConfigError

    out = tmp_path / "mixed"
    _, name, model_id, labels = _model_identity("cnn")
    spec = JobSpec(n_inputs=3, digest=inputs_digest(inputs), shard_size=2, model=name, model_id=model_id, labels=labels)
    with OutputDir(out) as folder:
        folder.write_job(spec, inputs)
    old = {"input_index": [0, 1], "path": inputs[:2], "label": ["sad", "angry"]}  # format 2's names
    pq.write_table(pa.table(old), out / "parquet" / "part-00000.parquet")
    with pytest.raises(
        ConfigError,
        match=r"part-00000\.parquet' has other columns than emovox-batch/3 "
        r"\(input_index, path, label, \.\.\.\): the folder mixes parts",
    ):
        run_batch(inputs, out_dir=out, model="cnn")
    assert sorted(p.name for p in (out / "parquet").iterdir()) == ["part-00000.parquet"]
    # parts but no job file: not this job's
    stray = tmp_path / "stray"
    (stray / "parquet").mkdir(parents=True)
    (out / "parquet" / "part-00000.parquet").rename(stray / "parquet" / "part-00000.parquet")
    with pytest.raises(ConfigError, match="holds part files but no _job.json"):
        run_batch(inputs, out_dir=stray, model="cnn")


# ---------------------------------------------------------------------- the model in every answer
@needs_emodb
def test_model_name_and_version_are_in_every_answer(inputs, fast, capsys):
    from fastapi.testclient import TestClient

    from emovox.service.app import create_app

    want = {"model": "cnn", "model_version": fast.model_version}
    assert fast.model_version.startswith(fast.info.config["created_utc"][:10] + "+")
    assert emovox.load_model("cnn").model_version == fast.model_version  # the same artifact, the same version
    assert emovox.load_model().model_version != fast.model_version
    # predict: JSON records (errors too) and CSV rows
    assert main(["predict", inputs[0], inputs[2], "missing.wav", "--fast", "--json", "-q"]) == 1
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 3 and all({k: r[k] for k in want} == want for r in records)
    assert "error" in records[2]
    assert main(["predict", inputs[0], inputs[2], "--fast", "--csv", "-q"]) == 0
    _, rows = _csv_rows(capsys.readouterr().out)
    assert rows and all({k: r[k] for k in want} == want for r in rows)
    # the service: predictions, batch entries, readiness, the model, the stream's ready message
    data = Path(inputs[0]).read_bytes()
    with TestClient(create_app(fast)) as client:
        for url in ("/v1/predict", "/v1/predict?timeline=true"):
            answer = client.post(url, files={"file": ("a.flac", data)}).json()
            assert {k: answer[k] for k in want} == want
        for entry in client.post("/v1/predict/batch", files=[("files", ("a.flac", data))] * 2).json()["results"]:
            assert {k: entry[k] for k in want} == want
        assert client.get("/readyz").json() == {"status": "ready", **want}
        model = client.get("/v1/model").json()
        assert (model["name"], model["version"]) == ("cnn", fast.model_version)
        with client.websocket_connect("/v1/stream") as ws:
            ws.send_text(json.dumps({"format": "pcm16", "sample_rate_hz": 16000}))
            ready = ws.receive_json()
            assert ready["type"] == "ready" and {k: ready[k] for k in want} == want
            ws.send_text(json.dumps({"type": "end"}))


@needs_emodb
def test_fast_and_model_on_listen_and_batch(inputs, fast, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "emovox.cli.main"]
    result = subprocess.run(
        [*cli, "listen", "--input", inputs[0], "--fast", "--json"], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) >= 3 and all((e["model"], e["model_version"]) == ("cnn", fast.model_version) for e in events)
    assert {e["label"] for e in events} <= {*fast.labels, "unknown", "no_speech"}
    assert all(set(e["scores"]) == set(fast.labels) for e in events if e["speech"])
    for command in (
        ["listen", "--input", inputs[0]],
        ["batch", inputs[0], "--out", str(tmp_path / "x")],
        ["predict", inputs[0]],
    ):
        both = subprocess.run(
            [*cli, *command, "--fast", "--model", "default"], capture_output=True, text=True, timeout=60, env=env
        )
        assert both.returncode == 2 and "--model: not allowed with argument --fast" in both.stderr, both.stderr
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------- one colour per emotion
#: Colour-vision deficiency simulation, full severity (Machado, Oliveira & Fernandes 2009), on linear RGB.
CVD = {
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
    "typical": np.eye(3).tolist(),
}


def _lab(srgb) -> np.ndarray:
    c = np.asarray(srgb, float)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _seen_as(colour: str, matrix) -> np.ndarray:
    c = np.asarray(rgb(colour))
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    out = np.clip(np.asarray(matrix) @ lin, 0, 1)
    return np.where(out <= 0.0031308, 12.92 * out, 1.055 * out ** (1 / 2.4) - 0.055)


def test_the_palette_stays_distinct_for_colour_blind_readers():
    assert len(set(PALETTE.values())) == len(PALETTE)
    for vision, matrix in CVD.items():
        for a, b in itertools.combinations(PALETTE, 2):
            distance = np.linalg.norm(_lab(_seen_as(PALETTE[a], matrix)) - _lab(_seen_as(PALETTE[b], matrix)))
            assert distance >= 13, (vision, a, b, distance)
    # neutral is a colour, unknown a grey: never the two greys the page had
    assert len(set(rgb(PALETTE["neutral"]))) == 3 and len(set(rgb(PALETTE["unknown"]))) == 1
    # a user's own label gets a stable colour outside the palette
    assert palette_for(["frustrated"])["frustrated"] == palette_for(["frustrated"])["frustrated"]
    assert palette_for(["frustrated"])["frustrated"] not in PALETTE.values()


def test_the_png_and_the_page_draw_with_the_same_colours(fast, tmp_path):
    from fastapi.testclient import TestClient
    from matplotlib.image import imread

    from emovox.inference import Prediction, Timeline
    from emovox.inference.timeline import plot_timeline
    from emovox.service.app import create_app

    with TestClient(create_app(fast)) as client:
        page_palette = client.get("/v1/model").json()["palette"]
    assert page_palette == palette_for(fast.labels)
    assert list(page_palette)[: len(fast.labels)] == list(fast.labels)
    assert {"unknown", "mixed", "no_speech"} <= set(page_palette)
    labels = fast.labels
    one = {k: 1.0 if k == "angry" else 0.0 for k in labels}
    segs = (
        Prediction("angry", 1.0, one, 0.0, 4.0, 4.0),
        Prediction("unknown", 0.4, {k: 1 / len(labels) for k in labels}, 4.0, 8.0, 4.0, "low_confidence"),
        Prediction("sad", 0.9, {k: 1.0 if k == "sad" else 0.0 for k in labels}, 8.0, 12.0, 4.0),
    )
    png = plot_timeline(Timeline(segs, 12.0, labels, threshold=0.3), tmp_path / "t.png")
    pixels = imread(png)[..., :3].reshape(-1, 3)

    def drawn(colour: str) -> int:
        return int((np.abs(pixels - np.asarray(rgb(colour))) < 2 / 255).all(axis=1).sum())

    for label in ("angry", "sad", "unknown"):  # the label track and the stacked bars
        assert drawn(page_palette[label]) > 2000, label
    for label in labels:  # every class in the stacked bars or the legend
        assert drawn(page_palette[label]) > 30, label
