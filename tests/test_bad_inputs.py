"""The bad-input corpus (``tests/bad_inputs.py``) through every entry point.

Each case gets a correct answer or one clear line: ``load_audio`` /
``audio_duration_s`` / ``stream_audio`` in process; ``emovox predict`` (table,
``--json``, ``--csv``, ``--timeline``) as real processes over the whole corpus
at once (its contract: one ``emovox: error: FILE: reason`` line per failing
file, exit 1, the rest predicted), with peak memory from ``wait4`` and a hang
limit; ``emovox features`` per bad file (exit 2, one line, no output file);
the corpus loaders over folders holding the same files. Bugs the corpus found
have a ``test_<bug>`` of their own at the end.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from bad_inputs import SR, make_corpus, model_args, run_cli, speech, wav_bytes, write_one_hour_flac  # noqa: E402

from emovox.audio import audio_duration_s, load_audio, stream_audio  # noqa: E402
from emovox.cli.main import main  # noqa: E402
from emovox.errors import AudioError, EmovoxError  # noqa: E402

#: Peak resident memory allowed for one ``emovox predict`` over the corpus (model included).
PEAK_MB = 1500

_ROOT = Path(tempfile.mkdtemp(prefix="emovox-bad-inputs-"))
CASES = make_corpus(_ROOT / "corpus")
BY_NAME = {c.name: c for c in CASES}


def teardown_module(module) -> None:
    shutil.rmtree(_ROOT, ignore_errors=True)


def _one_line(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message, message


# ------------------------------------------------------------------ the audio layer, in process
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_load_audio(case):
    try:
        y = load_audio(case.path)
    except EmovoxError as error:
        assert case.expect in ("error", "either"), f"{case.name} ({case.why}) should decode: {error}"
        _one_line(str(error))
        assert __import__("re").search(case.error, str(error)), (case.error, str(error))
    else:
        assert case.expect in ("ok", "either"), f"{case.name} ({case.why}) should be refused"
        assert y.dtype == np.float32 and y.ndim == 1 and y.size >= 0.05 * SR and np.isfinite(y).all()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_duration_and_stream(case):
    """audio_duration_s and stream_audio: a number / blocks, or an EmovoxError; never another exception."""
    try:
        duration = audio_duration_s(case.path)
        assert duration >= 0 and np.isfinite(duration)
    except EmovoxError as error:
        _one_line(str(error))
    try:
        blocks = list(stream_audio(case.path, block_s=0.5))
        assert all(b.dtype == np.float32 and np.isfinite(b).all() for b in blocks)
    except EmovoxError as error:
        assert case.expect != "ok", f"{case.name}: {error}"
        _one_line(str(error))


# ------------------------------------------------------------------ emovox predict, real processes
def _predict(*flags: str):
    paths = [str(c.path) for c in CASES]
    return run_cli(["predict", *model_args(), "-q", *flags, *paths], cwd=_ROOT / "corpus", timeout_s=600)


def _check_errors(result) -> set[str]:
    """One ``emovox: error: FILE: reason`` line per failing file; returns the failing files."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    failed = set()
    for line in result.error_lines:
        assert line.startswith("emovox: error: "), f"stray stderr line: {line!r}"
        name = next((str(c.path) for c in CASES if line.startswith(f"emovox: error: {c.path}: ")), None)
        assert name, f"error line names no input: {line!r}"
        assert name not in failed, f"two lines for {name}"
        failed.add(name)
    for case in CASES:
        if case.expect == "error":
            assert str(case.path) in failed, f"{case.name} ({case.why}) was not refused"
        if case.expect == "ok":
            assert str(case.path) not in failed, f"{case.name} ({case.why}) failed"
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert result.peak_mb < PEAK_MB, f"peak memory {result.peak_mb:.0f} MB"
    return failed


@pytest.mark.timeout(900)
def test_predict_table():
    result = _predict()
    failed = _check_errors(result)
    rows = result.stdout.splitlines()
    assert rows[0].split()[:3] == ["file", "start_s", "end_s"]
    predicted = [c for c in CASES if str(c.path) not in failed]
    assert len(rows) - 1 >= len(predicted)


@pytest.mark.timeout(900)
def test_predict_json():
    result = _predict("--json")
    failed = _check_errors(result)
    entries = json.loads(result.stdout)
    assert [e["file"] for e in entries] == [
        str(c.path) for c in CASES if c.name != "directory-named-like-a-file"
    ] or len(entries) == len(CASES)
    for entry in entries:
        if entry["file"] in failed:
            _one_line(entry["error"])
        else:
            assert entry["label"] and 0.0 <= entry["confidence"] <= 1.0
            assert entry["speech_s"] >= 0.0 and isinstance(entry["warnings"], list)
            if entry["label"] == "no_speech":  # the speech gate answered: the model did not run
                assert (entry["scores"], entry["confidence"], entry["reason"]) == ({}, 0.0, "no_speech")
            else:
                assert abs(sum(entry["scores"].values()) - 1.0) < 1e-3


@pytest.mark.timeout(900)
def test_predict_csv():
    result = _predict("--csv")
    failed = _check_errors(result)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    by_file = {r["file"]: r for r in rows if r["kind"] == "file"}  # an input's own row (segments follow it)
    for case in CASES:
        row = by_file.get(str(case.path))
        if str(case.path) in failed:
            assert row is None or row["error"], case.name
        else:
            assert row and row["label"] and not row["error"], case.name
            scores = [v for k, v in row.items() if k.startswith("score_")]
            assert scores, row
            assert all(v == "" for v in scores) if row["label"] == "no_speech" else all(scores), case.name


@pytest.mark.timeout(900)
def test_predict_timeline_json():
    result = _predict("--timeline", "--json")
    failed = _check_errors(result)
    for entry in json.loads(result.stdout):
        if entry["file"] not in failed:
            assert entry["timeline"]["duration_s"] > 0
            assert entry["timeline"]["summary"]


def test_predict_stdin_bad_bytes():
    """stdin gets the same contract: one line, exit 1."""
    for case in (BY_NAME["png"], BY_NAME["truncated-ogg"], BY_NAME["nan-float-wav"]):
        result = run_cli(["predict", *model_args(), "-q", "-"], stdin=case.path.read_bytes(), timeout_s=300)
        assert result.returncode == 1 and len(result.error_lines) == 1, (case.name, result.stderr)
        assert result.error_lines[0].startswith("emovox: error: <stdin>: ")


# ------------------------------------------------------------------ emovox features, in process
@pytest.mark.parametrize("case", [c for c in CASES if c.expect != "ok"], ids=lambda c: c.name)
def test_features_refuses_with_one_line(case, tmp_path, capsys):
    """A bad file stops `emovox features` with one line naming it; nothing is written."""
    out = tmp_path / "f.safetensors"
    code = main(["features", str(case.path), "--set", "mfcc-functionals", "--out", str(out), "-q"])
    err = capsys.readouterr().err
    if code == 0:
        assert case.expect == "either" and out.is_file(), err
        return
    assert code == 2, (code, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("emovox: error: "), err
    assert case.path.name in lines[0] or case.name == "directory-named-like-a-file", lines[0]
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("feature_set", ["mfcc-functionals", "logmel"])
def test_features_of_every_good_case(feature_set, tmp_path, capsys):
    from emovox.features.store import read_features

    good = [str(c.path) for c in CASES if c.expect == "ok"]
    out = tmp_path / "f.safetensors"
    assert main(["features", *good, "--set", feature_set, "--out", str(out), "-q"]) == 0, capsys.readouterr().err
    features = read_features(out)
    assert len(features.items) == len(good)


def test_features_cli_process_one_bad_file_among_good(tmp_path):
    """The real process: exit 2, one line, no output and no temporary left behind."""
    good = [str(c.path) for c in CASES if c.expect == "ok"][:4]
    out = tmp_path / "out.safetensors"
    result = run_cli(
        ["features", *good, str(BY_NAME["truncated-flac"].path), "--set", "mfcc-functionals", "--out", out, "-q"],
        timeout_s=300,
    )
    assert result.returncode == 2 and len(result.error_lines) == 1, result.stderr
    assert "truncated.flac" in result.error_lines[0]
    assert list(tmp_path.iterdir()) == []
    assert result.peak_mb < PEAK_MB, f"peak memory {result.peak_mb:.0f} MB"


# ------------------------------------------------------------------ corpus loaders
def _folder_corpus(tmp_path: Path) -> Path:
    root = tmp_path / "mine"
    for label, case in (
        ("angry", "truncated-wav"),
        ("angry", "8khz"),
        ("happy", "png"),
        ("happy", "clipping"),
        ("sad", "nan-float-wav"),
        ("sad", "dc-offset"),
    ):
        (root / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(BY_NAME[case].path, root / label / BY_NAME[case].path.name)
    os.symlink("..", root / "sad" / "up")  # a loop back to the corpus root
    os.symlink(str(root), root / "happy" / "again")  # and an absolute one
    (root / "angry" / "folder.wav").mkdir()  # a folder named like a file
    os.symlink("nowhere.wav", root / "angry" / "dangling.wav")
    return root


@pytest.mark.timeout(120)
def test_folder_corpus_with_bad_files_loops_and_links(tmp_path, capsys):
    from emovox.corpora import load_corpus

    root = _folder_corpus(tmp_path)
    records = load_corpus("folder", root)
    paths = sorted(Path(r.path).name for r in records)
    assert len(paths) == len({r.path for r in records}), "a file listed twice"
    assert "clipping.wav" in paths and "truncated.wav" in paths
    out = tmp_path / "f.safetensors"
    code = main(["features", "--corpus", f"folder:{root}", "--set", "mfcc-functionals", "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "emovox: error: " in err, err
    assert not out.exists()
    # emovox predict over the same folder: the good files predicted, one line per bad one, no hang
    assert main(["predict", *model_args(), "-q", "--json", str(root)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert all(line.startswith("emovox: error: ") for line in lines) and len(lines) == 3, lines
    assert sum("label" in e for e in json.loads(captured.out)) == 3


def test_csv_manifest_naming_bad_paths(tmp_path):
    from emovox.corpora.manifest import load_csv
    from emovox.errors import CorpusError

    for target in (
        BY_NAME["symlink-loop"].path,
        BY_NAME["directory-named-like-a-file"].path,
        tmp_path / ("x" * 300 + ".wav"),
        tmp_path / "missing.wav",
    ):
        manifest = tmp_path / "m.csv"
        manifest.write_text(f"path,label,speaker\n{target},angry,s1\n")
        with pytest.raises(CorpusError) as info:
            load_csv(manifest)
        _one_line(str(info.value))


# ------------------------------------------------------------------ unreadable file
def _in_unprivileged_child(fn) -> str:
    """Run ``fn()`` in a forked child that dropped root to ``nobody``; returns what it printed."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            text = fn()
        except BaseException as error:  # report, never return into pytest
            text = f"CHILD-FAILED {type(error).__name__}: {error}"
        os.write(write, text.encode("utf-8", "replace"))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        text = fh.read().decode()
    os.waitpid(pid, 0)
    return text


def test_unreadable_file(tmp_path):
    """chmod 000: one line saying it cannot be read. Root reads any file, so as root the check runs
    in a forked child that dropped its privileges to ``nobody`` (the modules are imported before)."""
    folder = Path(tempfile.mkdtemp(prefix="emovox-unreadable-"))
    try:
        os.chmod(folder, 0o755)
        path = folder / "secret.wav"
        path.write_bytes(wav_bytes(speech(0.5)))
        os.chmod(path, 0)

        def attempt() -> str:
            try:
                load_audio(path)
            except AudioError as error:
                return f"AudioError: {error}"
            return "decoded"

        if os.geteuid() == 0:
            if not hasattr(os, "fork"):
                pytest.skip("needs fork to drop root privileges")
            text = _in_unprivileged_child(attempt)
        else:
            text = attempt()
        assert text.startswith("AudioError: ") and "cannot read" in text and "permission" in text.lower(), text
        assert "\n" not in text
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------ bugs the corpus found
def test_truncated_mp3_prints_no_decoder_warnings(capfd):
    """libsndfile's mpg123 printed 'Warning: Xing stream size off by more than 1%' to fd 2 (twice)."""
    data = BY_NAME["truncated-mp3"].path.read_bytes()
    try:
        load_audio(data)
        audio_duration_s(data)
    except AudioError:
        pass
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == "", captured


def test_file_declaring_255_channels_is_refused_as_audio():
    """An Ogg header patched to 255 channels decoded 255 channels, then failed with a ConfigError
    meant for arrays ('pass (channels, n), e.g. y.T for soundfile's')."""
    from emovox.errors import UnsupportedAudioError

    with pytest.raises(UnsupportedAudioError, match=r"declares 255 channels .*at most 64"):
        load_audio(BY_NAME["ogg-255-channels"].path)
    with pytest.raises(UnsupportedAudioError, match="255 channels"):
        list(stream_audio(BY_NAME["ogg-255-channels"].path))


@pytest.mark.timeout(60)
def test_corpus_symlink_loop_does_not_hang(tmp_path):
    """find_audio (os.walk followlinks=True) branched at every loop link: two loops hung for hours."""
    from emovox.corpora.files import find_audio

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.wav").write_bytes(b"RIFF")
    os.symlink("..", tmp_path / "a" / "up")
    os.symlink(str(tmp_path), tmp_path / "self")
    os.symlink("a", tmp_path / "alias")
    found = find_audio(tmp_path, "t", "t")
    assert len(found) == 1 and found[0].resolve() == (tmp_path / "a" / "x.wav").resolve()


def test_predict_names_a_looping_link(capsys):
    """A link to itself was reported as 'no such file'."""
    loop = BY_NAME["symlink-loop"].path
    assert main(["predict", *model_args(), "-q", str(loop)]) == 1
    err = capsys.readouterr().err
    assert "symbolic link that loops or points to nothing" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ the one-hour file (slow)
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_one_hour_file(tmp_path):
    """An hour of audio: predict streams it into a timeline in bounded memory; features refuses
    or computes it, also bounded."""
    path = write_one_hour_flac(tmp_path / "hour.flac")
    result = run_cli(["predict", *model_args(), "-q", "--json", path], timeout_s=1500)
    assert result.returncode == 0, result.stderr[-2000:]
    entry = json.loads(result.stdout)[0]
    assert abs(entry["timeline"]["duration_s"] - 3600) < 1
    assert result.peak_mb < PEAK_MB, f"peak memory {result.peak_mb:.0f} MB"
    y = load_audio(path)
    assert y.size == 3600 * SR


# ------------------------------------------------------------------ the service (cross-check of the corpus)
def test_service_answers_every_corpus_file_with_a_result_or_a_json_4xx():
    """The same corpus uploaded to the HTTP API: 200 or a 4xx ``{"error": {code, message}}`` naming
    the upload by its base name, never a 500 or a server path. (The service's own limits, keys and
    errors are tested in tests/test_service*.py.)"""
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from emovox.inference import load_model
    from emovox.service.app import create_app

    model = load_model(*(model_args()[1:] or [None]), num_threads=1)
    with TestClient(create_app(model)) as client:
        for case in CASES:
            if not case.path.is_file():
                continue  # links that loop and folders cannot be uploaded
            data = case.path.read_bytes()
            for response in (
                client.post("/v1/predict", files={"file": (case.path.name, data)}),
                client.post("/v1/predict", content=data),
            ):
                if response.status_code == 200:
                    assert case.expect in ("ok", "either"), (case.name, response.text)
                    assert response.json()["label"]
                    continue
                assert 400 <= response.status_code < 500, (case.name, response.status_code, response.text)
                assert case.expect in ("error", "either"), (case.name, response.text)
                body = response.json()
                assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
                message = body["error"]["message"]
                _one_line(message)
                assert str(_ROOT) not in message and "/tmp/" not in message, message


def test_utterance_features_of_a_long_recording_are_refused_before_gigabytes(tmp_path, capsys):
    """`emovox features --set mfcc-functionals` on an hour peaked at 1.8 GB (the whole STFT); recordings
    over MAX_UTTERANCE_S are refused from their header, in one line."""
    from emovox.features.records import MAX_UTTERANCE_S

    path = write_one_hour_flac(tmp_path / "eleven-minutes.flac", seconds=int(MAX_UTTERANCE_S) + 60)
    out = tmp_path / "f.safetensors"
    code = main(["features", str(path), "--set", "mfcc-functionals", "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "lasts 11.0 min" in err and "frame sets" in err and not out.exists()


def test_flac_of_unknown_length_is_not_called_truncated(tmp_path):
    """A FLAC whose STREAMINFO says 0 total samples ("unknown", as written to a pipe) was refused as
    "truncated or corrupt (its header claims 9223372036854775807 frames ...)" by audio_duration_s and
    load_audio (libsndfile reports SF_COUNT_MAX for it)."""
    from bad_inputs import patch_flac_streaminfo

    from emovox.testing import encode_audio

    y = speech(3.0, seed=9)
    path = tmp_path / "piped.flac"
    path.write_bytes(patch_flac_streaminfo(encode_audio(y, sample_rate_hz=SR, format="flac"), total_samples=0))
    assert audio_duration_s(path) == pytest.approx(3.0)
    assert load_audio(path).size == 3 * SR
    assert sum(b.size for b in stream_audio(path, block_s=0.5)) == 3 * SR
    cut = tmp_path / "cut.flac"
    cut.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # still caught when cut mid-frame
    with pytest.raises(AudioError):
        load_audio(cut)
