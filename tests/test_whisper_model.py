"""The Whisper-backed emotion model: head fitting, training to an artifact, prediction through the product path.

A tiny random encoder (2 layers, d_model 32) built here stands in for the real
one, which cannot ship with the tests (see docs/whisper_backbone.md).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emovox.cli.main import main
from emovox.errors import ConfigError, ModelError
from emovox.models.whisper_classifier import flatten_layers
from emovox.models.whisper_encoder import WhisperEncoderConfig
from emovox.testing import write_tiny_whisper_encoder, write_two_emotion_corpus
from emovox.training.whisper_fit import fit_linear_head

torch.set_num_threads(1)
TINY = WhisperEncoderConfig(n_mels=80, d_model=32, n_heads=2, n_layers=2, n_ctx=1500)


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return write_tiny_whisper_encoder(tmp_path_factory.mktemp("tiny-whisper"), TINY)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """4 speakers x 2 emotions x 3 clips (0.6-1.1 s): 'angry' loud and high, 'sad' soft and low."""
    return write_two_emotion_corpus(tmp_path_factory.mktemp("own-data"), angry_extra_s=0.1)


def test_head_selection_finds_the_informative_layer_and_keeps_out_of_fold_logits():
    rng = np.random.default_rng(0)
    n, n_states, d = 80, 3, 4
    y = np.repeat([0, 1], n // 2)
    pooled = rng.normal(size=(n, n_states, 2, d))
    pooled[:, 1, 0, 0] += 3.0 * y  # only hidden state 1 carries the class
    speakers = [f"s{i % 8}" for i in range(n)]
    fit = fit_linear_head(pooled, y, speakers, n_classes=2, Cs=(0.1, 1.0))
    assert fit.layers == (1,) and fit.inner_uar > 0.9
    assert fit.oof_logits.shape == (n, 2) and (fit.oof_logits.argmax(1) == y).mean() > 0.9
    assert fit.coef.shape == (2, 2 * d) and (fit.logits(pooled).argmax(1) == y).mean() > 0.9
    assert flatten_layers(pooled, (0, 2)).shape == (n, 2 * 2 * d)
    # Rows of another corpus join every training set; validation (out-of-fold rows) stays on the target's.
    extra_y = np.repeat([0, 1], 20)
    extra_x = rng.normal(size=(40, n_states, 2, d))
    extra_x[:, 1, 0, 0] += 3.0 * extra_y
    with_extra = fit_linear_head(
        pooled, y, speakers, n_classes=2, Cs=(0.1,), layer_sets=[(1,)], extra=(extra_x, extra_y)
    )
    assert with_extra.oof_logits.shape == (n, 2) and not np.allclose(with_extra.coef, fit.coef)
    # Augmented copies are aligned with the rows and only ever join training sets.
    copy = pooled + 0.1 * rng.normal(size=pooled.shape)
    with_copies = fit_linear_head(pooled, y, speakers, n_classes=2, Cs=(0.1,), layer_sets=[(1,)], augmented=[copy])
    assert with_copies.oof_logits.shape == (n, 2) and not np.allclose(with_copies.coef, fit.coef)
    with pytest.raises(ConfigError, match="disagree"):
        fit_linear_head(pooled[:10], y, speakers, n_classes=2)
    with pytest.raises(ConfigError, match="needs at least 2 training speakers"):
        fit_linear_head(pooled, y, ["one"] * n, n_classes=2)


def test_train_predict_and_evaluate_through_the_product_path(encoder_dir, manifest, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--recipe",
            "whisper-linear",
            "--backbone",
            str(encoder_dir),
            "--corpus",
            f"csv={manifest}",
            "--out",
            str(out),
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "inner speaker-CV UAR" in printed
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["architecture"]["name"] == "whisper-linear"
    assert config["task"]["labels"] == ["sad", "angry"]
    assert config["preprocessing"]["crop"] == "none" and config["preprocessing"]["trim_silence"] is True
    assert config["calibration"]["temperature"] > 0 and 0 <= config["threshold"] <= 1
    assert config["training"]["encoder"]["d_model"] == 32 and len(config["training"]["encoder"]["sha256"]) == 64

    # The saved module computes exactly what the head was fitted on (features of the same clip).
    from emovox.inference import load_model
    from emovox.recipes.whisper import pooled_features

    clip = manifest.parent / "s0_angry_2.wav"
    predictor = load_model(out / "model", backend="torch")
    prediction = predictor.predict(clip)
    assert prediction.label in ("sad", "angry", "unknown") and abs(sum(prediction.scores.values()) - 1) < 1e-5
    module = predictor.backend.module
    pooled = pooled_features([clip], encoder_dir)
    x = (torch.from_numpy(flatten_layers(pooled, module.layers)).float() - module.feature_mean) / module.feature_scale
    expected = module.head(x).detach().numpy()
    np.testing.assert_allclose(predictor.signal_logits(predictor.load(clip))[None], expected, rtol=1e-4, atol=1e-4)

    assert main(["predict", str(clip), "--model", str(out / "model"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] in ("sad", "angry", "unknown")

    # Exports to ONNX (the exporter checks parity at two lengths) and predicts the same without torch.
    assert main(["export", str(out / "model"), "--format", "onnx"]) == 0
    onnx = load_model(out / "model", backend="onnx")
    np.testing.assert_allclose(onnx.predict(clip).scores["angry"], prediction.scores["angry"], atol=1e-4)

    from emovox.training.predict import ArtifactModel

    rows, _ = ArtifactModel(out / "model").scores([clip, manifest.parent / "s1_sad_0.wav"], ["sad", "angry"])
    np.testing.assert_allclose(rows[0], [prediction.scores["sad"], prediction.scores["angry"]], atol=1e-4)
    np.testing.assert_allclose(
        np.log(rows[0][1] / rows[0][0]),
        (expected[0, 1] - expected[0, 0]) / config["calibration"]["temperature"],
        rtol=1e-3,
    )


def test_augmented_features_are_reproducible_and_differ_from_the_clean_ones(encoder_dir, manifest, tmp_path):
    from emovox.augment import GaussianNoise
    from emovox.recipes.whisper import pooled_features

    clips = [manifest.parent / "s0_sad_0.wav", manifest.parent / "s1_angry_1.wav"]
    noise = GaussianNoise(snr_db=(10.0, 10.0))
    clean = pooled_features(clips, encoder_dir, cache_dir=tmp_path / "c")
    noisy = pooled_features(clips, encoder_dir, cache_dir=tmp_path / "c", augment=noise)
    again = pooled_features(clips, encoder_dir, augment=noise)  # no cache: recomputed, same generator
    assert noisy.shape == clean.shape and not np.allclose(noisy, clean)
    np.testing.assert_allclose(again, noisy, rtol=1e-5, atol=1e-5)
    assert len(list((tmp_path / "c").rglob("*.npy"))) == 4  # clean and noisy cached apart


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "needs --backbone DIR"),
        (["--backbone", "/nowhere/whisper"], "does not exist"),
        (["--backbone", "/nowhere", "--epochs", "3"], "drop --epochs"),
    ],
)
def test_whisper_recipe_errors_exit_2_with_one_line(manifest, tmp_path, capsys, extra, message):
    code = main(
        [
            "train",
            "--recipe",
            "whisper-linear",
            "--corpus",
            f"csv={manifest}",
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
            *extra,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_backbone_without_the_whisper_recipe_is_refused(manifest, tmp_path, capsys):
    code = main(
        ["train", "--recipe", "tiny", "--backbone", "/x", "--corpus", f"csv={manifest}", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--backbone is only used by --recipe" in err and "whisper-linear" in err


def test_layers_are_checked(encoder_dir):
    from emovox.models.whisper_classifier import WhisperEmotionClassifier

    with pytest.raises(ConfigError, match="distinct hidden-state indices in 0..2"):
        WhisperEmotionClassifier(2, encoder=TINY.to_dict(), layers=[3])
    with pytest.raises(ModelError, match="lacks"):
        WhisperEmotionClassifier(2, encoder={"d_model": 8}, layers=[0])
