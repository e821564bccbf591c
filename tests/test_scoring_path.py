"""One scoring path: ``emovox evaluate --model DIR`` answers what ``emovox predict`` answers for the same clips.

The bundled ``cnn`` takes each clip whole up to 30 s and pools longer ones
over 30 s windows; the speech gate answers a silent clip ``no_speech``
without running the model. A second scoring path (centre crop, no gate, its
own softmax) would differ on the long clip and the silent one.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from emovox.audio import trim_for_model
from emovox.cli.main import main
from emovox.inference.predictor import load_model, pretrained_dir
from emovox.inference.scores import pool_logits, softmax
from emovox.testing import speech_like, write_audio

CNN = pretrained_dir() / "cnn"
LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
SR = 16000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two speakers x the cnn's seven emotions, one 35 s clip (two windows) and one silent clip."""
    root = tmp_path_factory.mktemp("scoring")
    rows, paths = ["path,label,speaker"], []

    def add(name: str, y: np.ndarray, label: str, speaker: str) -> None:
        path = write_audio(root / f"{name}.wav", y, sample_rate_hz=SR)
        rows.append(f"{path},{label},{speaker}")
        paths.append(str(path))

    for s, speaker in enumerate(("a", "b")):
        for k, label in enumerate(LABELS):
            y = speech_like(0.8 + 0.3 * k, f0_hz=100 + 10 * k + 40 * s, seed=10 * s + k)
            add(f"{speaker}_{label}", (0.3 + 0.05 * k) * y, label, speaker)
    long = np.concatenate([speech_like(20.0, f0_hz=110, seed=1), 0.5 * speech_like(15.0, f0_hz=240, seed=2)])
    add("a_long", long, "happy", "a")
    add("b_silent", np.zeros(2 * SR, np.float32), "sad", "b")
    manifest = root / "mine.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest, paths


@pytest.fixture(scope="module")
def evaluated(corpus, tmp_path_factory):
    manifest, _ = corpus
    out = tmp_path_factory.mktemp("run")
    argv = ["evaluate", "--corpus", f"csv:{manifest}", "--model", str(CNN), "--protocol", "loso"]
    assert main([*argv, "--out", str(out), "--quiet", "--cache-dir", str(out / "cache")]) == 0
    return json.loads((out / "result.json").read_text())


@pytest.fixture(scope="module")
def predicted(corpus):
    _, paths = corpus
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        # each input as one clip, the 35 s one too (by default predict makes a timeline of inputs over 6 s)
        assert main(["predict", *paths, "--model", str(CNN), "--json", "--auto-timeline-s", "60"]) == 0
    answers = json.loads(buffer.getvalue())
    assert len(answers) == len(paths)
    return dict(zip(paths, answers))


def test_evaluate_model_dir_gives_the_answers_of_predict(evaluated, predicted):
    """``result.json`` against ``emovox predict --json`` (which prints scores to 4 decimals) and the API (1e-5)."""
    assert set(evaluated["classes"]) == set(LABELS)
    assert len(evaluated["predictions"]) == len(predicted)
    api = dict(zip(predicted, load_model(CNN).predict_batch(list(predicted))))
    for entry in evaluated["predictions"]:
        answer, exact = predicted[entry["path"]], api[entry["path"]]
        assert exact.label == answer["label"]
        if answer["label"] == "no_speech":
            # predict answers no_speech; a labelled test clip still needs a class: it is scored as the
            # model scores the whole clip with the gate off, never as a row of zeros read as class 0
            ungated = load_model(CNN, gate=False).predict(entry["path"])
            for label, value in ungated.scores.items():
                assert entry["scores"][label] == pytest.approx(value, abs=1e-5)
            assert entry["predicted"] == max(ungated.scores, key=ungated.scores.get)
            continue
        scores = answer["scores"]
        assert set(entry["scores"]) == set(scores) == set(exact.scores)
        for label, value in scores.items():
            assert entry["scores"][label] == pytest.approx(value, abs=5.1e-5), (entry["path"], label)
            assert entry["scores"][label] == pytest.approx(exact.scores[label], abs=1e-5), (entry["path"], label)
        assert entry["predicted"] == max(scores, key=scores.get)
        if answer["label"] not in ("unknown", "no_speech"):
            assert entry["predicted"] == answer["label"]
    silent = sorted(p for p, answer in predicted.items() if answer["label"] == "no_speech")
    assert any(p.endswith("b_silent.wav") for p in silent) and len(silent) <= 2  # the others hold speech
    assert sorted(p for fold in evaluated["folds"] for p in fold["model"]["no_speech"]) == silent


def test_the_long_clip_is_pooled_over_windows_as_predict_does(corpus, predicted):
    """A 35 s clip: two 30 s windows whose calibrated probabilities are averaged (not one whole pass)."""
    _, paths = corpus
    long = next(p for p in paths if p.endswith("a_long.wav"))
    model = load_model(CNN)
    assert model.info.trim_silence and model.info.normalize is None and not model.info.band_limit_hz
    y = trim_for_model(model.load(long), sample_rate_hz=SR)  # the cnn's preprocessing
    assert 30 * SR < y.size <= 35 * SR
    whole = model.logits([y])[0]
    z = model.clip_logits(long)
    windows = model.logits([y[: 30 * SR], y[-30 * SR :]])  # two windows; the last one ends the clip
    assert z == pytest.approx(pool_logits(windows, temperature=model.temperature), abs=1e-5)
    probs = softmax(z, temperature=model.temperature)
    assert probs == pytest.approx(softmax(windows, temperature=model.temperature).mean(axis=0), abs=1e-6)
    assert dict(zip(model.labels, probs)) == pytest.approx(predicted[long]["scores"], abs=5.1e-5)  # 4 decimals
    assert not np.allclose(softmax(whole, temperature=model.temperature), probs, atol=1e-3)


def test_clip_logits_of_a_silent_clip_is_a_one_line_error(corpus):
    from emovox.errors import AudioError

    _, paths = corpus
    silent = next(p for p in paths if p.endswith("b_silent.wav"))
    with pytest.raises(AudioError, match="no speech"):
        load_model(CNN).clip_logits(silent)
    z = load_model(CNN, gate=False).clip_logits(silent)
    assert z.shape == (len(LABELS),) and z.dtype == np.float32
