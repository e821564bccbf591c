"""Evaluate a saved model artifact on corpus records (the hook of ``emovox evaluate --model DIR``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from emovox.models.artifact import load_artifact
from emovox.training.engine import predict_logits
from emovox.training.pipeline import load_waveforms, prepare_inputs

UNKNOWN = "unknown"


def softmax(logits: np.ndarray, *, temperature: float | None = None) -> np.ndarray:
    """Row-wise softmax of ``(n, k)`` logits divided by ``temperature`` (``None`` = 1)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature or 1.0)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def evaluate_artifact(
    artifact_dir: str | os.PathLike,
    records: Sequence,
    *,
    batch_size: int = 32,
    reject: bool = False,
    threads: int | None = None,
    progress: bool = False,
) -> list[dict]:
    """Predict every record with a saved model, preprocessing exactly as in training.

    Parameters
    ----------
    artifact_dir : path-like
        Folder written by :func:`emovox.models.artifact.save_artifact`.
    records : sequence of emovox.corpora.Record (or audio paths)
    batch_size : int
    reject : bool
        Apply the artifact's rejection threshold: predictions whose
        (calibrated) confidence is below it get the label ``"unknown"``.
        ``False`` (for accuracy/UAR) always returns the arg-max class.
    threads : int, optional
        ``torch.set_num_threads`` for the run.

    Returns
    -------
    list of dict, one per record, in order::

        {"path": str, "start_s": 0.0, "end_s": float, "label": str,
         "confidence": float, "scores": {label: probability}}

    Scores use the artifact's calibration temperature when it has one.
    """
    if threads is not None:
        torch.set_num_threads(int(threads))
    model, config = load_artifact(artifact_dir)
    task, pre = config["task"], config["preprocessing"]
    labels = list(task["labels"])
    temperature = (config.get("calibration") or {}).get("temperature")
    threshold = config.get("threshold") if reject else None
    sample_rate_hz = int(task["sample_rate_hz"])
    predictions: list[dict] = []
    for start in range(0, len(records), max(batch_size * 8, 1)):
        chunk = records[start : start + max(batch_size * 8, 1)]
        waves = load_waveforms(
            chunk,
            sample_rate_hz=sample_rate_hz,
            normalize=pre.get("normalize"),
            trim_silence=bool(pre.get("trim_silence", False)),
            progress=progress,
        )
        if task["input_kind"] == "waveform" and pre.get("crop") == "none":
            # a model that pools over time: each clip at its full length, as the Predictor runs it
            logits = np.concatenate([predict_logits(model, y[None].astype(np.float32)) for y in waves])
        else:
            logits = predict_logits(model, prepare_inputs(waves, task, pre), batch_size=batch_size)
        probs = softmax(logits, temperature=temperature)
        for record, y, p in zip(chunk, waves, probs):
            best = int(p.argmax())
            confidence = float(p[best])
            label = labels[best]
            if threshold is not None and confidence < float(threshold):
                label = UNKNOWN
            predictions.append(
                {
                    "path": str(getattr(record, "path", record)),
                    "start_s": 0.0,
                    "end_s": len(y) / sample_rate_hz,
                    "label": label,
                    "confidence": confidence,
                    "scores": {name: float(v) for name, v in zip(labels, p)},
                }
            )
    return predictions


class ArtifactModel:
    """A saved artifact as an ``emovox.evaluation`` model (``emovox evaluate --model DIR``).

    ``fit_predict`` ignores the training side (the model is already trained)
    and predicts the test side with :func:`evaluate_artifact`; the artifact's
    labels are mapped onto the experiment's classes by name (a class the
    artifact does not know scores 0). ``info`` lists test speakers the
    artifact was trained on, since such figures are not speaker-independent.
    """

    feature_set = None

    def __init__(self, artifact_dir: str | os.PathLike, *, batch_size: int = 32) -> None:
        from emovox.models.artifact import read_config

        self.artifact_dir = str(artifact_dir)
        self.config = read_config(artifact_dir)
        self.name = f"artifact:{os.path.basename(os.path.normpath(self.artifact_dir))}"
        self.batch_size = batch_size

    def fit_predict(self, train, test):
        from emovox.evaluation import FoldOutput

        if test.records is None:
            from emovox.errors import ConfigError

            raise ConfigError("evaluating a saved model needs the test records (audio paths)")
        preds = evaluate_artifact(self.artifact_dir, list(test.records), batch_size=self.batch_size)
        classes = list(test.classes)
        scores = np.array([[p["scores"].get(c, 0.0) for c in classes] for p in preds], dtype=np.float64)
        data = (self.config.get("training") or {}).get("data") or {}
        known = "speakers" in data
        # an artifact that does not list its training speakers never claims independence
        seen = set(data["speakers"]) if known else set(map(str, test.speakers))
        overlap = sorted(set(map(str, test.speakers)) & seen)
        return FoldOutput(
            scores.argmax(axis=1),
            scores=scores,
            info={
                "artifact": self.artifact_dir,
                "speakers_seen_in_training": overlap,
                "training_speakers_listed": known,
            },
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "artifact": self.artifact_dir,
            "architecture": self.config.get("architecture"),
            "task": self.config.get("task"),
        }


def artifact_resolver(model: str) -> ArtifactModel | None:
    """``emovox.evaluation.register_model_resolver`` hook: a folder with config.json is an artifact."""
    from emovox.models.artifact import CONFIG_NAME

    if os.path.isdir(model) and os.path.isfile(os.path.join(model, CONFIG_NAME)):
        return ArtifactModel(model)
    return None
