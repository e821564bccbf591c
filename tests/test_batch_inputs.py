"""``emovox batch`` inputs, output folder and shard scoring, without Ray (fast).

Input expansion (folders, globs, lists, CSV manifests, URIs), the job record
and its checks, part files and the per-shard scoring with a real ONNX model.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from test_inference import LABELS, make_artifact
from test_vad import SR, bursts

import emovox
from emovox.audio import load_audio, resample
from emovox.batch import expand_inputs, result_schema, score_files
from emovox.batch.job import run_batch
from emovox.batch.parts import JobSpec, OutputDir, inputs_digest
from emovox.batch.scoring import table_to_parquet_bytes
from emovox.cli.main import main
from emovox.errors import ConfigError
from emovox.export import export_onnx

#: Synthetic speech shipped with emovox (always present).
HELLO = os.path.join(os.path.dirname(emovox.__file__), "examples", "hello.flac")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    art = make_artifact(tmp_path_factory.mktemp("batch-model") / "art")
    export_onnx(art, art)
    return art


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """a.wav, sub/b.flac, sub/deeper/c.flac (2 s of speech), sub/corrupt.wav, notes.txt."""
    d = tmp_path_factory.mktemp("tree")
    y = load_audio(HELLO)[: 2 * SR]  # speech: the gate lets it through to the model
    (d / "sub" / "deeper").mkdir(parents=True)
    sf.write(d / "a.wav", y, SR)
    sf.write(d / "sub" / "b.flac", y[::-1].copy(), SR)
    sf.write(d / "sub" / "deeper" / "c.flac", 0.5 * y, SR)
    (d / "sub" / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 7)
    (d / "notes.txt").write_text("not audio, ignored in folders")
    return d


# ---------------------------------------------------------------------- inputs
def test_folder_is_recursive_sorted_and_skips_non_audio(tree):
    got = expand_inputs([str(tree)])
    assert got == sorted(got)
    assert [os.path.relpath(p, tree) for p in got] == ["a.wav", "sub/b.flac", "sub/corrupt.wav", "sub/deeper/c.flac"]
    assert all(os.path.isabs(p) for p in got)


def test_globs_single_and_recursive(tree, monkeypatch):
    monkeypatch.chdir(tree)
    assert expand_inputs(["sub/*.flac"]) == [str(tree / "sub" / "b.flac")]
    assert expand_inputs(["**/*.flac"]) == [str(tree / "sub" / "b.flac"), str(tree / "sub" / "deeper" / "c.flac")]


def test_list_file_relative_to_its_folder_with_comments(tree, tmp_path):
    lst = tree / "sub" / "files.txt"
    lst.write_text("# my clips\nb.flac\n\n  deeper/c.flac  \n" + str(tree / "a.wav") + "\n")
    want = [str(tree / "sub" / "b.flac"), str(tree / "sub" / "deeper" / "c.flac"), str(tree / "a.wav")]
    assert expand_inputs([f"@{lst}"]) == want
    assert expand_inputs([], lists=[str(lst)]) == want


def test_csv_manifest_path_column(tree):
    m = tree / "manifest.csv"
    m.write_text("speaker,path,label\ns1,a.wav,happy\ns2,sub/b.flac,sad\n")
    assert expand_inputs([str(m)]) == [str(tree / "a.wav"), str(tree / "sub" / "b.flac")]


def test_csv_manifest_without_path_column_is_one_clear_error(tree):
    m = tree / "bad.csv"
    m.write_text("file,label\na.wav,happy\n")
    with pytest.raises(ConfigError, match=r"no 'path' column \(columns: file, label\)"):
        expand_inputs([str(m)])


def test_duplicates_are_kept_in_order(tree):
    a = str(tree / "a.wav")
    assert expand_inputs([a, a]) == [a, a]


def test_missing_inputs_are_reported_together(tree):
    lst = tree / "some-missing.txt"
    lst.write_text("a.wav\nnope1.wav\nnope2.wav\n")
    with pytest.raises(ConfigError, match=r"^4 inputs not found: 'nope0.wav', '.*nope1.wav', '.*nope2.wav' and 1 more"):
        expand_inputs(["nope0.wav", f"@{lst}", str(tree / "none-*.flac")])
    with pytest.raises(ConfigError, match="no such list file"):
        expand_inputs(["@" + str(tree / "absent.txt")])
    with pytest.raises(ConfigError, match="holds no audio files"):
        expand_inputs([str(_empty_dir(tree))])


def _empty_dir(tree):
    d = tree / "empty"
    d.mkdir(exist_ok=True)
    return d


def test_file_uris_through_pyarrow_fs(tree):
    uri = f"file://{tree}"
    assert expand_inputs([f"{uri}/sub/b.flac"]) == [f"{uri}/sub/b.flac"]
    assert expand_inputs([f"{uri}/**/*.flac"]) == [f"{uri}/sub/b.flac", f"{uri}/sub/deeper/c.flac"]
    assert expand_inputs([f"{uri}/sub"]) == [f"{uri}/sub/b.flac", f"{uri}/sub/corrupt.wav", f"{uri}/sub/deeper/c.flac"]
    with pytest.raises(ConfigError, match="1 input not found"):
        expand_inputs([f"{uri}/nothing.wav"])


# ---------------------------------------------------------------------- scoring one shard
def test_score_files_rows_schema_and_error_rows(tree, model_dir):
    from emovox.inference import load_model

    predictor = load_model(model_dir, backend="onnx", num_threads=1)
    paths = [
        str(tree / "a.wav"),
        str(tree / "sub" / "corrupt.wav"),
        f"file://{tree}/sub/b.flac",
        str(tree / "gone.wav"),
    ]
    table = score_files(predictor, [10, 11, 12, 13], paths)
    assert table.schema == result_schema(LABELS)
    assert table.schema.names == [
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
    rows = table.to_pylist()
    assert [r["input_index"] for r in rows] == [10, 11, 12, 13]
    assert [r["file"] for r in rows] == paths and {r["kind"] for r in rows} == {"file"}
    assert {(r["model"], r["model_version"]) for r in rows} == {(predictor.model_name, predictor.model_version)}
    assert all(r["segment"] is None for r in rows)
    good, bad, remote, gone = rows
    assert good["error"] is None and remote["error"] is None
    assert good["end_s"] == pytest.approx(2.0, abs=1e-3) and good["start_s"] == 0.0
    assert sum(good[f"score_{k}"] for k in LABELS) == pytest.approx(1.0, abs=1e-6)
    assert good["confidence"] == pytest.approx(max(good[f"score_{k}"] for k in LABELS))
    p = predictor.predict(str(tree / "a.wav"))
    assert (good["label"], good["reason"], good["speech_s"]) == (p.label, p.reason, round(p.speech_s, 3))
    assert good["flags"] == ";".join(p.flags)
    # the same file read as a local path or as bytes through pyarrow.fs gives the same scores
    b = predictor.predict(str(tree / "sub" / "b.flac"))
    assert remote["confidence"] == pytest.approx(b.confidence, abs=1e-6)
    for r in (bad, gone):
        assert r["error"] and r["label"] is None and r["confidence"] is None and r["start_s"] is None
        assert r["speech_s"] is None and r["reason"] is None and r["flags"] is None
    assert "No such file" in gone["error"] or "gone.wav" in gone["error"]


def test_score_files_timeline_rows(model_dir, tmp_path):
    from emovox.inference import load_model

    long, _ = bursts(seed=0, n=4)
    sf.write(tmp_path / "long.flac", long, SR)
    sf.write(tmp_path / "silent.wav", np.zeros(2 * SR, np.float32), SR)
    predictor = load_model(model_dir, backend="onnx", num_threads=1)
    table = score_files(predictor, [0, 1], [str(tmp_path / "long.flac"), str(tmp_path / "silent.wav")], timeline=True)
    rows = table.to_pylist()
    head, *segs = [r for r in rows if r["input_index"] == 0]
    timeline = predictor.predict_timeline(str(tmp_path / "long.flac"))
    want = timeline.segments
    # the recording's own row (its overall answer), then one row per speech segment
    assert (head["kind"], head["segment"], head["label"]) == ("file", None, timeline.overall().label)
    assert (head["start_s"], head["end_s"]) == (0.0, round(timeline.duration_s, 3))
    assert len(want) >= 1 and len(segs) == len(want)
    assert [(r["kind"], r["segment"]) for r in segs] == [("segment", i) for i in range(len(want))]
    recording_flags = ";".join(timeline.overall().flags)
    for row, seg in zip(segs, want):
        assert (row["start_s"], row["end_s"], row["label"]) == (round(seg.start_s, 3), round(seg.end_s, 3), seg.label)
        assert row["confidence"] == pytest.approx(seg.confidence) and row["error"] is None
        assert (row["speech_s"], row["reason"]) == (round(seg.speech_s, 3), seg.reason)
        assert row["flags"] == recording_flags  # a segment carries its recording's quality flags
    assert all(r["end_s"] > r["start_s"] for r in segs)
    # a recording without speech is an answer, not an error: its file row says no_speech, no segments follow
    [silent] = [r for r in rows if r["input_index"] == 1]
    assert silent["kind"] == "file"
    assert silent["error"] is None
    assert (silent["label"], silent["reason"], silent["confidence"], silent["speech_s"]) == (
        "no_speech",
        "no_speech",
        0.0,
        0.0,
    )
    assert (silent["start_s"], silent["end_s"]) == (0.0, 2.0)
    assert all(silent[f"score_{k}"] is None for k in LABELS)


def test_score_files_no_speech_and_narrowband_rows(model_dir, tmp_path):
    """A tone and noise answer no_speech with null scores; telephone-band speech carries its flag."""
    from emovox.inference import load_model
    from emovox.inference.gate import NO_SPEECH_S

    rng = np.random.default_rng(3)
    t = np.arange(3 * SR) / SR
    sf.write(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR)
    sf.write(tmp_path / "noise.wav", (0.1 * rng.standard_normal(3 * SR)).astype(np.float32), SR)
    sf.write(tmp_path / "phone.wav", resample(load_audio(HELLO), orig_hz=SR, target_hz=8000), 8000)
    predictor = load_model(model_dir, backend="onnx", num_threads=1)
    paths = [str(tmp_path / name) for name in ("tone.wav", "noise.wav", "phone.wav")]
    table = score_files(predictor, [0, 1, 2], paths)
    tone, noise, phone = table.to_pylist()
    for r in (tone, noise):
        assert (r["label"], r["reason"], r["confidence"], r["error"]) == ("no_speech", "no_speech", 0.0, None)
        assert r["speech_s"] < NO_SPEECH_S and isinstance(r["flags"], str)
        assert all(r[f"score_{k}"] is None for k in LABELS)
    assert "narrowband" in phone["flags"].split(";")
    assert phone["label"] != "no_speech" and phone["speech_s"] > NO_SPEECH_S
    assert sum(phone[f"score_{k}"] for k in LABELS) == pytest.approx(1.0, abs=1e-6)
    # pandas sees the null scores as NaN
    frame = table.to_pandas()
    assert frame.loc[0, [f"score_{k}" for k in LABELS]].isna().all()


# ---------------------------------------------------------------------- output folder
def _spec(paths, **kw):
    base = {
        "n_inputs": len(paths),
        "digest": inputs_digest(paths),
        "shard_size": 2,
        "model": "m",
        "model_id": "x",
        "labels": list(LABELS),
    }
    return JobSpec(**{**base, **kw})


def test_job_record_round_trip_and_differences(tmp_path):
    paths = ["/a.wav", "/b.wav", "/c.wav"]
    spec = _spec(paths)
    assert spec.n_shards == 2 and spec.shard_range(1) == (2, 3)
    with OutputDir(tmp_path / "out") as out:
        out.write_job(spec, paths)
        assert out.read_spec() == spec
        assert out.read_inputs(spec) == paths
    assert _spec(paths[::-1]).differences(spec) == ["inputs"]
    assert _spec(paths, timeline=True, model_id="y").differences(spec) == ["model_id", "timeline"]


@pytest.mark.parametrize("old_format", ["emovox-batch/1", "emovox-batch/2"])
def test_a_folder_of_the_earlier_format_is_read_but_not_resumed(old_format, tree, model_dir, tmp_path, capsys):
    """Parts of an earlier format (other columns) stay readable; a run refuses to add new parts."""
    import json

    import pyarrow as pa

    from emovox.batch import read_results

    paths = [str(tree / "a.wav")]
    out_dir = tmp_path / "old"
    (out_dir / "parquet").mkdir(parents=True)
    pq.write_table(pa.table({"path": paths}), out_dir / "_inputs.parquet")
    old_spec = {
        "n_inputs": 1,
        "digest": inputs_digest(paths),
        "shard_size": 256,
        "model": "m",
        "model_id": "x",
        "labels": list(LABELS),
        "timeline": False,
        "min_confidence": None,
        "format": old_format,
    }
    (out_dir / "_job.json").write_text(json.dumps(old_spec))
    old_columns = {
        "input_index": [0],
        "path": paths,
        "start_s": [0.0],
        "end_s": [2.0],
        "label": ["sad"],
        "confidence": [0.7],
        **{f"score_{k}": [0.7 if k == "sad" else 0.1] for k in LABELS},
        "error": pa.array([None], pa.string()),
    }
    pq.write_table(pa.table(old_columns), out_dir / "parquet" / "part-00000.parquet")
    assert read_results(out_dir).column("label").to_pylist() == ["sad"]
    assert main(["batch", *paths, "--out", str(out_dir), "--model", str(model_dir), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"holds a job of an earlier emovox ({old_format}" in err[0]
    assert "use a new --out" in err[0]
    assert sorted(p.name for p in (out_dir / "parquet").iterdir()) == ["part-00000.parquet"]  # untouched


def test_output_folder_lock_and_temporaries(tmp_path):
    out_dir = tmp_path / "out"
    with OutputDir(out_dir) as out:
        with pytest.raises(ConfigError, match="another emovox batch job is writing"):
            OutputDir(out_dir).__enter__()
        stale = out.path / "parquet" / ".part-00001.parquet.abc123.tmp"
        stale.write_bytes(b"half")
    with OutputDir(out_dir):
        assert not stale.exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        OutputDir(tmp_path / "file").__enter__()


def test_finished_job_resumes_without_ray(tree, model_dir, tmp_path, capsys):
    """All parts present: a re-run (same inputs, or none) starts no Ray and adds no rows."""
    from emovox.inference import load_model

    paths = expand_inputs([str(tree / "a.wav"), str(tree / "sub" / "b.flac"), str(tree / "sub" / "corrupt.wav")])
    out_dir = tmp_path / "done"
    # write the job and its parts by hand, as the actors would
    from emovox.batch.job import _model_identity

    _, name, model_id, labels = _model_identity(model_dir)
    spec = JobSpec(n_inputs=3, digest=inputs_digest(paths), shard_size=2, model=name, model_id=model_id, labels=labels)
    predictor = load_model(model_dir, backend="onnx")
    with OutputDir(out_dir) as out:
        out.write_job(spec, paths)
        for k in range(spec.n_shards):
            lo, hi = spec.shard_range(k)
            out.write_part(k, table_to_parquet_bytes(score_files(predictor, range(lo, hi), paths[lo:hi])))
    summary = run_batch([], out_dir=out_dir, model=model_dir, csv=True)
    assert (summary.n_inputs, summary.n_done_before, summary.n_scored, summary.n_failed) == (3, 3, 0, 1)
    assert sorted(p.name for p in (out_dir / "csv").iterdir()) == ["part-00000.csv", "part-00001.csv"]
    import sys

    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()
    rc = main(["batch", *paths, "--out", str(out_dir), "--model", str(model_dir), "-q"])
    assert rc == 1  # corrupt.wav's row holds an error
    assert "3 files, 3 done before, 1 failed" in capsys.readouterr().err
    table = pq.read_table(out_dir / "parquet")
    assert sorted(table.column("input_index").to_pylist()) == [0, 1, 2]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--workers", "0"], "--workers 0: must be at least 1"),
        (["--threads-per-worker", "0"], "--threads-per-worker 0: must be at least 1"),
        (["--shard-size", "-3"], "--shard-size -3: must be at least 1"),
        (["--min-confidence", "1.5"], r"--min-confidence 1.5: must lie in \[0, 1\]"),
        (["--model", "/nonexistent/model"], "does not exist"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message, tree, tmp_path, capsys):
    rc = main(["batch", str(tree / "a.wav"), "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("emovox: error:")
    import re

    assert re.search(message, lines[0])


def test_missing_inputs_and_mismatched_job_exit_2(tree, model_dir, tmp_path, capsys):
    out_dir = tmp_path / "o"
    assert main(["batch", str(tree / "missing.wav"), "--out", str(out_dir), "--model", str(model_dir)]) == 2
    assert f"1 input not found: '{tree / 'missing.wav'}'" in capsys.readouterr().err
    assert main(["batch", "--out", str(tmp_path / "empty"), "--model", str(model_dir)]) == 2
    assert "holds no job to finish" in capsys.readouterr().err
    # a folder that holds a job for other inputs refuses new ones
    paths = [str(tree / "a.wav")]
    from emovox.batch.job import _model_identity

    _, name, model_id, labels = _model_identity(model_dir)
    with OutputDir(out_dir) as out:
        out.write_job(
            JobSpec(
                n_inputs=1, digest=inputs_digest(paths), shard_size=256, model=name, model_id=model_id, labels=labels
            ),
            paths,
        )
    assert main(["batch", str(tree / "sub" / "b.flac"), "--out", str(out_dir), "--model", str(model_dir)]) == 2
    assert "holds a job with other inputs" in capsys.readouterr().err
    assert main(["batch", *paths, "--out", str(out_dir), "--model", str(model_dir), "--timeline"]) == 2
    assert "holds a job with other --timeline" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["batch", str(tree / "a.wav")])  # --out is required
    assert exit_info.value.code == 2


def test_unreachable_cluster_address_is_one_line(tree, model_dir, tmp_path, capsys):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rc = main(
        [
            "batch",
            str(tree / "a.wav"),
            "--out",
            str(tmp_path / "o"),
            "--model",
            str(model_dir),
            "--address",
            f"127.0.0.1:{port}",
            "-q",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert f"cannot reach the Ray cluster at --address '127.0.0.1:{port}'" in err[0]
