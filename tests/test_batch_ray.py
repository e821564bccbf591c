"""``emovox batch`` end to end on embedded Ray: part files, CSV, error rows, timelines, progress.

One Ray is started for the module (its start-up is the slow part); the CLI
runs in-process against it. The kill-and-resume test is in test_batch_kill.py.
"""

from __future__ import annotations

import csv
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

pytest.importorskip("ray.data")

from emovox.batch import read_results, result_schema
from emovox.batch.ray_job import start_ray, stop_ray
from emovox.cli.main import main
from emovox.corpora import default_corpora_root
from emovox.export import export_onnx
from emovox.inference import load_model

from test_inference import LABELS, make_artifact
from test_vad import SR, bursts


@pytest.fixture(scope="module")
def ray_session():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    start_ray(num_cpus=2)
    yield
    stop_ray()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    art = make_artifact(tmp_path_factory.mktemp("batch-ray-model") / "art")
    export_onnx(art, art)
    return art


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Seven readable clips and one corrupt file, in a folder."""
    d = tmp_path_factory.mktemp("clips")
    for i in range(7):
        y = bursts(seed=i, n=1)[0][: 2 * SR]
        sf.write(d / f"clip{i}.flac", y, SR)
    (d / "clip3-corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 7)
    return d


def test_parts_csv_error_rows_and_summary(ray_session, model_dir, clips, tmp_path, capsys):
    out = tmp_path / "scores"
    rc = main(["batch", str(clips), "--out", str(out), "--model", str(model_dir), "--csv",
               "--shard-size", "3", "--workers", "2"])
    err = capsys.readouterr().err
    assert rc == 1  # the corrupt file failed; the others are scored
    assert "emovox batch: 8/8 files (100 %)" in err  # progress
    assert err.strip().splitlines()[-1].startswith("emovox batch: 8 files, 1 failed, ")
    assert "clips/s -> " in err and "Traceback" not in err
    parts = sorted(p.name for p in (out / "parquet").iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    table = read_results(out)
    assert table.schema == result_schema(LABELS)
    assert pq.read_table(out / "parquet").num_rows == 8  # plain pyarrow reads the folder too
    rows = table.to_pylist()
    assert [r["input_index"] for r in rows] == list(range(8))
    assert [os.path.basename(r["path"]) for r in rows] == sorted(p.name for p in clips.iterdir())
    bad = [r for r in rows if r["error"]]
    assert len(bad) == 1 and bad[0]["path"].endswith("clip3-corrupt.wav") and bad[0]["label"] is None
    # the scores are exactly what the predictor gives in-process
    predictor = load_model(model_dir, backend="onnx")
    for r in rows:
        if not r["error"]:
            p = predictor.predict(r["path"])
            assert r["label"] == p.label and r["confidence"] == pytest.approx(p.confidence, abs=1e-6)
            assert r["end_s"] == pytest.approx(2.0, abs=1e-3)
    # CSV parts hold the same rows
    with open(out / "csv" / "part-00001.csv", newline="") as fh:
        got = list(csv.DictReader(fh))
    assert list(got[0]) == table.schema.names
    assert [int(g["input_index"]) for g in got] == [3, 4, 5]
    assert [g["path"] for g in got] == [r["path"] for r in rows[3:6]]
    assert not [p for p in out.rglob(".*.tmp")]


def test_timeline_rows_per_segment(ray_session, model_dir, tmp_path, capsys):
    long, _ = bursts(seed=0, n=4)
    sf.write(tmp_path / "long.flac", long, SR)
    sf.write(tmp_path / "silence.wav", np.zeros(SR, np.float32), SR)
    out = tmp_path / "tl"
    rc = main(["batch", str(tmp_path / "long.flac"), str(tmp_path / "silence.wav"), "--out", str(out),
               "--model", str(model_dir), "--timeline", "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1  # quiet: the summary only
    rows = read_results(out).to_pylist()
    want = load_model(model_dir, backend="onnx").predict_timeline(str(tmp_path / "long.flac")).segments
    segs = [r for r in rows if r["input_index"] == 0]
    assert len(segs) == len(want) >= 1
    assert [(r["start_s"], r["end_s"]) for r in segs] == [(round(s.start_s, 3), round(s.end_s, 3)) for s in want]
    assert [r["error"] for r in rows if r["input_index"] == 1] == ["no speech found"]


@pytest.mark.skipif(not (default_corpora_root() / "ravdess").is_dir(), reason="RAVDESS not available")
def test_real_corpus_glob_with_shipped_model(ray_session, tmp_path, capsys):
    """A glob over real RAVDESS clips, the shipped small CNN by name, two threads for one worker."""
    root = default_corpora_root() / "ravdess" / "Audio_Speech_Actors_01-24"
    out = tmp_path / "ravdess"
    rc = main(["batch", f"{root}/Actor_01/03-01-0[15]-*.flac", "--out", str(out), "--model", "cnn",
               "--workers", "1", "--threads-per-worker", "2", "-q"])
    assert rc == 0, capsys.readouterr().err
    table = read_results(out)
    labels = load_model("cnn", backend="onnx").labels
    assert table.num_rows == 12  # 4 neutral + 8 angry clips of actor 1
    assert table.schema.names[6:-1] == [f"score_{k}" for k in labels]
    assert set(table.column("label").to_pylist()) <= set(labels) | {"unknown"}
    assert table.column("error").null_count == 12
