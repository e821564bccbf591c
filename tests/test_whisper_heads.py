"""Heads beyond the linear probe, speaker-adaptive normalisation, and the truncated-encoder model.

A tiny random encoder (3 layers, d_model 32) stands in for Whisper base; the
real encoder, when present, is exercised by the shipping tests.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emovox.corpora import load_corpus
from emovox.errors import ConfigError
from emovox.inference.adaptation import speaker_centred, speaker_offset
from emovox.models.artifact import load_artifact
from emovox.models.whisper_classifier import pool_hidden_states
from emovox.models.whisper_encoder import WhisperEncoder, WhisperEncoderConfig, WhisperLogMel
from emovox.models.whisper_heads import PooledHead, WhisperHeadClassifier
from emovox.recipes.whisper import adapt_to_speaker, pooled_features, train_whisper_model
from emovox.testing import speech_like, write_tiny_whisper_encoder, write_two_emotion_corpus
from emovox.training.whisper_fit import fit_linear_head, fit_pooled_head

torch.set_num_threads(1)
TINY = WhisperEncoderConfig(n_mels=80, d_model=32, n_heads=2, n_layers=3, n_ctx=1500)


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return write_tiny_whisper_encoder(tmp_path_factory.mktemp("tiny-whisper"), TINY)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """4 speakers x 2 emotions x 3 clips: 'angry' loud and high, 'sad' soft and low (CSV layout)."""
    return load_corpus("csv", write_two_emotion_corpus(tmp_path_factory.mktemp("own-data")))


def _toy(n=96, n_states=3, d=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n // 3)
    pooled = rng.normal(size=(n, n_states, 2, d)).astype(np.float32)
    pooled[:, 1, 0, 0] += 4.0 * (y == 1) - 4.0 * (y == 2)
    pooled[:, 1, 1, 1] += 4.0 * (y == 2)
    return pooled, y, [f"s{i % 8}" for i in range(n)]


@pytest.mark.parametrize("kind", ["weighted", "mlp"])
def test_pooled_head_learns_and_keeps_out_of_fold_logits(kind):
    pooled, y, speakers = _toy()
    fit = fit_pooled_head(
        pooled, y, speakers, n_classes=3, kind=kind, hidden=16, epoch_grid=(5, 60), n_members=2, lr=1e-2
    )
    assert fit.epochs in (5, 60) and set(fit.inner_uar_by_epochs) == {5, 60}
    assert fit.inner_uar > 0.7 and fit.oof_logits.shape == (len(y), 3)  # chance: 0.33
    assert (fit.oof_logits.argmax(1) == y).mean() > 0.7
    assert (fit.logits(pooled).argmax(1) == y).mean() > 0.8
    head = fit.module()
    assert len(head.members) == 2
    if kind == "weighted":  # the informative hidden state gets the largest weight
        assert head.layer_weights().shape == (2, 3) and (head.layer_weights().argmax(1) == 1).all()
    # a class absent from the training rows still has a logit column
    keep = y != 2
    partial = fit_pooled_head(
        pooled[keep], y[keep], np.array(speakers)[keep], n_classes=3, kind=kind, hidden=8, epoch_grid=(5,)
    )
    assert partial.logits(pooled).shape == (len(y), 3)


def test_pooled_head_rejects_bad_input():
    pooled, y, speakers = _toy()
    with pytest.raises(ConfigError, match="disagree"):
        fit_pooled_head(pooled[:10], y, speakers, n_classes=3)
    with pytest.raises(ConfigError, match="at least 2 training speakers"):
        fit_pooled_head(pooled, y, ["one"] * len(y), n_classes=3)
    with pytest.raises(ConfigError, match="head kind"):
        PooledHead(3, 4, 2, kind="attention")


def test_linear_head_in_a_pooled_head_gives_the_logistic_regression_logits():
    pooled, y, speakers = _toy()
    fit = fit_linear_head(pooled, y, speakers, n_classes=3, Cs=(0.1,), layer_sets=[(0, 1)])
    head = PooledHead.from_linear_fit(fit, 4)
    with torch.inference_mode():
        got = head(torch.from_numpy(pooled[:, [0, 1]])).numpy()
    np.testing.assert_allclose(got, fit.logits(pooled), atol=1e-4)


def test_speaker_centred_subtracts_the_mean_of_k_clips_of_each_speaker():
    pooled, _, speakers = _toy(n=24)
    pooled[np.array(speakers) == "s3"] += 10.0  # a speaker offset
    centred = speaker_centred(pooled, speakers)
    for s in set(speakers):
        rows = centred[np.array(speakers) == s]
        np.testing.assert_allclose(rows.mean(axis=0), 0.0, atol=1e-5)
    few = speaker_centred(pooled, speakers, k=2, seed=1)
    assert abs(float(few[np.array(speakers) == "s3"].mean())) < 3.0  # the offset is gone
    assert not np.allclose(few, centred)
    np.testing.assert_array_equal(few, speaker_centred(pooled, speakers, k=2, seed=1))


@pytest.mark.parametrize("layers", [(0, 1), (1, 3), (0,)])
def test_truncated_model_reads_the_same_states_as_the_full_encoder(encoder_dir, layers):
    torch.manual_seed(1)
    full = WhisperEncoder(TINY).eval()
    model = WhisperHeadClassifier(2, encoder=TINY.to_dict(), layers=layers, head={"kind": "mlp", "hidden": 8})
    model.load_encoder(full.state_dict())
    assert model.depth == max(layers) and len(model.encoder.layers) == max(layers)
    y = torch.from_numpy(speech_like(0.8, seed=3))[None]
    with torch.inference_mode():
        expected = pool_hidden_states(full(WhisperLogMel()(y)))[:, list(layers)]
        torch.testing.assert_close(model.eval().pooled(y), expected, atol=1e-5, rtol=1e-5)
        assert model(y).shape == (1, 2)
    with pytest.raises(ConfigError, match="distinct hidden-state indices"):
        WhisperHeadClassifier(2, encoder=TINY.to_dict(), layers=(4,), head={"kind": "mlp"})


@pytest.mark.parametrize("head,adapt", [("weighted", False), ("linear", True), ("linear", False)])
def test_train_whisper_model_saves_a_calibrated_truncated_artifact(
    encoder_dir, records, tmp_path, head, adapt, monkeypatch
):
    options = {"Cs": (0.1,)} if head == "linear" else {"hidden": 8, "epoch_grid": (5, 10)}
    layers = None if (head == "linear" and not adapt) else (0, 1)
    summary = train_whisper_model(
        records,
        encoder_dir,
        tmp_path / "m",
        head=head,
        layers=layers,
        head_options=options,
        adapt=adapt,
        cache_dir=tmp_path / "cache",
    )
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert summary["classes"] == ["sad", "angry"] and summary["temperature"] > 0
    assert config["calibration"]["temperature"] == pytest.approx(summary["temperature"], rel=1e-4)
    assert config["training"]["adapt"] is adapt and config["training"]["head"] == head
    model, _ = load_artifact(tmp_path / "m")
    if layers is None:  # linear on every state: the original architecture
        assert config["architecture"]["name"] == "whisper-linear"
        return
    assert config["architecture"]["name"] == "whisper-head"
    assert summary["depth"] == 1 and model.depth == 1 and len(model.encoder.layers) == 1
    pooled = pooled_features(records, encoder_dir, cache_dir=tmp_path / "cache")
    y = torch.from_numpy(speech_like(0.7, seed=5, f0_hz=220, amplitude=0.7))
    with torch.inference_mode():
        logits = model(y[None])
    assert logits.shape == (1, 2) and torch.isfinite(logits).all()
    if adapt:  # the offset is the mean pooled statistics of the reference clips
        from emovox.audio import load_audio, trim_for_model
        from emovox.inference import adaptation

        clips = [trim_for_model(load_audio(r.path, sample_rate_hz=16000), sample_rate_hz=16000) for r in records[:3]]
        with torch.inference_mode():
            rows = np.stack([model.pooled(torch.from_numpy(c))[0].numpy() for c in clips])
        model.set_speaker_offset(torch.from_numpy(speaker_offset(rows)))
        np.testing.assert_allclose(model.speaker_offset.numpy(), pooled[:3, :2].mean(axis=0), atol=1e-4)
        with pytest.raises(ConfigError, match="speaker offset of shape"):
            model.set_speaker_offset(torch.zeros(2, 32))
        model.set_speaker_offset(None)
        assert float(model.speaker_offset.abs().sum()) == 0.0
        # adapt_to_speaker computes the offset with the one implementation (inference.adaptation)
        calls = []
        monkeypatch.setattr(adaptation, "speaker_offset", lambda e: calls.append(len(e)) or speaker_offset(e))
        assert adapt_to_speaker(model, [r.path for r in records[:3]]) == 3
        assert calls == [3]
        np.testing.assert_allclose(model.speaker_offset.numpy(), pooled[:3, :2].mean(axis=0), atol=1e-4)
        assert adapt_to_speaker(model, None) == 0 and float(model.speaker_offset.abs().sum()) == 0.0
    else:
        with pytest.raises(ConfigError, match="not trained with adapt=True"):
            adapt_to_speaker(model, [records[0].path])


def test_train_whisper_model_rejects_a_bad_head_or_layer(encoder_dir, records, tmp_path):
    with pytest.raises(ConfigError, match="head="):
        train_whisper_model(records, encoder_dir, tmp_path / "m", head="attention")
    with pytest.raises(ConfigError, match="hidden states 0..3"):
        train_whisper_model(records, encoder_dir, tmp_path / "m", head="mlp", layers=(7,), cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("head", ["mlp", "linear"])
def test_whisper_head_artifact_exports_to_onnx_with_parity(encoder_dir, records, tmp_path, head):
    pytest.importorskip("onnxruntime")
    from emovox.export.onnx import export_onnx

    options = {"Cs": (0.1,)} if head == "linear" else {"hidden": 8, "epoch_grid": (5,)}
    train_whisper_model(
        records,
        encoder_dir,
        tmp_path / "m",
        head=head,
        layers=(0, 2),
        head_options=options,
        cache_dir=tmp_path / "cache",
    )
    onnx_dir = export_onnx(tmp_path / "m", tmp_path / "onnx")  # checks torch/ONNX parity itself
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    model, _ = load_artifact(tmp_path / "m")
    y = speech_like(1.3, seed=9)[None].astype(np.float32)
    (got,) = session.run(None, {session.get_inputs()[0].name: y})
    with torch.inference_mode():
        np.testing.assert_allclose(got, model(torch.from_numpy(y)).numpy(), atol=1e-3)
    assert onnx_dir is not None
