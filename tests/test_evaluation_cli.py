"""``emovox evaluate`` end to end on a small real subset, and its error paths."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emovox.cli.main import main
from emovox.corpora import default_corpora_root

CORPORA = default_corpora_root()
needs_emodb = pytest.mark.skipif(not (CORPORA / "emodb").is_dir(), reason=f"no EMO-DB under {CORPORA}")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One feature cache for the module: the second run reuses the first one's features."""
    return tmp_path_factory.mktemp("feature-cache")


@pytest.mark.corpora
@needs_emodb
def test_evaluate_emodb_three_speakers_svm_mfcc(tmp_path, capsys, cache_dir):
    out = tmp_path / "run"
    argv = [
        "evaluate",
        "--corpus",
        "emodb",
        "--max-speakers",
        "3",
        "--model",
        "svm-mfcc",
        "--protocol",
        "loso",
        "--out",
        str(out),
        "--cache-dir",
        str(cache_dir),
        "--quiet",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "UAR" in printed and "pooled" in printed and "report.md" in printed
    result = json.loads((out / "result.json").read_text())
    assert result["speaker_independent"] is True
    assert [f["name"] for f in result["folds"]] == ["emodb/03", "emodb/08", "emodb/09"]
    assert len(result["predictions"]) == result["n_samples"] > 100
    assert {"path", "speaker", "corpus", "true", "predicted"} <= set(result["predictions"][0])
    assert result["config"]["model"] == "svm-mfcc" and result["config"]["model_config"]["C"] == 1.0
    assert 0.15 < result["pooled"]["uar"] <= 1.0  # 7 classes, 3 speakers: well above chance (1/7)
    for name in ("report.md", "confusion.png", "per_class_recall.png"):
        assert (out / name).stat().st_size > 0
    assert len(list(cache_dir.rglob("*.npy"))) == result["n_samples"], "features went through the disk cache"


@pytest.mark.corpora
@needs_emodb
def test_evaluate_with_random_prints_both_and_flags_the_leak(tmp_path, capsys, cache_dir):
    argv = [
        "evaluate",
        "--corpus",
        "emodb",
        "--max-speakers",
        "2",
        "--model",
        "svm-mfcc",
        "--protocol",
        "speaker-kfold",
        "--folds",
        "2",
        "--with-random",
        "--out",
        str(tmp_path / "r"),
        "--cache-dir",
        str(cache_dir),
        "--quiet",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "speaker-kfold (2 folds)" in printed and "speakers leak" in printed
    assert (tmp_path / "r" / "random-split" / "result.json").is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "svm-nope"], "unknown model 'svm-nope'"),
        (["--model", "svm-mfcc", "--protocol", "kfold"], "unknown protocol 'kfold'"),
        (["--model", "svm-mfcc", "--corpus", "atlantis"], "unknown corpus 'atlantis'"),
        (["--model", "svm-mfcc", "--protocol", "cross-corpus"], "needs --test-corpus"),
        (["--model", "svm-mfcc", "--test-corpus", "emovo"], "only used with --protocol cross-corpus"),
        (["--model", "svm-mfcc", "--folds", "1"], "--folds must be at least 2"),
        (["--model", "svm-mfcc", "--scheme", "nine"], "unknown label scheme 'nine'"),
    ],
)
def test_evaluate_errors_exit_2_with_one_line(tmp_path, capsys, extra, message):
    corpus = [] if "--corpus" in extra else ["--corpus", "emodb"]
    code = main(["evaluate", *corpus, *extra, "--out", str(tmp_path / "x"), "--quiet", "--corpora-root", str(CORPORA)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("emovox: error: ") and message in err, err
    assert not (tmp_path / "x").exists()


def test_evaluate_model_folder_is_an_extension_point(tmp_path, capsys):
    code = main(["evaluate", "--corpus", "emodb", "--model", str(tmp_path), "--out", str(tmp_path / "x")])
    assert code == 2
    assert "is not a model artifact" in capsys.readouterr().err


class MajorityModel:
    """A model a resolver plugs in: reads no features, predicts the training majority class."""

    name = "majority"
    feature_set = None

    def fit_predict(self, train, test):
        assert train.X is None and test.y is None and len(test.records) == len(test)
        return np.full(len(test), np.bincount(train.y).argmax())

    def to_dict(self):
        return {"name": self.name}


@pytest.fixture
def majority_resolver(monkeypatch):
    from emovox.evaluation import model_resolver

    monkeypatch.setattr(model_resolver, "_RESOLVERS", [])
    model_resolver.register_model_resolver(lambda model: MajorityModel() if model == "majority" else None)


@pytest.mark.corpora
@pytest.mark.skipif(
    not (CORPORA / "emovo").is_dir() or not (CORPORA / "emodb").is_dir(), reason=f"no EMO-DB or EMOVO under {CORPORA}"
)
def test_cross_corpus_through_a_registered_model_keeps_shared_classes(tmp_path, capsys, majority_resolver):
    argv = [
        "evaluate",
        "--corpus",
        "emodb",
        "--test-corpus",
        "emovo",
        "--model",
        "majority",
        "--protocol",
        "cross-corpus",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    assert main(argv) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    # EMO-DB has boredom, EMOVO surprised: neither can be both trained on and tested.
    assert result["config"]["dropped_classes"] == ["surprised", "boredom"]
    assert result["classes"] == ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    (fold,) = result["folds"]
    assert fold["name"] == "emodb->emovo" and fold["test_speakers"][0].startswith("emovo/")
    assert {p["corpus"] for p in result["predictions"]} == {"emovo"}
    assert result["pooled"]["uar"] == pytest.approx(1 / 6)


@pytest.fixture
def own_corpus(tmp_path):
    """A user's own data: 4 speakers x 2 emotions x 3 short clips, described by a CSV manifest."""
    from emovox.testing import speech_like, write_audio

    rows = ["path,label,speaker"]
    for speaker in range(4):
        for k, label in enumerate(("happy", "sad")):
            for take in range(3):
                path = tmp_path / "audio" / f"s{speaker}_{label}_{take}.wav"
                path.parent.mkdir(exist_ok=True)
                y = speech_like(0.6, f0_hz=110 + 90 * k, seed=100 * speaker + 10 * k + take)
                write_audio(path, (0.8 if label == "happy" else 0.2) * y, sample_rate_hz=16000)
                rows.append(f"{path},{label},spk{speaker}")
    manifest = tmp_path / "mine.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def test_evaluate_takes_a_users_own_csv_manifest(tmp_path, capsys, own_corpus):
    out = tmp_path / "run"
    argv = [
        "evaluate",
        "--corpus",
        f"csv:{own_corpus}",
        "--model",
        "svm-mfcc",
        "--protocol",
        "loso",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--quiet",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    result = json.loads((out / "result.json").read_text())
    assert [f["name"] for f in result["folds"]] == [f"csv/spk{i}" for i in range(4)]
    assert result["classes"] == ["happy", "sad"] and result["n_samples"] == 24
    assert result["config"]["corpora"] == [f"csv:{own_corpus}"]


@pytest.mark.corpora
@needs_emodb
def test_cross_corpus_onto_own_data_and_the_random_split_pools_both_sides(
    tmp_path, capsys, own_corpus, majority_resolver
):
    argv = [
        "evaluate",
        "--corpus",
        "emodb",
        "--test-corpus",
        f"csv:{own_corpus}",
        "--model",
        "majority",
        "--protocol",
        "cross-corpus",
        "--with-random",
        "--out",
        str(tmp_path / "cc"),
        "--quiet",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "cc" / "result.json").read_text())
    assert result["folds"][0]["name"] == "emodb->csv" and result["classes"] == ["happy", "sad"]
    pooled = json.loads((tmp_path / "cc" / "random-split" / "result.json").read_text())
    assert {p["corpus"] for p in pooled["predictions"]} == {"emodb", "csv"}  # test corpus not dropped


@pytest.mark.parametrize(
    "corpus, message",
    [
        ("csv", "corpus 'csv' needs its path: write csv:PATH"),
        ("csv:", "has an empty path"),
        ("atlantis:/x", "unknown corpus 'atlantis:/x'"),
        ("csv:/nowhere/mine.csv", "csv manifest '/nowhere/mine.csv' does not exist"),
    ],
)
def test_corpus_paths_errors_exit_2_with_one_line(tmp_path, capsys, corpus, message):
    code = main(["evaluate", "--corpus", corpus, "--model", "svm-mfcc", "--out", str(tmp_path / "x"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "x").exists()


@pytest.mark.corpora
@pytest.mark.skipif(
    not (CORPORA / "emovo").is_dir() or not (CORPORA / "emodb").is_dir(), reason=f"no EMO-DB or EMOVO under {CORPORA}"
)
def test_leave_one_corpus_out_holds_each_corpus_out_on_the_shared_classes(tmp_path, capsys, cache_dir):
    out = tmp_path / "loco"
    argv = [
        "evaluate",
        "--corpus",
        "emodb",
        "--corpus",
        "emovo",
        "--max-speakers",
        "2",
        "--protocol",
        "leave-one-corpus-out",
        "--features",
        "mfcc-functionals",
        "--model",
        "linear",
        "--out",
        str(out),
        "--cache-dir",
        str(cache_dir),
        "--quiet",
    ]
    assert main(argv) == 0
    result = json.loads((out / "result.json").read_text())
    assert [f["name"] for f in result["folds"]] == ["emovo->emodb", "emodb->emovo"]
    assert result["speaker_independent"] is True
    # EMO-DB and EMOVO share six emotions (EMOVO has no boredom, EMO-DB no surprise).
    assert result["classes"] == ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    for fold in result["folds"]:
        corpus = fold["name"].split("->")[1]
        assert {p["corpus"] for p in result["predictions"] if p["fold"] == fold["name"]} == {corpus}
