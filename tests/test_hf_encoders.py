"""Hugging Face speech encoders under emovox's heads: wav2vec 2.0, HuBERT, WavLM, data2vec-audio, Whisper.

Each family is a tiny randomly initialised model built here from a ``transformers``
config (2 blocks, hidden size 32) and saved with ``save_pretrained``: no weights
are downloaded. Skipped when transformers is not installed.
"""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

transformers = pytest.importorskip("transformers", reason="the Hugging Face encoders need transformers (emovox[hf])")
import torch

from emovox.cli.main import main
from emovox.errors import ConfigError, FeatureError, ModelError
from emovox.testing import speech_like, write_two_emotion_corpus

torch.set_num_threads(1)
FAMILIES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper")
N_LAYERS, D_MODEL = 2, 32
_CONV = {"conv_dim": (32, 32, 32), "conv_stride": (5, 4, 4), "conv_kernel": (10, 8, 4), "conv_bias": True}
_BODY = {"hidden_size": D_MODEL, "num_hidden_layers": N_LAYERS, "num_attention_heads": 2, "intermediate_size": 64}


def tiny_config(model_type: str):
    """A 2-block, 32-wide config of ``model_type`` (a conv stack of stride 80: 200 frames per second)."""
    if model_type == "whisper":
        return transformers.WhisperConfig(
            d_model=D_MODEL,
            encoder_layers=N_LAYERS,
            encoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_layers=1,
            decoder_attention_heads=2,
            decoder_ffn_dim=64,
            num_mel_bins=80,
            max_source_positions=1500,
            max_target_positions=16,
            vocab_size=16,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=3,
        )
    pos = {"num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2, "vocab_size": 8}
    if model_type == "wav2vec2":
        return transformers.Wav2Vec2Config(**_CONV, **_BODY, **pos)
    if model_type == "hubert":
        return transformers.HubertConfig(**_CONV, **_BODY, **pos)
    if model_type == "wavlm":
        return transformers.WavLMConfig(**_CONV, **_BODY, **pos, num_buckets=16, max_bucket_distance=64)
    return transformers.Data2VecAudioConfig(
        **_CONV, **_BODY, num_conv_pos_embeddings=3, conv_pos_kernel_size=5, num_conv_pos_embedding_groups=2
    )


def save_tiny(folder, model_type: str, *, seed: int = 0, license_line: str | None = None):
    """Save a random tiny model of ``model_type`` (and its feature extractor's settings) into ``folder``."""
    torch.manual_seed(seed)
    config = tiny_config(model_type)
    if model_type == "whisper":
        model = transformers.WhisperModel(config)
        transformers.WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    else:
        model = transformers.AutoModel.from_config(config)
        transformers.Wav2Vec2FeatureExtractor(do_normalize=model_type != "hubert").save_pretrained(folder)
    model.save_pretrained(folder)
    if license_line:
        (folder / "README.md").write_text(f"---\n{license_line}\ntags:\n- audio\n---\n# tiny\n")
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf-models")
    return {
        family: save_tiny(root / family, family, license_line="license: mit" if family == "wavlm" else None)
        for family in FAMILIES
    }


@pytest.fixture
def hf_recipe():
    """``hf-linear`` registered for the test, and unregistered after it unless emovox.recipes registers it itself.

    (Registered for good, it would change other tests' "--backbone is only used by --recipe whisper-linear".)
    """
    from emovox.training import recipes

    recipes.recipe_names()  # import what emovox.recipes registers first
    registered_before = "hf-linear" in recipes._RECIPES
    from emovox.recipes.hf import build_recipe

    recipes.register_recipe("hf-linear", build_recipe)  # the same builder again: harmless
    yield
    if not registered_before:
        recipes._RECIPES.pop("hf-linear", None)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """4 speakers x 2 emotions x 3 clips (0.6-1.1 s): 'angry' loud and high, 'sad' soft and low."""
    return write_two_emotion_corpus(tmp_path_factory.mktemp("hf-data"), angry_extra_s=0.1)


@pytest.mark.parametrize("family", FAMILIES)
def test_hidden_states_shapes_and_description(models, family):
    from emovox.models.hf_encoder import load_hf_encoder

    encoder = load_hf_encoder(models[family])
    y = torch.from_numpy(np.stack([speech_like(1.0, seed=s) for s in (0, 1)]))
    with torch.inference_mode():
        states = encoder.hidden_states(y)
        again = encoder.hidden_states(y[:1])
    frames = 50 if family == "whisper" else 199  # Whisper: 100 log-mel frames a second halved; else stride 80
    assert tuple(states.shape) == (2, N_LAYERS + 1, frames, D_MODEL) and states.dtype == torch.float32
    assert torch.isfinite(states).all() and not torch.allclose(states[0], states[1])
    torch.testing.assert_close(again[0], states[0], rtol=1e-4, atol=1e-4)  # a batch changes nothing
    info = encoder.describe()
    assert info["model_type"] == family and (info["n_layers"], info["d_model"]) == (N_LAYERS, D_MODEL)
    assert re.fullmatch(r"[0-9a-f]{64}", info["revision"]) and info["revision_kind"] == "sha256-of-weight-files"
    assert info["license"] == ("mit" if family == "wavlm" else "unknown: check the model's card")
    expected_frontend = (
        {"kind": "whisper-log-mel", "n_mels": 80}
        if family == "whisper"
        else {"kind": "waveform", "normalize": family != "hubert"}
    )
    assert info["frontend"] == expected_frontend


def test_threads_sharing_one_encoder_get_their_own_states(models):
    from concurrent.futures import ThreadPoolExecutor

    from emovox.models.hf_encoder import load_hf_encoder

    encoder = load_hf_encoder(models["wavlm"])
    clips = [torch.from_numpy(speech_like(0.5 + 0.1 * k, seed=k))[None] for k in range(6)]
    with torch.inference_mode():
        alone = [encoder.hidden_states(c) for c in clips]
        with ThreadPoolExecutor(3) as pool:
            together = list(pool.map(encoder.hidden_states, clips * 3))
    for k, states in enumerate(together):
        torch.testing.assert_close(states, alone[k % len(clips)])


def test_the_hf_feature_set_is_finite_deterministic_and_cached(models, manifest, tmp_path):
    from emovox.features import featurize_records, get_feature_set

    name = f"hf:{models['wav2vec2']}"
    fs = get_feature_set(name)
    y = speech_like(1.2, seed=3)
    x = fs(y, sample_rate_hz=16000)
    assert x.shape == ((N_LAYERS + 1) * 2 * D_MODEL,) and np.isfinite(x).all()
    np.testing.assert_array_equal(fs(y, sample_rate_hz=16000), x)
    assert fs.config()["libraries"]["revision"] == get_feature_set(name).config()["libraries"]["revision"]
    clips = [manifest.parent / "s0_sad_0.wav", manifest.parent / "s1_angry_1.wav"]
    rows = featurize_records(clips, name, cache_dir=tmp_path / "cache")
    assert rows.shape == (2, x.size) and len(list((tmp_path / "cache").rglob("*.npy"))) == 2
    np.testing.assert_array_equal(featurize_records(clips, name, cache_dir=tmp_path / "cache"), rows)
    with pytest.raises(FeatureError, match="16 kHz"):
        fs(y, sample_rate_hz=8000)


def test_evaluate_runs_on_hf_features(models, manifest, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(
        [
            "evaluate",
            "--corpus",
            f"csv:{manifest}",
            "--features",
            f"hf:{models['wavlm']}",
            "--model",
            "linear",
            "--protocol",
            "speaker-kfold",
            "--folds",
            "2",
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    result = json.loads((out / "result.json").read_text())
    assert result["speaker_independent"] and result["n_samples"] == 24


def _train(backbone, manifest, out, *extra):
    return main(
        [
            "train",
            "--recipe",
            "hf-linear",
            "--backbone",
            str(backbone),
            "--corpus",
            f"csv={manifest}",
            "--out",
            str(out),
            "--no-progress",
            "--threads",
            "1",
            *extra,
        ]
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_train_predict_and_export_through_the_cli(models, manifest, family, tmp_path, capsys, monkeypatch, hf_recipe):
    from emovox.inference import load_model
    from emovox.models.hf_encoder import load_hf_encoder
    from emovox.recipes.hf import pooled_features

    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert _train(models[family], manifest, out) == 0
    printed = capsys.readouterr().out
    assert "trained hf-linear on 24 clips" in printed and "inner speaker-CV UAR" in printed, printed
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["architecture"]["name"] == "hf-head" and config["task"]["labels"] == ["sad", "angry"]
    backbone = config["backbone"]
    assert backbone["model_type"] == family and backbone["name"] == str(models[family])
    assert backbone["layers_used"] == config["architecture"]["params"]["layers"] and backbone["n_layers"] == N_LAYERS
    assert re.fullmatch(r"[0-9a-f]{64}", backbone["revision"]) and backbone["license"]
    assert config["calibration"]["temperature"] > 0 and 0 <= config["threshold"] <= 1

    # The artifact loads without the model folder and computes what the head was fitted on.
    clip = manifest.parent / "s0_angry_2.wav"
    predictor = load_model(out / "model", backend="torch")
    prediction = predictor.predict(clip)
    assert prediction.label in ("sad", "angry", "unknown") and abs(sum(prediction.scores.values()) - 1) < 1e-5
    module = predictor.backend.module
    pooled = pooled_features([clip], load_hf_encoder(models[family]))
    x = torch.from_numpy(pooled[:, list(module.layers)].reshape(1, -1))
    expected = module.classify(x).detach().numpy()
    np.testing.assert_allclose(predictor.signal_logits(predictor.load(clip))[None], expected, rtol=1e-4, atol=1e-4)
    assert main(["predict", str(clip), "--model", str(out / "model"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] in ("sad", "angry", "unknown")

    # ONNX: backbone + head in one graph (the exporter checks parity at two lengths); no torch needed to run it.
    assert main(["export", str(out / "model"), "--format", "onnx"]) == 0
    onnx = load_model(out / "model", backend="onnx")
    for label in ("sad", "angry"):
        np.testing.assert_allclose(onnx.predict(clip).scores[label], prediction.scores[label], atol=1e-4)

    # Streaming (the live and WebSocket front ends' engine) runs on the torch-free backend too.
    from emovox.inference.streaming import StreamEngine

    engine = StreamEngine(onnx, window_s=1.0, hop_s=0.5, vad="off", smoothing=1)
    events = engine.feed(speech_like(2.0, seed=9), 16000) + engine.close()
    assert events and all(abs(sum(e.scores.values()) - 1) < 1e-4 for e in events if e.scores)


def test_held_out_folds_calibrate_and_report(models, manifest, tmp_path, capsys, monkeypatch, hf_recipe):
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert _train(models["hubert"], manifest, out, "--folds", "4") == 0
    printed = capsys.readouterr().out
    assert "held out: leave-one-speaker-out over 4 speakers" in printed, printed
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["calibration"]["fitted_on"].startswith("out-of-fold logits, leave-one-speaker-out")
    assert config["metrics"]["heldout"]["n_folds"] == 4 and (out / "report.md").is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "needs --backbone DIR"),
        (["--backbone", "/nowhere/model"], "neither a folder nor a model in the local Hugging Face cache"),
        (["--backbone", "not-cached/tiny-model"], "pass the model's folder"),
        (["--backbone", "/nowhere", "--epochs", "3"], "drop --epochs"),
    ],
)
def test_recipe_errors_exit_2_with_one_line(manifest, tmp_path, capsys, extra, message, hf_recipe):
    code = main(["train", "--recipe", "hf-linear", "--corpus", f"csv={manifest}", "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_unsupported_model_types_and_missing_transformers_are_one_line_errors(tmp_path, monkeypatch):
    from emovox.models.hf_encoder import load_hf_encoder

    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConfigError, match="'bert' is not a supported speech encoder; emovox loads wav2vec2, hubert"):
        load_hf_encoder(folder)
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ConfigError, match=r'pip install "emovox\[hf\]"'):
        load_hf_encoder(folder)


def test_a_name_resolves_only_in_the_local_cache(models, tmp_path, monkeypatch):
    import shutil

    from huggingface_hub import constants

    from emovox.models.hf_encoder import load_hf_encoder

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tiny-w2v"
    shutil.copytree(models["wav2vec2"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # belt and braces: a lookup must never reach the network
    info = load_hf_encoder("someone/tiny-w2v").describe()
    assert (info["name"], info["revision"], info["revision_kind"]) == ("someone/tiny-w2v", commit, "hf-cache-commit")
    with pytest.raises(ConfigError, match="neither a folder nor a model in the local Hugging Face cache"):
        load_hf_encoder("someone/not-there")


def test_head_variants_round_trip_and_export(models, tmp_path):
    """Learned layer weighting, attentive pooling and an MLP head: saved, loaded, exported (the engine-trained heads)."""
    from emovox.export.onnx import export_onnx
    from emovox.inference import load_model
    from emovox.models.artifact import load_artifact, make_config, save_artifact
    from emovox.models.hf_encoder import load_hf_encoder
    from emovox.models.hf_head import HFHeadClassifier
    from emovox.models.spec import TaskSpec

    encoder = load_hf_encoder(models["data2vec-audio"])
    torch.manual_seed(1)
    model = HFHeadClassifier(
        3,
        encoder=encoder.to_params(),
        layers=[1, 2],
        weighting="softmax",
        pooling="attentive",
        head={"kind": "mlp", "hidden": 16},
    )
    model.encoder.model.load_state_dict(encoder.model.state_dict())
    with torch.no_grad():
        model.layer_logits.copy_(torch.tensor([0.3, -0.2]))
    model.eval()
    spec = TaskSpec(labels=("a", "b", "c"), sample_rate_hz=16000, clip_s=3.0, input_kind="waveform")
    params = {
        "encoder": encoder.to_params(),
        "layers": [1, 2],
        "weighting": "softmax",
        "pooling": "attentive",
        "head": {"kind": "mlp", "hidden": 16},
    }
    config = make_config(spec, "hf-head", params, preprocessing={"crop": "none"})
    save_artifact(tmp_path / "m", model, config)
    loaded, _ = load_artifact(tmp_path / "m")
    y = torch.from_numpy(speech_like(1.0, seed=5))[None]
    with torch.inference_mode():
        assert loaded.embedding(y).shape == (1, 2 * D_MODEL)
        torch.testing.assert_close(loaded(y), model(y))
    export_onnx(tmp_path / "m", tmp_path / "m")
    torch_scores = load_model(tmp_path / "m", backend="torch").predict(y[0].numpy(), sample_rate=16000).scores
    onnx_scores = load_model(tmp_path / "m", backend="onnx").predict(y[0].numpy(), sample_rate=16000).scores
    assert max(abs(torch_scores[k] - onnx_scores[k]) for k in "abc") < 1e-4
    with pytest.raises(ConfigError, match="attentive pooling reads one weighted sequence"):
        HFHeadClassifier(2, encoder=encoder.to_params(), layers=[0], pooling="attentive")
    with pytest.raises(ConfigError, match="distinct hidden-state indices in 0..2"):
        HFHeadClassifier(2, encoder=encoder.to_params(), layers=[3])


def test_a_family_that_cannot_be_exported_says_so_in_one_line(models, tmp_path, monkeypatch):
    from emovox.export.onnx import export_onnx
    from emovox.models import hf_head
    from emovox.models.artifact import make_config, save_artifact
    from emovox.models.hf_encoder import load_hf_encoder
    from emovox.models.spec import TaskSpec

    encoder = load_hf_encoder(models["whisper"])
    model = hf_head.HFHeadClassifier(2, encoder=encoder.to_params(), layers=[2])
    model.encoder.model.load_state_dict(encoder.model.state_dict())
    spec = TaskSpec(labels=("a", "b"), sample_rate_hz=16000, clip_s=3.0, input_kind="waveform")
    config = make_config(
        spec, "hf-head", {"encoder": encoder.to_params(), "layers": [2]}, preprocessing={"crop": "none"}
    )
    save_artifact(tmp_path / "m", model.eval(), config)
    monkeypatch.setitem(hf_head.ONNX_UNSUPPORTED, "whisper", "a made-up reason for this test")
    with pytest.raises(ModelError) as caught:
        export_onnx(tmp_path / "m", tmp_path / "m")
    text = str(caught.value)
    assert "\n" not in text and "Whisper (whisper) encoder cannot be exported to ONNX: a made-up reason" in text
    assert not (tmp_path / "m" / "model.onnx").exists()
