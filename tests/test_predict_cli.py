"""``emovox predict``: files, folders, globs, stdin; table/JSON/CSV; per-file errors and exit codes;
how each output shows the speech gate (``no_speech``, ``unknown`` and its reason), the seconds of
speech, the quality flags and warnings, and a timeline's summary by shares."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_inference import LABELS, make_artifact
from test_vad import SR, bursts

import emovox
from emovox.audio import load_audio, resample
from emovox.cli.main import main
from emovox.corpora import default_corpora_root
from emovox.export import export_onnx
from emovox.inference import Prediction, Timeline
from emovox.inference.gate import NO_SPEECH_S
from emovox.inference.timeline import plot_timeline, summary_text

#: Synthetic speech shipped with emovox (eSpeak NG, 16 kHz, 5.4 s): always present.
HELLO = Path(emovox.__file__).parent / "examples" / "hello.flac"
RAVDESS_CLIP = default_corpora_root() / "ravdess/Audio_Speech_Actors_01-24/Actor_01/03-01-05-02-01-01-01.flac"
CSV_HEADER = [
    "file",
    "input_index",
    "kind",
    "segment",
    "start_s",
    "end_s",
    "label",
    "confidence",
    "speech_s",
    "reason",
    "flags",
    *[f"score_{k}" for k in LABELS],
    "model",
    "model_version",
    "error",
]
NON_ANSWERS = ("unknown", "no_speech")


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
    rc, out, err = run(
        ["predict", "--model", str(model_dir), "--json", "-q", str(audio / "sub"), str(audio / "a.wav")], capsys
    )
    assert rc == 1
    records = json.loads(out)
    by_file = {r["file"]: r for r in records}
    good = str(audio / "sub" / "b.flac")
    bad = str(audio / "sub" / "corrupt.wav")
    assert by_file[good]["label"] in (*LABELS, *NON_ANSWERS)
    assert by_file[str(audio / "a.wav")]["confidence"] > 0
    assert "error" in by_file[bad] and "label" not in by_file[bad]
    error_lines = [line for line in err.splitlines() if line.startswith("emovox: error:")]
    assert len(error_lines) == 1 and bad in error_lines[0]


def test_json_records_have_the_prediction_shape_and_top_k(model_dir, audio, capsys):
    rc, out, _ = run(["predict", "--model", str(model_dir), "--json", "--top-k", "2", str(audio / "a.wav")], capsys)
    assert rc == 0
    [record] = json.loads(out)
    assert list(record) == [
        "file",
        "model",
        "model_version",
        "start_s",
        "end_s",
        "label",
        "confidence",
        "scores",
        "speech_s",
        "reason",
        "quality",
        "warnings",
    ]
    assert record["model"] == model_dir.name and record["model_version"]
    assert len(record["scores"]) == 2
    assert record["end_s"] == pytest.approx(3.0, abs=1e-3)
    assert 0 <= record["speech_s"] <= record["end_s"]
    assert set(record["quality"]) == {"flags", "bandwidth_hz", "clipped_share", "snr_db", "level_dbfs"}


def test_csv_has_one_row_per_prediction_and_all_scores(model_dir, audio, capsys):
    rc, out, _ = run(
        ["predict", "--model", str(model_dir), "--csv", "--vad", "webrtc", str(audio / "**" / "*.flac")], capsys
    )
    assert rc == 0
    assert out.splitlines()[0].split(",") == CSV_HEADER
    rows = list(csv.DictReader(io.StringIO(out)))
    files = {r["file"] for r in rows}
    assert files == {str(audio / "sub" / "b.flac"), str(audio / "long.flac")}
    # the long file is a timeline: its file row, then one segment row per segment (every one, not merged)
    long_rows = [r for r in rows if r["file"].endswith("long.flac")]
    assert (long_rows[0]["kind"], long_rows[0]["segment"]) == ("file", "") and len(long_rows) >= 5
    assert [r["kind"] for r in long_rows[1:]] == ["segment"] * (len(long_rows) - 1)
    assert [r["segment"] for r in long_rows[1:]] == [str(i) for i in range(len(long_rows) - 1)]
    assert [r["input_index"] for r in rows if r["kind"] == "file"] == ["0", "1"]
    for r in rows:
        if r["label"] == "no_speech":
            assert all(r[f"score_{k}"] == "" for k in LABELS)
        else:
            assert sum(float(r[f"score_{k}"]) for k in LABELS) == pytest.approx(1.0, abs=1e-3)
        assert 0 <= float(r["speech_s"]) <= float(r["end_s"]) - float(r["start_s"]) + 0.1  # a frame over
        assert (r["reason"] == "") == (r["label"] in LABELS)


def test_table_and_stdin(model_dir, audio, capsys, monkeypatch):
    data = (audio / "a.wav").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    rc, out, err = run(["predict", "--model", str(model_dir), "--backend", "onnx", "-"], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["file", "start_s", "end_s", "speech_s", "label", "conf", "scores"]
    assert lines[1].startswith("<stdin>")
    rc, out, _ = run(["predict", "--model", str(model_dir), str(audio / "a.wav")], capsys)
    assert out.splitlines()[1].split()[4] in (*LABELS, *NON_ANSWERS)


def test_long_file_becomes_a_timeline_with_png_and_atomic_output(model_dir, audio, tmp_path, capsys):
    out_json = tmp_path / "out" / "result.json"
    png = tmp_path / "tl.png"
    rc, out, err = run(
        [
            "predict",
            "--model",
            str(model_dir),
            "--json",
            "--vad",
            "webrtc",
            "-o",
            str(out_json),
            "--timeline-png",
            str(png),
            str(audio / "long.flac"),
        ],
        capsys,
    )
    assert rc == 0, err
    assert out == ""
    [record] = json.loads(out_json.read_text())
    timeline = record["timeline"]
    assert record["end_s"] == pytest.approx(timeline["duration_s"])
    assert record["label"] == timeline["summary"]["label"] in (*LABELS, "mixed", *NON_ANSWERS)
    assert len(timeline["segments"]) >= 4
    assert {"start_s", "end_s", "label", "confidence", "scores", "speech_s", "reason", "quality", "warnings"} == set(
        timeline["segments"][0]
    )
    assert 1 <= len(timeline["merged"]) <= len(timeline["segments"])
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in out_json.parent.iterdir()] == ["result.json"]


def test_usage_and_model_errors_exit_2_without_writing_output(audio, tmp_path, capsys, monkeypatch):
    import emovox.inference.locate as locate_module

    monkeypatch.setattr(locate_module, "default_model_dir", lambda: tmp_path / "missing")
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
    rc, out, err = run(
        [
            "predict",
            "--model",
            str(model_dir),
            "--json",
            str(audio / "a.wav"),
            str(audio / "nope.wav"),
            str(audio / "*.mp3"),
        ],
        capsys,
    )
    assert rc == 1
    records = json.loads(out)
    assert [("error" in r) for r in records] == [False, True, True]
    assert "nope.wav" in err and "matches no files" in err


# ---------------------------------------------------------------------- the speech gate and quality, shown
@pytest.fixture(scope="module")
def non_speech(tmp_path_factory):
    """A 440 Hz tone and white noise, 3 s each: clearly not speech."""
    d = tmp_path_factory.mktemp("non-speech")
    rng = np.random.default_rng(7)
    t = np.arange(3 * SR) / SR
    sf.write(d / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR)
    sf.write(d / "noise.wav", (0.1 * rng.standard_normal(3 * SR)).astype(np.float32), SR)
    return [d / "tone.wav", d / "noise.wav"]


def test_tone_and_noise_answer_no_speech_in_every_format(model_dir, non_speech, capsys, monkeypatch):
    monkeypatch.chdir(non_speech[0].parent)  # short names: the table shows them whole
    files = [p.name for p in non_speech]
    rc, out, err = run(["predict", "--model", str(model_dir), "--json", *files], capsys)
    assert rc == 0, err
    for record in json.loads(out):
        assert (record["label"], record["confidence"], record["scores"], record["reason"]) == (
            "no_speech",
            0.0,
            {},
            "no_speech",
        )
        assert record["speech_s"] < NO_SPEECH_S and record["quality"] is not None
    rc, out, err = run(["predict", "--model", str(model_dir), "--csv", *files], capsys)
    assert rc == 0, err
    assert out.splitlines()[0].split(",") == CSV_HEADER
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["file"] for r in rows] == files
    for r in rows:
        assert (r["label"], r["reason"], r["error"], r["kind"], r["segment"]) == (
            "no_speech",
            "no_speech",
            "",
            "file",
            "",
        )
        assert float(r["confidence"]) == 0.0 and float(r["speech_s"]) < NO_SPEECH_S
        assert [r[f"score_{k}"] for k in LABELS] == [""] * len(LABELS)  # no scores: the model did not run
    rc, out, err = run(["predict", "--model", str(model_dir), *files], capsys)
    assert rc == 0, err
    for line, name in zip(out.splitlines()[1:], files):
        words = line.split()
        assert words[0] == name and words[4] == "no_speech" and float(words[5]) == 0.0
        assert words[6] == "-"  # a dash where the scores would be
    # as a timeline: no segments, the summary says so
    rc, out, err = run(["predict", "--model", str(model_dir), "--timeline", files[1]], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[1].split()[4] == "no_speech" and not any("└" in line for line in lines)
    assert lines[-1] == f"  = {files[1]}: no_speech (no speech was found in 3.0 s)"
    rc, out, _ = run(["predict", "--model", str(model_dir), "--timeline", "--csv", files[1]], capsys)
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert row["label"] == "no_speech" and row["score_neutral"] == "" and row["kind"] == "file"


NARROWBAND_SOURCES = [
    pytest.param(HELLO, id="hello-synthetic"),
    pytest.param(
        RAVDESS_CLIP,
        id="ravdess",
        marks=[
            pytest.mark.skipif(not RAVDESS_CLIP.is_file(), reason=f"no RAVDESS clip at {RAVDESS_CLIP}"),
            pytest.mark.corpora,
        ],
    ),
]


@pytest.mark.parametrize("source", NARROWBAND_SOURCES)
def test_speech_recorded_at_8_khz_is_flagged_narrowband(source, model_dir, tmp_path, capsys):
    """Speech through a telephone-band channel (8 kHz file): the flag and its warning in every format;
    the same speech at 16 kHz is not flagged."""
    y = load_audio(source)
    sf.write(tmp_path / "wide.wav", y, SR)
    sf.write(tmp_path / "phone.wav", resample(y, orig_hz=SR, target_hz=8000), 8000)
    wide, phone = str(tmp_path / "wide.wav"), str(tmp_path / "phone.wav")
    rc, out, err = run(["predict", "--model", str(model_dir), "--json", wide, phone], capsys)
    assert rc == 0, err
    by_file = {r["file"]: r for r in json.loads(out)}
    assert "narrowband" not in by_file[wide]["quality"]["flags"]
    assert "narrowband" in by_file[phone]["quality"]["flags"]
    assert by_file[phone]["quality"]["bandwidth_hz"] <= 4600
    assert by_file[phone]["label"] != "no_speech" and by_file[phone]["speech_s"] > NO_SPEECH_S
    assert any("narrowband" in w for w in by_file[phone]["warnings"])  # the test model was measured on wideband only
    rc, out, _ = run(["predict", "--model", str(model_dir), "--csv", wide, phone], capsys)
    flags = {r["file"]: r["flags"].split(";") for r in csv.DictReader(io.StringIO(out))}
    assert "narrowband" in flags[phone] and "narrowband" not in flags[wide]
    rc, out, _ = run(["predict", "--model", str(model_dir), phone], capsys)
    row, *warnings = out.splitlines()[1:]
    assert re.search(r"\[(\w+, )*narrowband(, \w+)*\]$", row), row
    assert warnings and all(w.startswith("    warning: ") for w in warnings)
    assert any("narrowband audio" in w for w in warnings)


def test_timeline_table_shows_merged_segments_and_describes_shares(model_dir, tmp_path, capsys, monkeypatch):
    """Speech, pauses, speech: the summary line gives the shares of speech that the JSON summary holds."""
    hello = load_audio(HELLO)
    pause = np.zeros(3 * SR, np.float32)
    monkeypatch.chdir(tmp_path)
    path = Path("meeting.wav")
    sf.write(path, np.concatenate([pause, hello, pause, hello, pause]), SR)
    rc, out, err = run(["predict", "--model", str(model_dir), "--json", str(path)], capsys)
    assert rc == 0, err
    [record] = json.loads(out)
    summary, merged = record["timeline"]["summary"], record["timeline"]["merged"]
    assert summary["speech_s"] > 0 and 0 < summary["no_speech_share"] < 1
    rc, out, err = run(["predict", "--model", str(model_dir), str(path)], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[1].split()[:2] == [str(path), "0.00"]
    assert lines[1].split()[4] == summary["label"]
    segment_rows = [line for line in lines if line.startswith("  └ ")]
    assert len(segment_rows) == len(merged)  # the table shows merged segments
    for line, m in zip(segment_rows, merged):
        assert float(line.split()[2]) == pytest.approx(m["start_s"], abs=0.01)
        assert line.split()[5] == m["label"]
    assert lines[-1].startswith(f"  = {path}: ")
    text = lines[-1][len(f"  = {path}: ") :]
    assert text == summary_text(summary)
    assert text.endswith(f"no speech {summary['no_speech_share']:.0%} of {summary['duration_s']:.1f} s")
    label = summary["label"]
    if label in LABELS:
        assert text.startswith(f"{label} ({summary['emotion_share'][label]:.0%} of confident speech")
        assert f"; unknown {summary['unknown_share']:.0%} of speech;" in text
    else:
        assert text.startswith(f"{label} ({summary['detail']})")


def test_summary_text_words_every_kind_of_summary():
    labels = ("angry", "happy", "sad")

    def seg(label, start, end, reason=None):
        scores = {k: (0.8 if k == label else 0.1) for k in labels} if label in labels else dict.fromkeys(labels, 1 / 3)
        return Prediction(label, max(scores.values()), scores, start, end, end - start, reason)

    leading = Timeline(
        (seg("angry", 0, 5), seg("sad", 5, 7), seg("happy", 7, 8), seg("unknown", 8, 9, "low_confidence")), 12.0, labels
    )
    assert (
        summary_text(leading.summary)
        == "angry (62% of confident speech; sad 25%, happy 12%); unknown 11% of speech; no speech 25% of 12.0 s"
    )
    mixed = Timeline((seg("angry", 0, 2), seg("sad", 2, 4)), 4.0, labels)
    assert summary_text(mixed.summary) == (
        f"mixed ({mixed.summary['detail']}); unknown 0% of speech; no speech 0% of 4.0 s"
    )
    unsure = Timeline((seg("unknown", 1, 3, "low_confidence"),), 4.0, labels)
    assert summary_text(unsure.summary) == f"unknown ({unsure.summary['detail']}); no speech 50% of 4.0 s"
    assert summary_text(Timeline((), 8.0, labels).summary) == "no_speech (no speech was found in 8.0 s)"


def test_timeline_plot_leaves_no_speech_blank_and_titles_the_shares(tmp_path):
    """A segment the gate called ``no_speech`` has no colour of its own (it used to raise KeyError)."""
    labels = ("angry", "sad")
    segs = (
        Prediction("angry", 0.8, {"angry": 0.8, "sad": 0.2}, 0.0, 2.0, 2.0),
        Prediction("no_speech", 0.6, {"angry": 0.6, "sad": 0.4}, 2.5, 3.0, 0.0, "no_speech"),
        Prediction("unknown", 0.5, {"angry": 0.5, "sad": 0.5}, 3.0, 4.0, 1.0, "low_confidence"),
    )
    t = Timeline(segs, 6.0, labels, threshold=0.55)
    png = plot_timeline(t, tmp_path / "t.png", title="t.wav")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert summary_text(t.summary).startswith("angry (100% of confident speech)")
