"""A saved model artifact as an evaluation model (the hook of ``emovox evaluate --model DIR``).

A model that takes audio is scored through the one inference path,
:meth:`emovox.inference.Predictor.iter_predict` (decoding, the speech gate,
the model's preprocessing, windows pooled over the clip, ``softmax(logits /
T)``), so an evaluated figure is what ``emovox predict`` answers for the same
clips. A research model over features (``task.input_kind = "features"``),
which the Predictor does not run from audio, is fed the inputs of its
training pipeline (:func:`emovox.training.pipeline.prepare_inputs`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from emovox.errors import ConfigError


def _path(record: Any) -> str:
    return str(getattr(record, "path", record))


class ArtifactModel:
    """A saved artifact as an ``emovox.evaluation`` model (``emovox evaluate --model DIR``).

    ``fit_predict`` ignores the training side (the model is already trained)
    and scores the test side: a waveform model with the artifact's
    :class:`~emovox.inference.Predictor` (the scores of ``emovox predict``), a
    model over features through its training pipeline. The artifact's labels
    are mapped onto the experiment's classes by name (a class the artifact
    does not know scores 0; so does every class for a clip the speech gate
    finds without speech, which ``emovox predict`` answers ``no_speech``:
    such clips are listed in ``info["no_speech"]``). ``info`` also lists test
    speakers the artifact was trained on, since such figures are not
    speaker-independent.

    Parameters
    ----------
    artifact_dir : str or PathLike
        Folder written by :func:`emovox.models.artifact.save_artifact`.
    batch_size : int
        Inputs per model call for a model over features (a waveform model runs as ``emovox predict`` does).
    """

    feature_set = None

    def __init__(self, artifact_dir: str | os.PathLike, *, batch_size: int = 32) -> None:
        from emovox.models.artifact import read_config

        self.artifact_dir = str(artifact_dir)
        self.config = read_config(artifact_dir)
        self.name = f"artifact:{os.path.basename(os.path.normpath(self.artifact_dir))}"
        self.batch_size = batch_size

    def scores(self, records: Sequence[Any], classes: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Class probabilities of ``records`` mapped onto ``classes``.

        Parameters
        ----------
        records : sequence of emovox.corpora.Record or audio paths
        classes : sequence of str
            The experiment's classes.

        Returns
        -------
        scores : np.ndarray [shape=(n_records, n_classes), dtype=float64]
            The calibrated probability of each class (0 for a class the model does not know).
        no_speech : list of str
            Paths of the clips the speech gate found without speech. ``emovox predict``
            answers ``no_speech`` for them; a labelled test clip still needs a class, so
            they are scored as the same model scores them with the gate off (the whole
            clip), and listed so the report can say how many there were.
        """
        if (self.config.get("task") or {}).get("input_kind", "waveform") != "waveform":
            return self._feature_scores(records, classes), []
        from emovox.inference.predictor import load_model

        model = load_model(self.artifact_dir)
        rows: list[list[float]] = []
        no_speech: list[str] = []
        silent: list[int] = []
        for source, result in model.iter_predict([_path(r) for r in records]):
            if isinstance(result, Exception):
                raise result
            if not result.scores:
                no_speech.append(str(source))
                silent.append(len(rows))
            rows.append([result.scores.get(c, 0.0) for c in classes])
        if silent:
            ungated = load_model(self.artifact_dir, gate=False)
            for row, (_, result) in zip(silent, ungated.iter_predict(no_speech)):
                if isinstance(result, Exception):
                    raise result
                rows[row] = [result.scores.get(c, 0.0) for c in classes]
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(classes)), no_speech

    def _feature_scores(self, records: Sequence[Any], classes: Sequence[str]) -> np.ndarray:
        """A model over features: its training pipeline's inputs, then the calibrated softmax."""
        from emovox.inference.scores import softmax
        from emovox.models.artifact import load_artifact
        from emovox.training.engine import predict_logits
        from emovox.training.pipeline import load_waveforms, prepare_inputs

        model, config = load_artifact(self.artifact_dir)
        task, pre = config["task"], config["preprocessing"]
        waves = load_waveforms(
            list(records),
            sample_rate_hz=int(task["sample_rate_hz"]),
            normalize=pre.get("normalize"),
            trim_silence=bool(pre.get("trim_silence", False)),
        )
        logits = predict_logits(model, prepare_inputs(waves, task, pre), batch_size=self.batch_size)
        temperature = (config.get("calibration") or {}).get("temperature") or 1.0
        probs = softmax(logits, temperature=float(temperature))
        index = {name: i for i, name in enumerate(task["labels"])}
        return np.array(
            [[p[index[c]] if c in index else 0.0 for c in classes] for p in probs], dtype=np.float64
        ).reshape(len(probs), len(classes))

    def fit_predict(self, train: Any, test: Any) -> Any:
        from emovox.evaluation import FoldOutput

        if test.records is None:
            raise ConfigError("evaluating a saved model needs the test records (audio paths)")
        scores, no_speech = self.scores(list(test.records), list(test.classes))
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
                "no_speech": no_speech,
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
