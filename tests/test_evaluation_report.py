"""The experiment runner and report writer, on synthetic features (no corpora)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emovox.errors import ConfigError
from emovox.evaluation import (
    FoldOutput,
    format_summary,
    leave_one_speaker_out,
    random_stratified,
    run_experiment,
    speaker_kfold,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSES = ("angry", "happy", "neutral")


def _task(seed: int = 0, n_speakers: int = 5, per_speaker: int = 12):
    """Separable-ish 2-D features with a per-speaker offset."""
    rng = np.random.default_rng(seed)
    speakers = np.repeat([f"toy/{s}" for s in range(n_speakers)], per_speaker)
    y = np.tile(np.arange(len(CLASSES)), n_speakers * per_speaker // len(CLASSES))
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    offsets = {s: rng.normal(0, 0.5, 2) for s in set(speakers)}
    X = centres[y] + rng.normal(0, 0.7, (len(y), 2)) + np.array([offsets[s] for s in speakers])
    return X, y, speakers


def nearest_centroid(train, test):
    centroids = np.stack(
        [
            train.X[train.y == c].mean(axis=0) if np.any(train.y == c) else np.full(2, 1e6)
            for c in range(len(train.classes))
        ]
    )
    assert test.y is None  # the model never sees test labels
    distance = ((test.X[:, None, :] - centroids[None]) ** 2).sum(-1)
    return FoldOutput(distance.argmin(axis=1), scores=-distance, info={"kind": "centroid"})


def test_run_experiment_loso_result_shape():
    X, y, speakers = _task()
    result = run_experiment(
        leave_one_speaker_out(speakers),
        nearest_centroid,
        y=y,
        classes=CLASSES,
        speakers=speakers,
        X=X,
        protocol="loso",
        config={"model": "centroid"},
    )
    assert result["speaker_independent"] is True
    assert len(result["folds"]) == 5
    assert result["pooled"]["n"] == len(y) == len(result["predictions"])
    assert result["summary"]["uar"]["n_folds"] == 5
    assert result["pooled"]["uar"] > 0.8
    fold = result["folds"][0]
    assert fold["speaker_overlap"] == [] and fold["model"] == {"kind": "centroid"}
    assert set(result["predictions"][0]) >= {"fold", "speaker", "true", "predicted", "scores"}


def test_random_split_is_measured_as_leaking():
    X, y, speakers = _task()
    result = run_experiment(
        random_stratified(y, test_fraction=0.25, seed=0),
        nearest_centroid,
        y=y,
        classes=CLASSES,
        speakers=speakers,
        X=X,
        protocol="random",
    )
    assert result["speaker_independent"] is False
    assert "speakers leak" in format_summary(result)


def test_fit_predict_may_return_labels_or_scores():
    X, y, speakers = _task()
    splits = speaker_kfold(speakers, k=2, seed=0)
    as_labels = run_experiment(
        splits, lambda tr, te: nearest_centroid(tr, te).predicted, y=y, classes=CLASSES, speakers=speakers, X=X
    )
    as_scores = run_experiment(
        splits, lambda tr, te: nearest_centroid(tr, te).scores, y=y, classes=CLASSES, speakers=speakers, X=X
    )
    assert as_labels["pooled"]["confusion"] == as_scores["pooled"]["confusion"]
    with pytest.raises(ConfigError, match="predictions for"):
        run_experiment(splits, lambda tr, te: np.zeros(3, dtype=int), y=y, classes=CLASSES, speakers=speakers, X=X)


def test_write_report_files_are_valid_and_atomic(tmp_path):
    X, y, speakers = _task()
    result = run_experiment(
        leave_one_speaker_out(speakers),
        nearest_centroid,
        y=y,
        classes=CLASSES,
        speakers=speakers,
        X=X,
        protocol="loso",
        config={"model": "centroid", "corpora": ["toy"]},
    )
    paths = write_report(result, tmp_path / "out")
    assert set(paths) == {"json", "markdown", "confusion", "recall", "intervals"}
    loaded = json.loads(paths["json"].read_text())
    assert loaded["pooled"]["uar"] == pytest.approx(result["pooled"]["uar"])
    assert loaded["config"]["model"] == "centroid"
    for key in ("confusion", "recall", "intervals"):
        assert paths[key].read_bytes()[:8] == PNG_MAGIC
    text = paths["markdown"].read_text()
    assert "Speaker-independent" in text and "| UAR | accuracy |" in text
    assert "confusion.png" in text and "per_class_recall.png" in text and "uar_intervals.png" in text
    assert "95 % CI (speaker bootstrap)" in text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "confusion.png",
        "per_class_recall.png",
        "report.md",
        "result.json",
        "uar_intervals.png",
    ]  # no temporary files left
    write_report(result, tmp_path / "out")  # rewriting replaces in place
    assert len(list((tmp_path / "out").iterdir())) == 5


def test_report_handles_class_absent_from_everything(tmp_path):
    # A class present in the scheme but absent from every test set: null in JSON, blank row in the plot.
    X, y, speakers = _task()
    result = run_experiment(
        leave_one_speaker_out(speakers),
        nearest_centroid,
        y=y,
        classes=CLASSES + ("sad",),
        speakers=speakers,
        X=X,
        protocol="loso",
    )
    paths = write_report(result, tmp_path)
    loaded = json.loads(paths["json"].read_text())
    assert loaded["pooled"]["per_class"]["sad"]["recall"] is None
    assert "n/a" in paths["markdown"].read_text()


def test_write_report_rejects_other_dicts(tmp_path):
    with pytest.raises(ConfigError, match="run_experiment"):
        write_report({"classes": []}, tmp_path)


def test_pretrained_model_that_saw_test_speakers_is_not_speaker_independent():
    X, y, speakers = _task()

    def pretrained(train, test):
        out = nearest_centroid(train, test)
        return FoldOutput(out.predicted, info={"speakers_seen_in_training": sorted(set(test.speakers))})

    result = run_experiment(
        leave_one_speaker_out(speakers), pretrained, y=y, classes=CLASSES, speakers=speakers, X=X, protocol="loso"
    )
    assert result["speaker_independent"] is False
    assert result["folds"][0]["speaker_overlap"] == ["toy/0"]
