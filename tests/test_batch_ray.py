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

from test_inference import LABELS, make_artifact
from test_vad import SR, bursts

import emovox
from emovox.audio import load_audio
from emovox.batch import read_results, result_schema
from emovox.batch.ray_job import start_ray, stop_ray
from emovox.cli.main import main
from emovox.corpora import default_corpora_root
from emovox.export import export_onnx
from emovox.inference import load_model
from emovox.inference.gate import NO_SPEECH_S

#: Synthetic speech shipped with emovox (always present).
HELLO = os.path.join(os.path.dirname(emovox.__file__), "examples", "hello.flac")


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
    """Seven readable clips (six of speech, one tone) and one corrupt file, in a folder."""
    d = tmp_path_factory.mktemp("clips")
    speech = load_audio(HELLO)
    for i in range(6):
        start = int(i * 0.5 * SR)
        sf.write(d / f"clip{i}.flac", speech[start : start + 2 * SR], SR)
    t = np.arange(2 * SR) / SR
    sf.write(d / "clip6-tone.flac", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR)
    (d / "clip3-corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 7)
    return d


def test_parts_csv_error_rows_and_summary(ray_session, model_dir, clips, tmp_path, capsys):
    out = tmp_path / "scores"
    rc = main(
        [
            "batch",
            str(clips),
            "--out",
            str(out),
            "--model",
            str(model_dir),
            "--csv",
            "--shard-size",
            "3",
            "--workers",
            "2",
        ]
    )
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
    assert [os.path.basename(r["file"]) for r in rows] == sorted(p.name for p in clips.iterdir())
    assert {(r["kind"], r["model"]) for r in rows} == {("file", model_dir.name)}
    bad = [r for r in rows if r["error"]]
    assert len(bad) == 1 and bad[0]["file"].endswith("clip3-corrupt.wav") and bad[0]["label"] is None
    # the scores are exactly what the predictor gives in-process
    predictor = load_model(model_dir, backend="onnx")
    for r in rows:
        if not r["error"]:
            p = predictor.predict(r["file"])
            assert r["label"] == p.label and r["confidence"] == pytest.approx(p.confidence, abs=1e-6)
            assert (r["speech_s"], r["reason"], r["flags"]) == (round(p.speech_s, 3), p.reason, ";".join(p.flags))
            assert r["end_s"] == pytest.approx(2.0, abs=1e-3)
    [tone] = [r for r in rows if r["file"].endswith("clip6-tone.flac")]
    assert (tone["label"], tone["reason"], tone["error"]) == ("no_speech", "no_speech", None)
    assert all(tone[f"score_{k}"] is None for k in LABELS)
    assert sum(r["label"] == "no_speech" for r in rows) == 1  # the speech clips reach the model
    # CSV parts hold the same rows
    with open(out / "csv" / "part-00001.csv", newline="") as fh:
        got = list(csv.DictReader(fh))
    assert list(got[0]) == table.schema.names
    assert [int(g["input_index"]) for g in got] == [3, 4, 5]
    assert [g["file"] for g in got] == [r["file"] for r in rows[3:6]]
    with open(out / "csv" / "part-00002.csv", newline="") as fh:
        [*_, tone_csv] = list(csv.DictReader(fh))
    assert tone_csv["label"] == "no_speech" and all(tone_csv[f"score_{k}"] == "" for k in LABELS)
    assert not list(out.rglob(".*.tmp"))


def test_timeline_rows_per_segment(ray_session, model_dir, tmp_path, capsys):
    long, _ = bursts(seed=0, n=4)
    sf.write(tmp_path / "long.flac", long, SR)
    sf.write(tmp_path / "silence.wav", np.zeros(SR, np.float32), SR)
    out = tmp_path / "tl"
    rc = main(
        [
            "batch",
            str(tmp_path / "long.flac"),
            str(tmp_path / "silence.wav"),
            "--out",
            str(out),
            "--model",
            str(model_dir),
            "--timeline",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0 and len(err.strip().splitlines()) == 1  # quiet: the summary only
    assert ", 0 failed, " in err  # a recording without speech is an answer, not a failure
    rows = read_results(out).to_pylist()
    timeline = load_model(model_dir, backend="onnx").predict_timeline(str(tmp_path / "long.flac"))
    want = timeline.segments
    head, *segs = [r for r in rows if r["input_index"] == 0]
    assert (head["kind"], head["label"], head["end_s"]) == (
        "file",
        timeline.overall().label,
        round(timeline.duration_s, 3),
    )
    assert [r["kind"] for r in segs] == ["segment"] * len(segs)
    assert len(segs) == len(want) >= 1
    assert [(r["start_s"], r["end_s"]) for r in segs] == [(round(s.start_s, 3), round(s.end_s, 3)) for s in want]
    assert [(r["speech_s"], r["reason"]) for r in segs] == [(round(s.speech_s, 3), s.reason) for s in want]
    [silent] = [r for r in rows if r["input_index"] == 1]  # no speech: the file row only
    assert (silent["kind"], silent["label"], silent["reason"], silent["error"]) == (
        "file",
        "no_speech",
        "no_speech",
        None,
    )
    assert (silent["start_s"], silent["end_s"]) == (0.0, 1.0)


@pytest.mark.skipif(not (default_corpora_root() / "ravdess").is_dir(), reason="RAVDESS not available")
def test_real_corpus_glob_with_shipped_model(ray_session, tmp_path, capsys):
    """A glob over real RAVDESS clips, the shipped small CNN by name, two threads for one worker."""
    root = default_corpora_root() / "ravdess" / "Audio_Speech_Actors_01-24"
    out = tmp_path / "ravdess"
    rc = main(
        [
            "batch",
            f"{root}/Actor_01/03-01-0[15]-*.flac",
            "--out",
            str(out),
            "--model",
            "cnn",
            "--workers",
            "1",
            "--threads-per-worker",
            "2",
            "-q",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    table = read_results(out)
    labels = load_model("cnn", backend="onnx").labels
    assert table.num_rows == 12  # 4 neutral + 8 angry clips of actor 1
    assert table.schema.names[11:-3] == [f"score_{k}" for k in labels]
    assert set(table.column("model").to_pylist()) == {"cnn"}
    assert set(table.column("label").to_pylist()) <= set(labels) | {"unknown"}  # every clip holds speech
    assert all(s > NO_SPEECH_S for s in table.column("speech_s").to_pylist())
    assert table.column("error").null_count == 12
