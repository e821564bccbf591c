"""The small CNN shipped inside the package as ``cnn`` (``emovox predict --fast``): loads, predicts, is calibrated.

The default model (Whisper-backed) is tested in ``tests/test_default_whisper_model.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import emovox
from emovox.inference.predictor import pretrained_dir

EXAMPLE = Path(emovox.__file__).parent / "examples" / "hello.flac"


def test_bundled_artifact_is_complete_and_describes_itself():
    directory = pretrained_dir() / "cnn"
    config = json.loads((directory / "config.json").read_text())
    assert {p.name for p in directory.iterdir()} >= {"config.json", "model.safetensors", "model.onnx"}
    assert config["task"]["labels"] == ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    assert config["calibration"]["temperature"] > 0  # the card's fields; answers: below
    assert 0.0 < config["threshold"] < 1.0
    card = config["model_card"]
    for needed in ("CC BY-NC-SA 4.0", "CC BY-NC-ND 4.0", "Speaker-independent", "Intended use"):
        assert needed in card
    figures = config["metrics"]["speaker_independent"]
    assert set(figures) >= {"ravdess", "emodb", "emovo", "turev", "all"}
    # a few MB at most
    assert sum(p.stat().st_size for p in directory.iterdir()) < 8_000_000


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_load_model_without_arguments_predicts_the_example_clip(backend):
    model = emovox.load_model("cnn", backend=backend)
    p = model.predict(str(EXAMPLE))
    assert p.label in (*model.labels, "unknown")
    assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-4)
    assert p.start_s == 0.0 and p.end_s == pytest.approx(5.41, abs=0.01)


def test_torch_and_onnx_backends_agree_on_the_bundled_model():
    clip = str(EXAMPLE)
    a = emovox.load_model("cnn", backend="onnx").predict(clip).scores
    b = emovox.load_model("cnn", backend="torch").predict(clip).scores
    assert np.max(np.abs(np.array(list(a.values())) - np.array(list(b.values())))) < 1e-4


def test_cli_predicts_the_example_with_onnx_without_importing_torch():
    code = (
        f"import sys; from emovox.cli.main import main; rc = main(['predict', '--fast', '--json', '-q', {str(EXAMPLE)!r}]); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)[0]
    assert record["label"] and 0.0 <= record["confidence"] <= 1.0


@pytest.mark.corpora
def test_answers_on_real_clips_are_the_shipped_ones_and_mostly_right():
    """20 real clips predicted again: the stored answers to 1e-5, and labels scored against the corpora's."""
    import shipped_answers

    if shipped_answers.missing_clips():
        pytest.skip(f"corpus clips not available: {shipped_answers.missing_clips()[:2]}")
    model = emovox.load_model("cnn", backend="onnx", num_threads=1)
    stored = json.loads(shipped_answers.ANSWERS.read_text())
    clips, expected = list(stored["clips"]), stored["models"]["cnn"]
    assert list(model.labels) == expected["labels"]
    scores = shipped_answers.answers(model, clips)
    np.testing.assert_allclose(scores, expected["scores"], atol=1e-5)
    predicted = [model.labels[i] for i in scores.argmax(1)]
    assert shipped_answers.uar(list(stored["clips"].values()), predicted, model.labels) >= 0.8  # chance: 1/7
