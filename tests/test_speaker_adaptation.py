"""Speaker adaptation (``--adapt``): the adapted head, its fitting, both backends, the CLI, the shipped model.

A tiny random Whisper encoder (2 layers, d_model 32) trained on synthetic
speakers stands in for the real one in the mechanics tests; the shipped
model's adaptation head is tested on real corpus clips.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from emovox.cli.main import main
from emovox.corpora import default_corpora_root
from emovox.errors import ConfigError, ModelError
from emovox.inference import load_model
from emovox.inference.adaptation import ADAPT_FILE, MIN_CLIPS, AdaptationHead
from emovox.models.whisper_encoder import WhisperEncoderConfig
from emovox.recipes.speaker_adaptation import add_adaptation, fit_speaker_adaptation
from emovox.testing import speech_like, write_audio, write_tiny_whisper_encoder

torch.set_num_threads(1)
TINY = WhisperEncoderConfig(n_mels=80, d_model=32, n_heads=2, n_layers=2, n_ctx=1500)


def _folds(speakers, k):
    names = sorted(set(speakers))
    return [
        SimpleNamespace(
            train_idx=np.flatnonzero([s not in names[f::k] for s in speakers]),
            test_idx=np.flatnonzero([s in names[f::k] for s in speakers]),
        )
        for f in range(k)
    ]


def _speakers_with_offsets(n_speakers=12, per_class=10, d=6, seed=0):
    """Class signal on feature 0, plus a per-speaker offset much larger than it on every feature."""
    rng = np.random.default_rng(seed)
    rows, y, speakers = [], [], []
    for s in range(n_speakers):
        offset = rng.normal(scale=4.0, size=d)
        for c in (0, 1):
            for _ in range(per_class):
                x = offset + rng.normal(scale=0.5, size=d)
                x[0] += 1.5 * c
                rows.append(x)
                y.append(c)
                speakers.append(f"s{s}")
    return np.array(rows), np.array(y), speakers


def test_adapted_head_removes_the_speaker_offset_and_is_calibrated():
    x, y, speakers = _speakers_with_offsets()
    folds = _folds(speakers, 3)
    fit = fit_speaker_adaptation(
        x,
        y,
        speakers,
        n_classes=2,
        splits=folds,
        C=1.0,
        k=MIN_CLIPS,
        draws=2,
        groups=["a" if s < "s5" else "b" for s in speakers],
    )
    held = fit.section["heldout"]
    assert held["uar"] > 0.8 and held["k"] == MIN_CLIPS and set(held["per_group"]) == {"a", "b"}
    assert fit.section["temperature"] > 0 and 0 <= fit.section["threshold"] <= 1
    # The same data without centring: the speaker offsets drown the class signal.
    from emovox.models.whisper_classifier import fit_standardised_logistic

    plain = []
    for split in folds:
        mean, scale, coef, b = fit_standardised_logistic(x[split.train_idx], y[split.train_idx], 1.0, 2)
        plain.append(((x[split.test_idx] - mean) / scale @ coef.T + b).argmax(1) == y[split.test_idx])
    assert np.mean(np.concatenate(plain)) < held["accuracy"] - 0.1

    head = AdaptationHead(
        fit.mean.astype(np.float64),
        fit.scale.astype(np.float64),
        fit.weight.astype(np.float64),
        fit.bias.astype(np.float64),
        1.0,
        0.0,
        {},
    )
    own = np.flatnonzero(np.array(speakers) == "s0")
    offset = head.offset(x[own])
    np.testing.assert_allclose(offset, x[own].mean(axis=0))
    expected = ((x[own] - offset - fit.mean) / fit.scale) @ fit.weight.T + fit.bias
    np.testing.assert_allclose(head.logits(x[own], offset), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match=f"at least {MIN_CLIPS} clips"):
        head.offset(x[own[: MIN_CLIPS - 1]])
    with pytest.raises(ModelError, match="do not fit"):
        head.logits(x[own][:, :3], offset)


def test_fitting_refuses_shared_speakers_and_too_few_clips():
    x, y, speakers = _speakers_with_offsets(n_speakers=4)
    leaky = [SimpleNamespace(train_idx=np.arange(len(y)), test_idx=np.arange(len(y)))]
    with pytest.raises(ConfigError, match="share speakers"):
        fit_speaker_adaptation(x, y, speakers, n_classes=2, splits=leaky)
    with pytest.raises(ConfigError, match="at least"):
        fit_speaker_adaptation(x, y, speakers, n_classes=2, splits=_folds(speakers, 2), k=2)


@pytest.fixture(scope="module")
def adapted_model(tmp_path_factory):
    """A tiny whisper-linear artifact (ONNX with its embedding output) carrying an adaptation head, and clips."""
    root = tmp_path_factory.mktemp("adapt")
    (root / "clips").mkdir()
    encoder_dir = write_tiny_whisper_encoder(root / "encoder", TINY)
    rows, clips = ["path,label,speaker"], {}
    for speaker in range(4):
        for k, label in enumerate(("sad", "angry")):
            for take in range(4):
                y = speech_like(
                    0.6 + 0.1 * take,
                    f0_hz=90 + 40 * speaker + 120 * k,
                    seed=50 * speaker + 10 * k + take,
                    amplitude=0.15 + 0.6 * k,
                )
                path = write_audio(root / "clips" / f"s{speaker}_{label}_{take}.wav", y, sample_rate_hz=16000)
                rows.append(f"{path},{label},spk{speaker}")
                clips.setdefault(speaker, []).append(path)
    (root / "mine.csv").write_text("\n".join(rows) + "\n")
    assert (
        main(
            [
                "train",
                "--recipe",
                "whisper-linear",
                "--backbone",
                str(encoder_dir),
                "--corpus",
                f"csv={root / 'mine.csv'}",
                "--out",
                str(root / "run"),
                "--no-progress",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    model_dir = root / "run" / "model"
    assert main(["export", str(model_dir), "--format", "onnx"]) == 0
    predictor = load_model(model_dir, backend="onnx")
    assert predictor.backend.has_embeddings and predictor.adaptation is None
    paths = [p for s in clips for p in clips[s]]
    x = np.stack([predictor.clip_embedding(p) for p in paths])
    y = np.array([0 if "_sad_" in p.name else 1 for p in paths])
    speakers = [p.name.split("_")[0] for p in paths]
    add_adaptation(
        model_dir,
        fit_speaker_adaptation(x, y, speakers, n_classes=2, splits=_folds(speakers, 2), C=1.0, k=MIN_CLIPS, draws=1),
    )
    return SimpleNamespace(dir=model_dir, clips=clips)


def test_both_backends_give_the_same_embeddings_and_adapted_predictions(adapted_model):
    onnx, torch_p = load_model(adapted_model.dir, backend="onnx"), load_model(adapted_model.dir, backend="torch")
    config = json.loads((adapted_model.dir / "config.json").read_text())
    assert config["adaptation"]["file"] == ADAPT_FILE and (adapted_model.dir / ADAPT_FILE).stat().st_size > 0
    own = adapted_model.clips[0]
    np.testing.assert_allclose(onnx.clip_embedding(own[0]), torch_p.clip_embedding(own[0]), rtol=1e-4, atol=1e-4)
    before = onnx.predict(own[0])
    assert onnx.adapt(own[1:]) == len(own) - 1 and onnx.adapted
    assert torch_p.adapt(own[1:]) == len(own) - 1
    a, b = onnx.predict(own[0]), torch_p.predict(own[0])
    np.testing.assert_allclose(list(a.scores.values()), list(b.scores.values()), atol=1e-4)
    assert onnx.temperature == config["adaptation"]["temperature"]
    assert onnx.threshold == config["adaptation"]["threshold"]
    # The adapted head is a different function of the same clip; None returns to the default head.
    assert not np.allclose(list(a.scores.values()), list(before.scores.values()), atol=1e-6)
    assert onnx.adapt(None) == 0 and not onnx.adapted
    np.testing.assert_allclose(list(onnx.predict(own[0]).scores.values()), list(before.scores.values()), atol=1e-6)
    # Adaptation reaches timelines and streams too (they go through the same logits).
    onnx.adapt(own[1:])
    from emovox.inference.streaming import StreamEngine

    audio = np.concatenate([onnx.load(p) for p in own[:3]])
    events = StreamEngine(onnx, window_s=1.0, hop_s=0.5, vad="off").feed(audio, 16000)
    assert events and all(abs(sum(e.scores.values()) - 1) < 1e-5 for e in events)


def test_adapt_errors_are_one_clear_line(adapted_model, tmp_path):
    predictor = load_model(adapted_model.dir, backend="onnx")
    with pytest.raises(ConfigError, match=f"at least {MIN_CLIPS} clips"):
        predictor.adapt(adapted_model.clips[0][:2])
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(Exception, match="adaptation clip .*bad.wav"):
        predictor.adapt([*adapted_model.clips[0][:5], bad])
    assert not predictor.adapted  # a failed adaptation leaves the predictor as it was
    with pytest.raises(ModelError, match="no speaker adaptation"):
        load_model("cnn").adapt(adapted_model.clips[0])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"temperature": "hot"}, "adaptation.temperature"),
        ({"threshold": 2.0}, "threshold"),
        ({"temperature": -1.0}, "temperature"),
        (None, "config.json"),
    ],
)
def test_a_corrupted_adaptation_config_is_one_model_error(adapted_model, tmp_path, capsys, change, message):
    import shutil

    broken = tmp_path / "model"
    shutil.copytree(adapted_model.dir, broken)
    config = json.loads((broken / "config.json").read_text())
    if change is None:
        (broken / ADAPT_FILE).write_bytes(b"")  # an empty file: not safetensors
        config["adaptation"] = "gone"
    else:
        config["adaptation"].update(change)
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=message):
        load_model(broken)
    assert main(["predict", str(adapted_model.clips[0][0]), "--model", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert message.split(".")[-1] in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_predict_and_listen_adapt(adapted_model, capsys):
    folder = adapted_model.clips[1][0].parent
    clip = str(adapted_model.clips[1][0])
    own = [str(p) for p in adapted_model.clips[1][1:]]
    assert (
        main(["predict", clip, "--model", str(adapted_model.dir), "--json", *sum((["--adapt", p] for p in own), [])])
        == 0
    )
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["label"] in ("sad", "angry", "unknown")
    assert "adapted to the speaker from 7 clips" in err
    assert main(["predict", clip, "--model", str(adapted_model.dir), "--adapt", str(folder / "s1_*.wav"), "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert (
        main(
            [
                "listen",
                "--input",
                clip,
                "--model",
                str(adapted_model.dir),
                "--json",
                "--vad",
                "off",
                "--window-s",
                "0.5",
                "--hop-s",
                "0.25",
                "--adapt",
                str(folder / "s1_*.wav"),
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines and all("scores" in e for e in lines)
    for argv, message in (
        (["--adapt", str(folder / "nothing*.wav")], "matches no files"),
        (["--adapt", own[0]], f"at least {MIN_CLIPS} clips"),
        (["--adapt", "-"], "not '-'"),
    ):
        assert main(["predict", clip, "--model", str(adapted_model.dir), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert main(["predict", clip, "--fast", "--adapt", str(folder)]) == 2
    assert "no speaker adaptation" in capsys.readouterr().err


RAVDESS = default_corpora_root() / "ravdess"


RAVDESS_EMOTIONS = {"01": "neutral", "03": "happy", "04": "sad", "05": "angry", "06": "fearful", "07": "disgust"}
RAVDESS_EMOTIONS["08"] = "surprised"  # "02" (calm) is not one of the model's classes


@pytest.mark.skipif(not RAVDESS.is_dir(), reason="needs the RAVDESS corpus in ../shared/corpora")
def test_shipped_model_adapts_to_a_real_speaker():
    """Adapted to one actor from 20 of their clips, the shipped model's answers on other clips of that actor
    change, and towards the truth: the true class gets more probability than without adaptation."""
    predictor = load_model(num_threads=1)
    assert predictor.adaptation is not None and predictor.adaptation.info["heldout"]["k"] == 20
    files = sorted(p for p in RAVDESS.rglob("*.flac") if p.parent.name == "Actor_05")
    assert len(files) >= 25
    # RAVDESS names: modality-channel-emotion-...; emotion 05 = angry, 01 = neutral.
    angry = [p for p in files if p.name.split("-")[2] == "05"][:2]
    own = [p for p in files if p not in angry][::3][:20]
    held_out = [p for p in files if p not in own and p.name.split("-")[2] in RAVDESS_EMOTIONS][::4][:10]
    assert len(held_out) >= 8
    truth = [RAVDESS_EMOTIONS[p.name.split("-")[2]] for p in held_out]

    def answers(clips) -> np.ndarray:  # (clips, classes) scores
        return np.array([[predictor.predict(p).scores[c] for c in predictor.labels] for p in clips])

    unadapted = answers(held_out)
    assert predictor.adapt(own) == 20
    adapted = answers(held_out)
    assert np.abs(adapted - unadapted).max(axis=1).min() > 1e-3  # every answer moved
    true = [predictor.labels.index(t) for t in truth]
    p_true_before = unadapted[np.arange(len(true)), true]
    p_true_after = adapted[np.arange(len(true)), true]
    assert p_true_after.mean() > p_true_before.mean() + 0.05  # measured: 0.66 -> 0.76
    assert (adapted.argmax(1) == true).sum() >= (unadapted.argmax(1) == true).sum()
    for p in angry:
        prediction = predictor.predict(p)
        assert prediction.label == "angry" and abs(sum(prediction.scores.values()) - 1) < 1e-5
    assert predictor.adapt(None) == 0
    np.testing.assert_allclose(answers(held_out), unadapted, atol=1e-6)  # back to the unadapted model
