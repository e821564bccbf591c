"""``emovox features`` and the feature file format (:mod:`emovox.features.store`)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from emovox.audio import load_audio
from emovox.cli.main import main
from emovox.errors import ConfigError, FeatureError
from emovox.features import MfccFrontend, featurize_records
from emovox.features.store import read_features, write_features
from emovox.fileio import file_mode
from emovox.testing import speech_like, write_audio

CORPORA = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora"


@pytest.fixture()
def clips(tmp_path) -> list[Path]:
    """Four short clips (0.6-1.5 s, WAV and FLAC) in a folder."""
    folder = tmp_path / "clips"
    folder.mkdir()
    paths = []
    for i, seconds in enumerate([0.6, 1.5, 0.9, 1.2]):
        path = folder / f"clip{i}.{'flac' if i % 2 else 'wav'}"
        write_audio(path, speech_like(seconds, seed=i, f0_hz=120 + 30 * i), sample_rate_hz=16000)
        paths.append(path)
    return paths


def test_mfcc_of_a_folder_equals_the_front_end_clip_by_clip(clips, tmp_path, capsys):
    out = tmp_path / "feats.safetensors"
    assert main(["features", str(clips[0].parent), "--set", "mfcc", "--n-mfcc", "20", "--out", str(out), "-q"]) == 0
    assert "wrote mfcc features of 4 clips (20 per frame)" in capsys.readouterr().out
    f = read_features(out)
    assert f.kind == "frames" and [item["path"] for item in f.items] == [str(p) for p in sorted(clips)]
    assert f.config["features"]["n_mfcc"] == 20 and f.config["audio"]["sample_rate_hz"] == 16000
    fe = MfccFrontend(16000, n_mfcc=20)
    for i, item in enumerate(f.items):
        y = load_audio(item["path"], sample_rate_hz=16000)
        with torch.inference_mode():
            want = fe(torch.from_numpy(y)).numpy()
        assert f.clip(i).shape == want.shape == (20, 1 + len(y) // 160)
        np.testing.assert_allclose(f.clip(i), want, rtol=1e-5, atol=1e-4)
    assert out.stat().st_mode & 0o777 == file_mode()  # as readable as any file the user writes


def test_utterance_set_from_a_csv_corpus_keeps_speakers_and_labels(clips, tmp_path):
    manifest = tmp_path / "mine.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "speaker"])
        for i, path in enumerate(clips):
            writer.writerow([str(path), ["happy", "sad"][i % 2], f"spk{i // 2}"])
    out = tmp_path / "functionals.safetensors"
    assert main(["features", "--corpus", f"csv:{manifest}", "--set", "mfcc-functionals", "--out", str(out), "-q"]) == 0
    f = read_features(out)
    assert f.kind == "utterance" and f.features.shape == (4, 960) and f.offsets is None
    assert [(item["speaker"], item["emotion"]) for item in f.items] == [
        ("spk0", "happy"),
        ("spk0", "sad"),
        ("spk1", "happy"),
        ("spk1", "sad"),
    ]
    np.testing.assert_allclose(
        f.features, featurize_records([str(p) for p in clips], "mfcc-functionals"), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_array_equal(f.clip(2), f.features[2])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["features", "--set", "mfcc", "--out", "x.safetensors"], "no inputs"),
        (["features", "nowhere.wav", "--set", "mfcc", "--out", "x.safetensors"], "no such file 'nowhere.wav'"),
        (["features", "a.wav", "--set", "spectro", "--out", "x.safetensors"], "unknown feature set 'spectro'"),
        (["features", "a.wav", "--set", "mfcc", "--workers", "0", "--out", "x.safetensors"], "--workers must be"),
        (["features", "--corpus", "mystery", "--set", "mfcc", "--out", "x.safetensors"], "unknown corpus 'mystery'"),
        (["features", "-", "--set", "mfcc", "--out", "x.safetensors"], "not standard input"),
    ],
)
def test_bad_options_exit_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.wav").write_bytes(b"")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.safetensors").exists()


def test_unwritable_outputs_are_usage_errors(clips, tmp_path, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    assert main(["features", str(clips[0]), "--set", "mfcc", "--out", str(folder), "-q"]) == 2
    assert "is a folder: give a file name" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["features", str(clips[0]), "--set", "mfcc", "--out", str(blocker / "f.safetensors"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and len(err.strip().splitlines()) == 1


def test_a_bad_file_names_itself_and_nothing_is_written(clips, tmp_path, capsys):
    junk = clips[0].parent / "junk.wav"
    junk.write_bytes(b"RIFF but not really audio" * 20)
    out = tmp_path / "feats.safetensors"
    for feature_set in ("mfcc", "classic"):
        assert main(["features", str(clips[0].parent), "--set", feature_set, "--out", str(out), "-q"]) == 2
        err = capsys.readouterr().err
        assert "junk.wav" in err and len(err.strip().splitlines()) == 1
        assert not out.exists() and not list(tmp_path.glob(".feats*"))


def test_store_round_trip_and_refusals(tmp_path):
    frames = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 1), np.float32)]
    path = write_features(tmp_path / "f.safetensors", frames, [{"path": "a"}, {"path": "b"}], {"x": 1})
    f = read_features(path)
    np.testing.assert_array_equal(f.clip(0), frames[0])
    np.testing.assert_array_equal(f.clip(1), frames[1])
    assert f.offsets.tolist() == [0, 3, 4] and f.config == {"x": 1}
    with pytest.raises(FeatureError, match="2 feature rows but 1 item"):
        write_features(tmp_path / "g.safetensors", frames, [{"path": "a"}], {})
    with pytest.raises(FeatureError, match="one dim for every clip"):
        write_features(tmp_path / "g.safetensors", [np.ones((2, 3)), np.ones((3, 3))], [{}, {}], {})
    with pytest.raises(ConfigError, match="does not exist"):
        read_features(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ConfigError, match="is not a safetensors feature file"):
        read_features(tmp_path / "junk.safetensors")
    from safetensors.numpy import save_file

    save_file({"w": np.ones(2, np.float32)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ConfigError, match="not an emovox feature file"):
        read_features(tmp_path / "model.safetensors")


@pytest.mark.corpora
@pytest.mark.skipif(not (CORPORA / "emodb").is_dir(), reason="needs ../shared/corpora/emodb")
def test_real_corpus_logmel_with_two_workers(tmp_path):
    out = tmp_path / "emodb.safetensors"
    assert (
        main(
            [
                "features",
                "--corpus",
                "emodb",
                "--set",
                "logmel",
                "--limit",
                "12",
                "--workers",
                "2",
                "--out",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    f = read_features(out)
    assert len(f.items) == 12 and {item["corpus"] for item in f.items} == {"emodb"}
    assert all(f.clip(i).shape[0] == 64 and np.isfinite(f.clip(i)).all() for i in range(12))
    assert int(f.offsets[-1]) == f.features.shape[0] > 12 * 100  # EMO-DB clips last over a second
