"""Model artifacts: save/load round trip, every refusal with a clear ModelError, evaluation hook."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from emovox import __version__
from emovox.errors import ModelError
from emovox.inference.predictor import load_model
from emovox.inference.scores import softmax
from emovox.models.artifact import (
    CONFIG_NAME,
    FORMAT_VERSION,
    WEIGHTS_NAME,
    load_artifact,
    make_config,
    read_config,
    save_artifact,
)
from emovox.models.registry import build_model
from emovox.models.spec import TaskSpec
from emovox.testing import speech_like, write_audio
from emovox.training.predict import ArtifactModel, artifact_resolver

SPEC = TaskSpec(labels=("neutral", "happy", "angry"), sample_rate_hz=16000, clip_s=0.5)


@pytest.fixture
def artifact(tmp_path) -> Path:
    torch.manual_seed(0)
    model = build_model("tiny-cnn", SPEC, channels=4, n_mels=16)
    config = make_config(
        SPEC,
        "tiny-cnn",
        {"channels": 4, "n_mels": 16},
        preprocessing={"normalize": "peak", "crop": "center", "normalization": None},
        training={"data": {"speakers": ["synthetic/a"]}},
        metrics={"validation": {"uar": 0.5}},
    )
    return save_artifact(tmp_path / "model", model, config)


def test_round_trip_gives_the_same_outputs(artifact):
    model, config = load_artifact(artifact)
    again, _ = load_artifact(artifact)
    x = torch.randn(3, SPEC.n_samples)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    assert not model.training
    assert config["format_version"] == "{}.{}".format(*FORMAT_VERSION)
    assert config["package_version"] == __version__
    assert config["task"] == SPEC.to_dict()
    assert config["calibration"] == {"temperature": None} and config["threshold"] is None
    assert sorted(p.name for p in artifact.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    # no pickle: the weights file is safetensors (8-byte header length, then JSON)
    raw = (artifact / WEIGHTS_NAME).read_bytes()
    assert raw[8:9] == b"{"


def test_saving_again_replaces_atomically_and_leaves_no_temporaries(artifact):
    model, config = load_artifact(artifact)
    config["threshold"] = 0.7
    save_artifact(artifact, model, config)
    assert read_config(artifact)["threshold"] == 0.7
    assert sorted(p.name for p in artifact.parent.iterdir()) == ["model"]


def test_artifact_files_are_readable_by_others_as_umask_allows(tmp_path):
    """safetensors writes 0o600 and mkdtemp 0o700: a service account must still read the model."""
    import os

    model, config = (
        build_model("tiny-cnn", SPEC, channels=4, n_mels=16),
        make_config(SPEC, "tiny-cnn", {"channels": 4, "n_mels": 16}),
    )
    old = os.umask(0o022)
    try:
        out = save_artifact(tmp_path / "shared", model, config)
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755
    for name in (WEIGHTS_NAME, CONFIG_NAME):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name


def test_expected_spec_is_checked(artifact):
    load_artifact(artifact, expected_spec=SPEC)
    other = TaskSpec(labels=("neutral", "angry", "happy"), clip_s=0.5)
    with pytest.raises(ModelError, match="is for another task: task spec mismatch \\(labels"):
        load_artifact(artifact, expected_spec=other)


def _edit(artifact: Path, change) -> None:
    path = artifact / CONFIG_NAME
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_missing_things(tmp_path, artifact):
    with pytest.raises(ModelError, match="no model artifact at .*made by 'emovox train'"):
        load_artifact(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelError, match="is a file"):
        load_artifact(tmp_path / "file")
    broken = tmp_path / "broken"
    shutil.copytree(artifact, broken)
    (broken / WEIGHTS_NAME).unlink()
    with pytest.raises(ModelError, match="has no model.safetensors"):
        load_artifact(broken)
    (broken / CONFIG_NAME).unlink()
    with pytest.raises(ModelError, match="has no config.json"):
        load_artifact(broken)


def test_corrupt_json_and_missing_keys(artifact):
    (artifact / CONFIG_NAME).write_text('{"task": ')
    with pytest.raises(ModelError, match="is not valid JSON .*re-export or re-train"):
        load_artifact(artifact)
    (artifact / CONFIG_NAME).write_text(json.dumps({"task": SPEC.to_dict()}))
    with pytest.raises(
        ModelError, match="lacks required keys \\['format_version', 'package_version', 'architecture'\\]"
    ):
        load_artifact(artifact)


def test_newer_format_is_refused_with_what_made_it_and_what_to_do(artifact):
    _edit(
        artifact,
        lambda d: d.update(format_version=f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1] + 1}", package_version="9.9.9"),
    )
    with pytest.raises(ModelError, match=r"written by emovox 9\.9\.9 in format 1\.1.*upgrade emovox"):
        load_artifact(artifact)
    _edit(artifact, lambda d: d.update(format_version="0.3", package_version="0.0.1"))
    with pytest.raises(ModelError, match=r"emovox 0\.0\.1 in format 0\.3, which this emovox .* no longer reads"):
        load_artifact(artifact)
    _edit(artifact, lambda d: d.update(format_version="one"))
    with pytest.raises(ModelError, match="unreadable format_version 'one'"):
        load_artifact(artifact)


def test_wrong_spec_or_architecture(artifact):
    _edit(artifact, lambda d: d["task"].update(labels=["only-one"]))
    with pytest.raises(ModelError, match="invalid task spec: .*at least two distinct"):
        load_artifact(artifact)
    _edit(artifact, lambda d: d["task"].update(labels=["a", "b"]))  # 2 classes, weights have 3
    with pytest.raises(
        ModelError, match=r"weight 'body\.\d+\.weight' has shape \(3, \d+\), the architecture expects \(2, \d+\)"
    ):
        load_artifact(artifact)
    _edit(artifact, lambda d: d.update(task=SPEC.to_dict(), architecture={"name": "no-such-net", "params": {}}))
    with pytest.raises(ModelError, match="unknown architecture 'no-such-net'"):
        load_artifact(artifact)


def test_weights_that_do_not_fit(artifact):
    save_file({"something.else": torch.zeros(2)}, str(artifact / WEIGHTS_NAME))
    with pytest.raises(ModelError, match="does not match its architecture: missing \\["):
        load_artifact(artifact)
    (artifact / WEIGHTS_NAME).write_bytes(b"garbage")
    with pytest.raises(ModelError, match="is not readable safetensors"):
        load_artifact(artifact)


def test_save_refuses_incomplete_or_unserialisable_config(tmp_path):
    model = build_model("tiny-cnn", SPEC)
    with pytest.raises(ModelError, match="has no 'task'"):
        save_artifact(tmp_path / "a", model, {"architecture": {"name": "tiny-cnn"}})
    with pytest.raises(ModelError, match="needs 'architecture'"):
        save_artifact(tmp_path / "a", model, {"task": SPEC})
    with pytest.raises(ModelError, match="not JSON-serialisable"):
        save_artifact(tmp_path / "a", model, make_config(SPEC, "tiny-cnn", metrics={"uar": float("nan")}))
    assert not (tmp_path / "a").exists()
    assert list(tmp_path.iterdir()) == []


def test_artifact_scores_are_the_predictors_with_its_calibration(artifact, tmp_path):
    """``emovox evaluate --model DIR`` scores a clip as ``predict`` does, calibration temperature included."""
    paths = [
        str(write_audio(tmp_path / f"clip{i}.wav", speech_like(0.6 + 0.4 * i, seed=i), sample_rate_hz=16000))
        for i in range(3)
    ]
    classes = list(reversed(SPEC.labels))  # the experiment's order, not the model's
    scores, no_speech = ArtifactModel(artifact).scores(paths, classes)
    assert no_speech == []  # speech-like clips pass the speech gate
    predictor = load_model(artifact)
    for row, path in zip(scores, paths):
        answer = predictor.predict(path)
        assert row == pytest.approx([answer.scores[c] for c in classes], abs=1e-6)
        assert sum(row) == pytest.approx(1.0)
        # the scores are the calibrated softmax of the clip's logits
        z = predictor.clip_logits(path)
        assert row == pytest.approx(
            softmax(z, temperature=predictor.temperature)[[SPEC.labels.index(c) for c in classes]]
        )
    # a huge temperature flattens the scores of every clip with speech
    config = read_config(artifact)
    config.update(calibration={"temperature": 1e6}, threshold=0.9)
    model, _ = load_artifact(artifact)
    save_artifact(artifact, model, config)
    flat, _ = ArtifactModel(artifact).scores(paths, classes)
    assert flat == pytest.approx(np.full((3, 3), 1 / 3), abs=1e-4)


def test_artifact_as_an_evaluation_model(artifact, tmp_path):
    from emovox.evaluation import FoldData

    assert artifact_resolver(str(tmp_path)) is None
    model = artifact_resolver(str(artifact))
    assert isinstance(model, ArtifactModel) and model.feature_set is None
    paths = [str(write_audio(tmp_path / f"c{i}.wav", speech_like(0.5, seed=i), sample_rate_hz=16000)) for i in range(2)]
    test = FoldData(
        X=None,
        y=None,
        records=tuple(paths),
        speakers=np.array(["synthetic/a", "synthetic/b"]),
        classes=("angry", "neutral"),
    )
    out = model.fit_predict(None, test)
    assert out.scores.shape == (2, 2) and out.predicted.shape == (2,)
    assert out.info["speakers_seen_in_training"] == ["synthetic/a"]


def test_softmax_is_stable():
    p = softmax(np.array([[1000.0, 0.0], [0.0, 0.0]]))
    assert np.allclose(p, [[1, 0], [0.5, 0.5]])
