"""``emovox corpus`` through :func:`emovox.cli.main.main`."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.cli.main import main


def make_emodb(root: Path) -> Path:
    for name in ("03a01Fa", "03a02Wb", "08a01Fa", "08b01La", "08b02Wa"):
        path = root / "wav" / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.zeros(160, dtype=np.float32), 16000)
    (root / "README").write_text("stray")
    return root


def test_stats_table(tmp_path, capsys):
    assert main(["corpus", "stats", str(make_emodb(tmp_path)), "--corpus", "emodb"]) == 0
    out = capsys.readouterr().out
    assert "emodb: 5 recordings, 2 speakers, 3 classes" in out
    assert "genders: female 3, male 2" in out
    lines = out.splitlines()
    assert any(line.split() == ["happy", "2", "40.0%"] for line in lines)
    assert any(line.split()[:3] == ["emodb/08", "female", "3"] for line in lines)


def test_stats_json_with_scheme(tmp_path, capsys):
    code = main(["corpus", "stats", str(make_emodb(tmp_path)), "--corpus", "emodb", "--scheme", "seven", "--json"])
    assert code == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["corpus"] == "emodb" and stats["scheme"] == "seven"
    assert stats["n_records"] == 4 and stats["n_dropped"] == 1  # boredom dropped
    assert stats["per_class"] == {"happy": 2, "angry": 2}
    assert stats["per_speaker"]["emodb/08"] == {
        "gender": "female",
        "total": 2,
        "per_class": {"happy": 1, "angry": 1},
    }


def test_stats_inline_scheme(tmp_path, capsys):
    main(
        [
            "corpus",
            "stats",
            str(make_emodb(tmp_path)),
            "--corpus",
            "emodb",
            "--scheme",
            "happy=pos,angry=neg,boredom=neg",
            "--json",
        ]
    )
    assert json.loads(capsys.readouterr().out)["per_class"] == {"pos": 2, "neg": 3}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--corpus", "emodb"], r"emodb folder '.*missing' does not exist"),
        (["--corpus", "emovo"], None),
        (["--corpus", "emodb", "--scheme", "nope"], "unknown label scheme 'nope'"),
        (["--corpus", "emodb", "--label-map", "a=happy"], "takes no option 'mapping'"),
    ],
)
def test_stats_errors_exit_2_with_one_line(tmp_path, capsys, argv, message):
    make_emodb(tmp_path)
    folder = tmp_path / "missing" if message and "missing" in message else tmp_path
    assert main(["corpus", "stats", str(folder), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emovox: error: ") and err.count("\n") == 1
    if message is None:  # EMO-DB file names are no EMOVO names
        assert "03a01Fa.wav" in err and "expected EMOVO names" in err
    else:
        assert re.search(message, err)


def test_unknown_corpus_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["corpus", "stats", ".", "--corpus", "iemocap"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'iemocap'" in capsys.readouterr().err


def test_list(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EMOVOX_CORPORA", str(tmp_path))
    make_emodb(tmp_path / "emodb")
    assert main(["corpus", "list"]) == 0
    out = capsys.readouterr().out
    assert f"corpora root: {tmp_path}" in out
    emodb = next(line for line in out.splitlines() if line.startswith("emodb"))
    assert "present" in emodb and str(tmp_path / "emodb") in emodb
    assert "missing" in next(line for line in out.splitlines() if line.startswith("tess"))
    assert main(["corpus", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["corpora"]}
    assert rows["emodb"]["present"] and not rows["turev"]["present"]
    assert rows["csv"]["default_dir"] is None


def test_manifest_then_csv_stats(tmp_path, capsys):
    make_emodb(tmp_path / "emodb")
    out = tmp_path / "emodb.csv"
    assert main(["corpus", "manifest", str(tmp_path / "emodb"), "--corpus", "emodb", "-o", str(out)]) == 0
    assert "wrote 5 records" in capsys.readouterr().out
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["label"] == "F" and rows[0]["emotion"] == "happy" and rows[0]["corpus"] == "emodb"
    assert main(["corpus", "stats", str(out), "--corpus", "csv", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_records"] == 5 and stats["corpora"] == {"emodb": 5}


def test_stats_folder_corpus_with_options(tmp_path, capsys):
    for label, name in (("joy", "s1_a.wav"), ("joy", "s2_b.wav"), ("Sadness", "s1_c.wav")):
        path = tmp_path / label / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.zeros(160, dtype=np.float32), 16000)
    code = main(
        [
            "corpus",
            "stats",
            str(tmp_path),
            "--corpus",
            "folder",
            "--json",
            "--label-map",
            "joy=happy",
            "--speaker-regex",
            r"^(s\d)_",
        ]
    )
    assert code == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["per_class"] == {"happy": 2, "sad": 1}
    assert sorted(stats["per_speaker"]) == ["folder/s1", "folder/s2"]


def test_stats_default_folder_from_env(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EMOVOX_CORPORA", str(tmp_path))
    make_emodb(tmp_path / "emodb")
    assert main(["corpus", "stats", "--corpus", "emodb", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["root"] == str(tmp_path / "emodb") and stats["n_records"] == 5
