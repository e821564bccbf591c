"""``emovox predict``: files, folders, globs, stdin; table/JSON/CSV; per-file errors and exit codes."""

from __future__ import annotations

import csv
import io
import json
import sys

import numpy as np
import pytest
import soundfile as sf

from emovox.cli.main import main
from emovox.export import export_onnx

from test_inference import LABELS, make_artifact
from test_vad import SR, bursts


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    art = make_artifact(base / "art")
    export_onnx(art, art)  # torch weights and model.onnx side by side, like the bundled model
    return art


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    y = bursts(seed=4, n=1)[0][: 3 * SR]
    (d / "sub").mkdir()
    sf.write(d / "a.wav", y, SR)
    sf.write(d / "sub" / "b.flac", y[::-1].copy(), SR)
    (d / "sub" / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 7)
    (d / "notes.txt").write_text("not audio, ignored in folders")
    long, _ = bursts(seed=0, n=4)
    sf.write(d / "long.flac", long, SR)
    return d


def run(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_folder_with_a_corrupt_file_predicts_the_good_ones_and_exits_1(model_dir, audio, capsys):
    rc, out, err = run(["predict", "--model", str(model_dir), "--json", "-q", str(audio / "sub"),
                        str(audio / "a.wav")], capsys)
    assert rc == 1
    records = json.loads(out)
    by_file = {r["file"]: r for r in records}
    good = str(audio / "sub" / "b.flac")
    bad = str(audio / "sub" / "corrupt.wav")
    assert by_file[good]["label"] in (*LABELS, "unknown")
    assert by_file[str(audio / "a.wav")]["confidence"] > 0
    assert "error" in by_file[bad] and "label" not in by_file[bad]
    error_lines = [line for line in err.splitlines() if line.startswith("emovox: error:")]
    assert len(error_lines) == 1 and bad in error_lines[0]


def test_json_records_have_the_prediction_shape_and_top_k(model_dir, audio, capsys):
    rc, out, _ = run(["predict", "--model", str(model_dir), "--json", "--top-k", "2",
                      str(audio / "a.wav")], capsys)
    assert rc == 0
    [record] = json.loads(out)
    assert list(record) == ["file", "start_s", "end_s", "label", "confidence", "scores"]
    assert len(record["scores"]) == 2
    assert record["end_s"] == pytest.approx(3.0, abs=1e-3)


def test_csv_has_one_row_per_prediction_and_all_scores(model_dir, audio, capsys):
    rc, out, _ = run(["predict", "--model", str(model_dir), "--csv", "--vad", "webrtc",
                      str(audio / "**" / "*.flac")], capsys)
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert set(rows[0]) == {"file", "segment", "start_s", "end_s", "label", "confidence", "error",
                            *[f"p_{k}" for k in LABELS]}
    files = {r["file"] for r in rows}
    assert files == {str(audio / "sub" / "b.flac"), str(audio / "long.flac")}
    # the long file is a timeline: an overall row plus one row per segment
    long_rows = [r for r in rows if r["file"].endswith("long.flac")]
    assert long_rows[0]["segment"] == "" and len(long_rows) >= 5
    for r in rows:
        assert sum(float(r[f"p_{k}"]) for k in LABELS) == pytest.approx(1.0, abs=1e-3)


def test_table_and_stdin(model_dir, audio, capsys, monkeypatch):
    data = (audio / "a.wav").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    rc, out, err = run(["predict", "--model", str(model_dir), "--backend", "onnx", "-"], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["file", "start_s", "end_s", "label", "conf"]
    assert lines[1].startswith("<stdin>")
    rc, out, _ = run(["predict", "--model", str(model_dir), str(audio / "a.wav")], capsys)
    assert out.splitlines()[1].split()[3] in (*LABELS, "unknown")


def test_long_file_becomes_a_timeline_with_png_and_atomic_output(model_dir, audio, tmp_path, capsys):
    out_json = tmp_path / "out" / "result.json"
    png = tmp_path / "tl.png"
    rc, out, err = run(["predict", "--model", str(model_dir), "--json", "--vad", "webrtc",
                        "-o", str(out_json), "--timeline-png", str(png), str(audio / "long.flac")],
                       capsys)
    assert rc == 0, err
    assert out == ""
    [record] = json.loads(out_json.read_text())
    timeline = record["timeline"]
    assert record["end_s"] == pytest.approx(timeline["duration_s"])
    assert timeline["summary"]["dominant"] in (*LABELS, "unknown")
    assert len(timeline["segments"]) >= 4
    assert {"start_s", "end_s", "label", "confidence", "scores"} == set(timeline["segments"][0])
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in out_json.parent.iterdir()] == ["result.json"]


def test_usage_and_model_errors_exit_2_without_writing_output(audio, tmp_path, capsys, monkeypatch):
    import emovox.inference.predictor as predictor_module

    monkeypatch.setattr(predictor_module, "default_model_dir", lambda: tmp_path / "missing")
    out_file = tmp_path / "never.json"
    rc, _, err = run(["predict", "--json", "-o", str(out_file), str(audio / "a.wav")], capsys)
    assert rc == 2 and "no bundled model" in err
    monkeypatch.undo()
    assert not out_file.exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--json", "--csv", str(audio / "a.wav")])
    assert exit_info.value.code == 2
    rc, _, err = run(["predict", "--model", str(tmp_path), str(audio / "a.wav")], capsys)
    assert rc == 2 and "config.json" in err


def test_missing_inputs_are_per_file_errors(model_dir, audio, capsys):
    rc, out, err = run(["predict", "--model", str(model_dir), "--json", str(audio / "a.wav"),
                        str(audio / "nope.wav"), str(audio / "*.mp3")], capsys)
    assert rc == 1
    records = json.loads(out)
    assert [("error" in r) for r in records] == [False, True, True]
    assert "nope.wav" in err and "matches no files" in err
