"""Workbench feature sets: ComParE 2016, Whisper base embeddings, a user's own file; and the CLI on them."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from emovox.cli.main import main
from emovox.corpora import default_corpora_root
from emovox.errors import ConfigError
from emovox.features import feature_set_names, featurize_records, get_feature_set

HELLO = Path(str(resources.files("emovox"))) / "examples" / "hello.flac"
CORPORA = default_corpora_root()


def _hello():
    from emovox.audio import load_audio

    return load_audio(HELLO, sample_rate_hz=16000)


def test_names_are_listed_without_importing_models_or_torch():
    """The registry lists and resolves every name whatever was imported before (fresh process)."""
    code = (
        "import sys; from emovox.features import feature_set_names, get_feature_set; "
        "names = feature_set_names(); fs = get_feature_set('whisper-base'); "
        "print(names, fs.name, 'torch' in sys.modules, 'emovox.models.artifact' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'compare'" in out and "'whisper-base'" in out and out.strip().endswith("whisper-base False False")
    assert {"compare", "egemaps", "whisper-base"} <= set(feature_set_names())
    with pytest.raises(ConfigError, match="unknown feature set 'comparE16'.*file:PATH"):
        get_feature_set("comparE16")


def test_compare_has_6373_values():
    pytest.importorskip("opensmile")
    x = get_feature_set("compare")(_hello(), sample_rate_hz=16000)
    assert x.shape == (6373,) and x.dtype == np.float32 and np.isfinite(x).all()
    assert get_feature_set("compare").config()["libraries"]["opensmile"]


def test_whisper_base_is_the_default_heads_embedding_and_is_cached(tmp_path):
    torch = pytest.importorskip("torch")
    from emovox.models.artifact import load_artifact
    from emovox.models.embedding_features import default_encoder_dir

    y = _hello()
    x = get_feature_set("whisper-base")(y, sample_rate_hz=16000)
    assert x.shape == (5 * 2 * 512,) and np.isfinite(x).all()
    module, _ = load_artifact(default_encoder_dir())
    with torch.inference_mode():
        expected = module.embedding(torch.from_numpy(y)[None]).numpy()[0]
    np.testing.assert_allclose(x, expected, rtol=1e-4, atol=1e-4)
    last_mean = get_feature_set("whisper-base").with_params(layers=(4,), stats=("mean",))(y, sample_rate_hz=16000)
    np.testing.assert_allclose(last_mean, x[4 * 1024 : 4 * 1024 + 512], rtol=1e-5, atol=1e-5)
    rows = featurize_records([HELLO], "whisper-base", cache_dir=tmp_path)
    assert rows.shape == (1, 5120) and len(list(tmp_path.rglob("*.npy"))) == 1
    np.testing.assert_array_equal(featurize_records([HELLO], "whisper-base", cache_dir=tmp_path), rows)


# -- file:PATH ---------------------------------------------------------------


@pytest.fixture
def clips(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    paths = []
    for i in range(3):
        p = audio / f"c{i}.wav"
        p.write_bytes(b"")  # never read: file features are looked up by path
        paths.append(p)
    return paths


def test_csv_round_trip_matches_by_resolved_path(tmp_path, clips):
    csv = tmp_path / "feats.csv"
    # relative paths resolve against the CSV's folder; rows in another order than the records
    csv.write_text("f1,path,f2\n2.5,audio/c2.wav,-1\n0.5,audio/c0.wav,3\n1.5," + str(clips[1]) + ",1e-3\n")
    rows = featurize_records([str(c) for c in clips], f"file:{csv}")
    np.testing.assert_allclose(rows, [[0.5, 3], [1.5, 1e-3], [2.5, -1]], rtol=1e-6)
    fs = get_feature_set(f"file:{csv}")
    assert fs.columns == ("f1", "f2") and fs.config()["params"]["path"] == str(csv.resolve())
    with pytest.raises(ConfigError, match="looked up by the clip's path"):
        fs(np.zeros(1600, np.float32), sample_rate_hz=16000)


def test_npz_round_trip(tmp_path, clips):
    npz = tmp_path / "feats.npz"
    X = np.arange(6, dtype=np.float64).reshape(3, 2)
    np.savez(npz, paths=np.array([str(c) for c in clips]), X=X)
    np.testing.assert_array_equal(featurize_records(clips[::-1], f"file:{npz}"), X[::-1])


@pytest.mark.parametrize(
    "text, message",
    [
        ("path,f1\naudio/c0.wav,1\naudio/c1.wav,2\n", r"1 of 3 clips are not in .*feats.csv \(first: .*c2.wav\)"),
        ("path,f1,emotion\naudio/c0.wav,1,happy\n", r"column 'emotion' is not numeric \(line 2: 'happy'\)"),
        ("name,f1\naudio/c0.wav,1\n", "needs a header with a 'path' column"),
        ("path,f1\naudio/c0.wav,1\n./audio/c0.wav,2\n", "twice"),
        ("path,f1\naudio/c0.wav,nan\n", "non-finite value in column 'f1'"),
        ("path\naudio/c0.wav\n", "no feature columns"),
    ],
)
def test_csv_errors_are_one_line(tmp_path, clips, text, message):
    csv = tmp_path / "feats.csv"
    csv.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        featurize_records(clips, f"file:{csv}")
    assert "\n" not in str(error.value)


def test_npz_with_objects_and_missing_files_are_refused(tmp_path, clips):
    npz = tmp_path / "objects.npz"
    np.savez(npz, paths=np.array([str(c) for c in clips], dtype=object), X=np.zeros((3, 2)))
    with pytest.raises(ConfigError, match="need pickle"):
        get_feature_set(f"file:{npz}")
    with pytest.raises(ConfigError, match="does not exist"):
        get_feature_set(f"file:{tmp_path / 'nope.csv'}")


def test_evaluate_cli_on_a_users_feature_file(tmp_path, capsys):
    """A CSV corpus + a CSV of features: the classifier reads the file, no audio feature is computed."""
    from emovox.testing import speech_like, write_audio

    rng = np.random.default_rng(0)
    manifest, feats = ["path,label,speaker"], ["path,a,b,c"]
    for speaker in range(4):
        for k, label in enumerate(("happy", "sad")):
            for take in range(4):
                path = tmp_path / "audio" / f"s{speaker}_{label}_{take}.wav"
                path.parent.mkdir(exist_ok=True)
                write_audio(path, speech_like(0.3, seed=take), sample_rate_hz=16000)
                manifest.append(f"{path},{label},spk{speaker}")
                a, b, c = rng.normal(size=3) + (6.0 * k, 0.0, 0.0)
                feats.append(f"audio/{path.name},{a},{b},{c}")
    (tmp_path / "mine.csv").write_text("\n".join(manifest) + "\n")
    (tmp_path / "feats.csv").write_text("\n".join(feats) + "\n")
    out = tmp_path / "run"
    argv = [
        "evaluate",
        "--corpus",
        f"csv:{tmp_path / 'mine.csv'}",
        "--features",
        f"file:{tmp_path / 'feats.csv'}",
        "--model",
        "logreg",
        "--tune",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--quiet",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["features"] == f"file:{tmp_path / 'feats.csv'}"
    assert result["config"]["model_config"]["classifier"] == "linear" and result["config"]["model_config"]["tune"]
    assert result["pooled"]["uar"] > 0.9 and "inner_uar" in result["folds"][0]["model"]
    assert not (tmp_path / "cache").exists(), "file features are read, not computed or cached"


def test_cli_classifier_without_features_exits_2(tmp_path, capsys):
    code = main(["evaluate", "--corpus", "emodb", "--model", "gbt", "--out", str(tmp_path / "x"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "pass --features NAME" in err


@pytest.mark.corpora
@pytest.mark.skipif(not (CORPORA / "emodb").is_dir(), reason=f"no EMO-DB under {CORPORA}")
def test_cli_gbt_on_egemaps_writes_the_model_config(tmp_path, capsys):
    pytest.importorskip("opensmile")
    out = tmp_path / "run"
    argv = [
        "evaluate",
        "--corpus",
        "emodb",
        "--max-speakers",
        "2",
        "--features",
        "egemaps",
        "--model",
        "gbt",
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
    config = result["config"]["model_config"]
    assert (config["name"], config["feature_set"], config["learning_rate"]) == ("gbt", "egemaps", 0.1)
    assert "HistGradientBoosting" in config["estimator"] and config["class_weight"].startswith("balanced")
    assert len(result["folds"]) == 2 and result["folds"][0]["model"]["max_iter"] == 100
    assert result["pooled"]["uar"] > 0.25  # 7 classes: chance 1/7; one training speaker per fold
    assert set(result["predictions"][0]["scores"]) == set(result["classes"])
