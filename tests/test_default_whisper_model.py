"""The default model shipped inside the package (Whisper base encoder, truncated, + emotion head).

These tests use the shipped files themselves (``src/emovox/pretrained/default``),
not a stand-in: loading, one real prediction, ONNX against torch, the ONNX path
in a process where torch cannot be imported, named models and the licence notice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import emovox
from emovox.errors import ModelError
from emovox.inference import default_model_dir, load_model
from emovox.inference.predictor import pretrained_dir, resolve_model_dir, shipped_models

EXAMPLE = Path(emovox.__file__).parent / "examples" / "hello.flac"
EMOVOX7 = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
#: RAVDESS actor 1, angry, strong intensity ("Kids are talking by the door").
ANGRY = "ravdess/Audio_Speech_Actors_01-24/Actor_01/03-01-05-02-01-01-01.flac"


def _corpus_clip(relative: str) -> str:
    from emovox.corpora import default_corpora_root

    path = default_corpora_root() / relative
    if not path.is_file():
        pytest.skip(f"corpus clip {path} not available")
    return str(path)


@pytest.fixture(scope="module")
def onnx_model():
    return load_model(backend="onnx", num_threads=1)


@pytest.fixture(scope="module")
def torch_model():
    return load_model(backend="torch", num_threads=1)


def test_shipped_artifact_is_complete_small_and_carries_the_whisper_licence():
    directory = default_model_dir()
    config = json.loads((directory / "config.json").read_text())
    assert {p.name for p in directory.iterdir()} >= {
        "config.json",
        "model.safetensors",
        "model.onnx",
        "LICENSE-whisper.txt",
    }
    licence = (directory / "LICENSE-whisper.txt").read_text()
    assert "MIT License" in licence and "Copyright (c) 2022 OpenAI" in licence
    assert config["architecture"]["name"].startswith("whisper")
    assert config["task"]["labels"] == EMOVOX7
    assert config["calibration"]["temperature"] > 0 and 0.0 < config["threshold"] < 1.0
    card = config["model_card"]
    for needed in ("MIT licence", "CC BY-NC-SA 4.0", "CC BY-NC-ND 4.0", "Speaker-independent", "Intended use"):
        assert needed in card
    figures = config["metrics"]["speaker_independent"]
    assert set(figures) >= {"ravdess", "emodb", "emovo", "turev", "all"}  # the card's table; answers: below
    # only the blocks the head reads are shipped, stored in float16
    params = config["architecture"]["params"]
    encoder = params["encoder"]
    assert max(params["layers"]) <= encoder["n_layers"] < 6
    from safetensors import safe_open

    with safe_open(str(directory / "model.safetensors"), framework="np") as handle:
        blocks = {k.split(".")[2] for k in handle.keys() if k.startswith("encoder.layers.")}
        assert str(handle.get_tensor("encoder.layers.0.fc1.weight").dtype) == "float16"
    assert len(blocks) == encoder["n_layers"]
    if config["onnx"]["precision"].startswith("float16"):  # one copy of the weights, read by both backends
        import onnx

        graph = onnx.load(str(directory / "model.onnx"), load_external_data=False).graph
        external = [i for i in graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL]
        assert external and {e.value for i in external for e in i.external_data if e.key == "location"} == {
            "model.safetensors"
        }
        assert (directory / "model.onnx").stat().st_size < 5_000_000
    # both shipped models together stay well under the 60 MB package budget
    total = sum(p.stat().st_size for p in pretrained_dir().rglob("*") if p.is_file())
    assert total < 60_000_000


def test_load_model_without_arguments_is_the_default_model(onnx_model):
    assert onnx_model.info.config["architecture"]["name"].startswith("whisper")
    assert resolve_model_dir(None) == resolve_model_dir("default") == default_model_dir()
    assert onnx_model.backend.name == "onnx"


@pytest.mark.corpora
def test_answers_on_real_clips_are_the_shipped_ones_and_mostly_right(onnx_model):
    """20 real clips predicted again: the stored answers to 1e-5, and labels scored against the corpora's."""
    import shipped_answers

    if shipped_answers.missing_clips():
        pytest.skip(f"corpus clips not available: {shipped_answers.missing_clips()[:2]}")
    stored = json.loads(shipped_answers.ANSWERS.read_text())
    clips, expected = list(stored["clips"]), stored["models"]["default"]
    assert list(onnx_model.labels) == expected["labels"] == EMOVOX7
    scores = shipped_answers.answers(onnx_model, clips)
    np.testing.assert_allclose(scores, expected["scores"], atol=1e-5)
    predicted = [EMOVOX7[i] for i in scores.argmax(1)]
    assert shipped_answers.uar(list(stored["clips"].values()), predicted, EMOVOX7) >= 0.8  # chance: 1/7


@pytest.mark.corpora
def test_real_clip_gets_a_sensible_calibrated_prediction(onnx_model, torch_model):
    clip = _corpus_clip(ANGRY)
    for model in (onnx_model, torch_model):
        p = model.predict(clip)
        assert p.top_class == "angry"
        assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert set(p.scores) == set(EMOVOX7) and 0.0 < p.confidence <= 1.0
        assert p.end_s == pytest.approx(4.0, abs=0.5)


def test_onnx_and_torch_agree_on_the_shipped_model(onnx_model, torch_model):
    clips = [str(EXAMPLE)]
    try:
        clips.append(_corpus_clip(ANGRY))
    except pytest.skip.Exception:
        pass
    precision = onnx_model.info.config["onnx"]["precision"]
    for clip in clips:
        a, b = onnx_model.predict(clip), torch_model.predict(clip)
        diff = max(abs(a.scores[k] - b.scores[k]) for k in EMOVOX7)
        assert a.top_class == b.top_class
        # float16 weight storage is exact (same float32 computation); int8 is measured in the card
        assert diff < (1e-4 if precision.startswith("float16") else 0.1), (clip, precision, diff)


def test_the_onnx_path_predicts_with_torch_unimportable():
    code = (
        "import sys, json; sys.modules['torch'] = None\n"
        "import emovox\n"
        "m = emovox.load_model()\n"
        f"p = m.predict({str(EXAMPLE)!r})\n"
        "from emovox.cli.main import main\n"
        f"rc = main(['predict', '--json', '-q', {str(EXAMPLE)!r}])\n"
        "print(json.dumps({'backend': m.backend.name, 'label': p.label, 'sum': sum(p.scores.values()), 'rc': rc}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    cli_record = json.loads(done.stdout[: done.stdout.rindex("]") + 1])[0]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "onnx" and result["rc"] == 0
    assert result["sum"] == pytest.approx(1.0, abs=1e-5)
    assert result["label"] in (*EMOVOX7, "unknown") and cli_record["label"] == result["label"]


def test_named_models_and_unknown_names():
    assert {"default", "cnn"} <= set(shipped_models())
    cnn = load_model("cnn", backend="onnx")
    assert cnn.info.config["architecture"]["name"] == "flagship"
    assert resolve_model_dir("cnn") == pretrained_dir() / "cnn"
    with pytest.raises(ModelError, match=r"no model named 'tiny-whisper'.*shipped: cnn, default"):
        load_model("tiny-whisper")


def test_cli_fast_is_the_cnn_and_an_unknown_model_name_exits_2(capsys):
    from emovox.cli.main import main

    assert main(["predict", "--fast", "--json", "-q", str(EXAMPLE)]) == 0
    fast = json.loads(capsys.readouterr().out)[0]
    assert main(["predict", "--model", "cnn", "--json", "-q", str(EXAMPLE)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["scores"] == pytest.approx(fast["scores"])
    assert main(["predict", "--model", "nosuch", str(EXAMPLE)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no model named 'nosuch'" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--fast", "--model", "cnn", str(EXAMPLE)])
    assert exit_info.value.code == 2


def test_truncated_encoder_states_equal_the_full_encoder_states():
    import torch

    from emovox.models.whisper_encoder import WhisperEncoder, WhisperEncoderConfig, truncate_encoder

    torch.manual_seed(0)
    full = WhisperEncoder(WhisperEncoderConfig(n_mels=16, d_model=32, n_heads=2, n_layers=3, n_ctx=50)).eval()
    cut = truncate_encoder(full, 2)
    assert cut.config.n_layers == 2 and not cut.config.final_layer_norm and not hasattr(cut, "layer_norm")
    mel = torch.randn(1, 16, 40)
    with torch.inference_mode():
        a, b = full(mel), cut(mel)
    assert len(b) == 3 and all(torch.equal(x, y) for x, y in zip(a[:3], b))
    assert truncate_encoder(full, 3).config.final_layer_norm
    with pytest.raises(ModelError, match="cannot keep 4 blocks"):
        truncate_encoder(full, 4)
    np.testing.assert_array_equal(a[3].numpy(), truncate_encoder(full, 3)(mel)[3].detach().numpy())


def test_float16_weights_shared_between_safetensors_and_onnx(tmp_path):
    """The shipped layout on a tiny random model: float16 encoder, ONNX reading it from model.safetensors."""
    import onnx
    import torch

    from emovox.export.onnx import export_onnx, share_weights
    from emovox.models.artifact import make_config, save_artifact
    from emovox.models.spec import TaskSpec
    from emovox.models.whisper_classifier import WhisperEmotionClassifier
    from emovox.models.whisper_encoder import half_encoders

    torch.manual_seed(0)
    encoder = {"n_mels": 80, "d_model": 64, "n_heads": 2, "n_layers": 2, "n_ctx": 1500, "final_layer_norm": False}
    model = WhisperEmotionClassifier(3, encoder=encoder, layers=(0, 1, 2)).eval()
    spec = TaskSpec(labels=("a", "b", "c"), sample_rate_hz=16000, clip_s=1.0, input_kind="waveform")
    config = make_config(
        spec,
        "whisper-linear",
        {"encoder": encoder, "layers": [0, 1, 2]},
        preprocessing={"crop": "none", "trim_silence": False, "normalize": None},
    )
    save_artifact(tmp_path, half_encoders(model), config)
    export_onnx(tmp_path, tmp_path, half_weights=True)
    unshared = (tmp_path / "model.onnx").stat().st_size
    shared = share_weights(tmp_path)
    assert shared > 100_000 and (tmp_path / "model.onnx").stat().st_size < unshared - 0.9 * shared
    graph = onnx.load(str(tmp_path / "model.onnx"), load_external_data=False).graph
    assert any(i.data_location == onnx.TensorProto.EXTERNAL for i in graph.initializer)
    x = (0.1 * np.random.default_rng(1).standard_normal(12345)).astype(np.float32)
    a = load_model(tmp_path, backend="onnx").probabilities([x])
    b = load_model(tmp_path, backend="torch").probabilities([x])
    np.testing.assert_allclose(a, b, atol=1e-5)
    with pytest.raises(ModelError, match="not both"):
        export_onnx(tmp_path, tmp_path / "x", quantize=True, half_weights=True)
