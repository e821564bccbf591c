"""Targets beyond emotion: record attributes, CSV columns, regression and classification end to end."""

from __future__ import annotations

import json

import pytest

from emovox.cli.main import main
from emovox.corpora import default_corpora_root
from emovox.corpora.manifest import read_manifest_column
from emovox.corpora.records import Record
from emovox.errors import ConfigError
from emovox.evaluation.targets import target_values

CORPORA = default_corpora_root()
needs_emodb = pytest.mark.skipif(not (CORPORA / "emodb").is_dir(), reason=f"no EMO-DB under {CORPORA}")
#: A made-up arousal per emotion: high for anger/fear/happiness, low for sadness/boredom/neutral.
AROUSAL = {"angry": 0.9, "fearful": 0.8, "happy": 0.7, "disgust": 0.5, "neutral": 0.3, "boredom": 0.2, "sad": 0.1}


def _record(path: str, corpus: str, intensity: str | None, speaker: str = "01") -> Record:
    return Record(
        path=path,
        corpus=corpus,
        speaker=speaker,
        label="x",
        emotion="angry",
        language="en",
        gender="female",
        intensity=intensity,
    )


def test_intensity_levels_of_each_corpus():
    ravdess = [_record("/a", "ravdess", "normal"), _record("/b", "ravdess", "strong")]
    crema = [_record(f"/c{i}", "crema-d", level) for i, level in enumerate(("LO", "MD", "HI", "XX"))]
    values, numeric = target_values("intensity", [("ravdess", ravdess), ("crema-d", crema)])
    assert numeric and values == [1.0, 2.0, 1.0, 2.0, 3.0, None]  # XX (unspecified) is dropped
    values, numeric = target_values("gender", [("ravdess", ravdess)])
    assert not numeric and values == ["female", "female"]
    with pytest.raises(ConfigError, match="neither a number nor a level"):
        target_values("intensity", [("csv:/m.csv", [_record("/d", "csv", "loud")])])
    with pytest.raises(ConfigError, match="speaker-independent"):
        target_values("speaker", [("ravdess", ravdess)])
    with pytest.raises(ConfigError, match="unknown target 'arousal' for corpus 'ravdess'.*csv:PATH"):
        target_values("arousal", [("ravdess", ravdess)])


def test_csv_column_numeric_or_categorical(tmp_path):
    audio = []
    for name in ("a.wav", "b.wav", "c.wav"):
        (tmp_path / name).write_bytes(b"")
        audio.append(str(tmp_path / name))
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,label,speaker,valence,mood\na.wav,angry,1,-0.5,up\nb.wav,angry,2,NA,down\nc.wav,angry,3,0.25,\n"
    )
    assert read_manifest_column(manifest, "valence") == {audio[0]: "-0.5", audio[1]: "NA", audio[2]: "0.25"}
    records = [_record(p, "csv", None, speaker=str(i)) for i, p in enumerate(audio)]
    entry = [(f"csv:{manifest}", records)]
    assert target_values("valence", entry) == ([-0.5, None, 0.25], True)
    assert target_values("mood", entry) == (["up", "down", None], False)
    with pytest.raises(ConfigError, match="no column 'arousal': its columns are path, label, speaker, valence, mood"):
        target_values("arousal", entry)


# -- end to end through the CLI on real EMO-DB clips ---------------------------------


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("feature-cache")


@pytest.fixture(scope="module")
def emodb_csv(tmp_path_factory):
    """A manifest of 10 EMO-DB clips of each of 3 speakers, with a made-up numeric ``arousal`` column."""
    from emovox.evaluation.experiment import load_corpus_entry

    records = load_corpus_entry("emodb", CORPORA)
    chosen = []
    for speaker in sorted({r.speaker for r in records})[:3]:
        chosen += [r for r in records if r.speaker == speaker][:10]
    path = tmp_path_factory.mktemp("manifest") / "emodb-arousal.csv"
    lines = ["path,label,speaker,gender,arousal,empty"]
    for i, r in enumerate(chosen):
        arousal = "" if i == 0 else AROUSAL[r.emotion]  # one row without a value: dropped and counted
        lines.append(f"{r.path},{r.emotion},{r.speaker},{r.gender},{arousal},")
    path.write_text("\n".join(lines) + "\n")
    return path


def _evaluate(argv, out, cache_dir):
    return main(
        ["evaluate", *argv, "--out", str(out), "--cache-dir", str(cache_dir), "--quiet", "--corpora-root", str(CORPORA)]
    )


@pytest.mark.corpora
@needs_emodb
def test_csv_numeric_column_is_regressed_end_to_end(tmp_path, capsys, cache_dir, emodb_csv):
    out = tmp_path / "arousal"
    argv = [
        "--corpus",
        f"csv:{emodb_csv}",
        "--target",
        "arousal",
        "--features",
        "mfcc-functionals",
        "--model",
        "linear",
        "--protocol",
        "speaker-kfold",
        "--folds",
        "3",
    ]
    assert _evaluate(argv, out, cache_dir) == 0
    printed = capsys.readouterr().out
    assert "CCC" in printed.splitlines()[1] and "MAE" in printed and "speaker bootstrap" in printed
    result = json.loads((out / "result.json").read_text())
    assert result["task"] == "regression" and result["target"] == "arousal"
    assert result["n_samples"] == 29 and result["config"]["dropped_without_target"] == 1
    assert result["speaker_independent"] and len(result["folds"]) == 3
    assert all(len(f["test_speakers"]) == 1 for f in result["folds"])
    assert {"path", "corpus", "speaker", "true", "predicted"} <= set(result["predictions"][0])
    assert {p["true"] for p in result["predictions"]} <= set(AROUSAL.values())
    assert result["pooled"]["ccc"] > 0.2  # arousal is audible in MFCCs, even from 20 training clips
    assert result["intervals"]["ccc"]["n_clusters"] == 3
    assert (out / "predicted_vs_true.png").stat().st_size > 0 and (out / "report.md").is_file()


@pytest.mark.corpora
@needs_emodb
def test_gender_is_classified_with_a_uar(tmp_path, capsys, cache_dir):
    out = tmp_path / "gender"
    argv = [
        "--corpus",
        "emodb",
        "--max-speakers",
        "4",
        "--target",
        "gender",
        "--features",
        "mfcc-functionals",
        "--model",
        "linear",
        "--protocol",
        "speaker-kfold",
        "--folds",
        "2",
    ]
    assert _evaluate(argv, out, cache_dir) == 0
    assert "UAR" in capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert result["task"] == "classification" and result["target"] == "gender"
    assert result["classes"] == ["female", "male"]
    for fold in result["folds"]:  # speaker k-fold spreads genders: each test fold holds both
        assert fold["metrics"]["classes_present"] == ["female", "male"]
    assert result["pooled"]["uar"] > 0.7
    assert {p["true"] for p in result["predictions"]} == {"female", "male"}

    loso = tmp_path / "loso"
    argv = ["--corpus", "emodb", "--max-speakers", "4", "--target", "gender", "--model", "svm-mfcc"]
    assert _evaluate(argv, loso, cache_dir) == 0
    notes = json.loads((loso / "result.json").read_text())["config"]["notes"]
    assert notes and "single-class" in notes[0]


@pytest.mark.corpora
@needs_emodb
@pytest.mark.parametrize(
    "target, corpus, message",
    [
        ("arousl", "csv", "has no column 'arousl': its columns are path, label, speaker, gender, arousal, empty"),
        ("speaker", "emodb", "--target speaker cannot be evaluated"),
        ("intensity", "emodb", "target 'intensity' has no numeric values in emodb"),
        ("empty", "csv", "target 'empty' has no values in csv:"),
        ("valence", "emodb", "unknown target 'valence' for corpus 'emodb'"),
    ],
)
def test_target_errors_exit_2_with_one_line(tmp_path, capsys, cache_dir, emodb_csv, target, corpus, message):
    entry = f"csv:{emodb_csv}" if corpus == "csv" else corpus
    argv = ["--corpus", entry, "--target", target, "--features", "mfcc-functionals", "--model", "linear"]
    assert _evaluate(argv, tmp_path / "x", cache_dir) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("emovox: error: ") and message in err, err
    assert not (tmp_path / "x").exists()


@pytest.mark.corpora
@needs_emodb
def test_a_categorical_target_needs_a_workbench_classifier(tmp_path, capsys, cache_dir):
    argv = ["--corpus", "emodb", "--max-speakers", "2", "--target", "gender", "--model", str(tmp_path)]
    assert _evaluate(argv, tmp_path / "x", cache_dir) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "learnt per fold by a workbench classifier" in err, err
