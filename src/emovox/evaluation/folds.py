"""The fold runner: train and test once per split, collect per-fold, summary and pooled metrics.

:func:`run_experiment` takes the splits and a ``fit_predict(train, test)``
callable and knows nothing about models: anything that can be trained on one
:class:`FoldData` and predict another plugs in (the workbench classifiers of
:mod:`emovox.evaluation.workbench_models`, a saved model artifact, ...). What
``emovox evaluate`` runs around it (corpora, labels, splits, features) is in
:mod:`emovox.evaluation.data` and :mod:`emovox.evaluation.experiment`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from emovox._version import __version__
from emovox.errors import ConfigError
from emovox.evaluation.metrics import compute_metrics, summarize_folds
from emovox.evaluation.protocols import (
    Split,
    check_speaker_disjoint,
)

if TYPE_CHECKING:
    pass

__all__ = [
    "EvaluableModel",
    "FitPredict",
    "FoldData",
    "FoldOutput",
    "FoldRun",
    "fit_predict_folds",
    "result_header",
    "run_experiment",
]


@dataclass(frozen=True)
class FoldData:
    """One side (train or test) of a split, as a model sees it.

    Attributes
    ----------
    X : np.ndarray [shape=(n, d), dtype=float] or None
        Feature vectors, or ``None`` when the model extracts its own input.
    y : np.ndarray [shape=(n,), dtype=int64] or None
        Class indices into ``classes``; ``None`` on the test side.
    records : tuple of Record or None
        The corpus records (paths, speakers, …), when known.
    speakers : np.ndarray [shape=(n,), dtype=object]
        Speaker keys (``"corpus/speaker"``), e.g. for inner speaker-disjoint CV.
    classes : tuple of str
        Class names in index order.
    """

    X: np.ndarray | None
    y: np.ndarray | None
    records: tuple | None
    speakers: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.speakers)


@dataclass(frozen=True)
class FoldOutput:
    """What ``fit_predict`` may return instead of a bare array.

    Attributes
    ----------
    predicted : np.ndarray [shape=(n_test,), dtype=int]
        Predicted class indices.
    scores : np.ndarray [shape=(n_test, n_classes)] or None
        Class scores/probabilities, stored per sample in the result.
    info : dict
        JSON-ready facts about the fold's model (e.g. tuned hyper-parameters).
        A model trained beforehand (a saved artifact) lists the test speakers
        it saw in training under ``"speakers_seen_in_training"``; the runner
        counts them as speaker overlap, so the result is then not
        speaker-independent.
    """

    predicted: np.ndarray
    scores: np.ndarray | None = None
    info: dict = field(default_factory=dict)


#: ``fit_predict(train, test)`` returns predicted class indices ``(n_test,)``,
#: class scores ``(n_test, n_classes)`` (argmax taken), or a :class:`FoldOutput`.
FitPredict = Callable[[FoldData, FoldData], Any]


class EvaluableModel(Protocol):
    """What :func:`resolve_model` returns: a named model that fits and predicts one fold."""

    # Read-only members, so that a model whose ``feature_set`` is always a ``str`` conforms.
    @property
    def name(self) -> str: ...

    @property
    def feature_set(self) -> str | None: ...

    def fit_predict(self, train: FoldData, test: FoldData) -> Any: ...

    def to_dict(self) -> dict: ...


def _fold_output(raw: Any, n_test: int, n_classes: int, fold: str) -> FoldOutput:
    if not isinstance(raw, FoldOutput):
        array = np.asarray(raw)
        raw = FoldOutput(array.argmax(axis=1), scores=array) if array.ndim == 2 else FoldOutput(array)
    predicted = np.asarray(raw.predicted)
    if predicted.shape != (n_test,):
        raise ConfigError(f"fold {fold}: the model returned {predicted.shape} predictions for {n_test} test samples")
    if raw.scores is not None and np.shape(raw.scores) != (n_test, n_classes):
        raise ConfigError(f"fold {fold}: scores of shape {np.shape(raw.scores)}, expected {(n_test, n_classes)}")
    return FoldOutput(predicted.astype(np.int64), raw.scores, dict(raw.info))


def run_experiment(
    splits: Sequence[Split],
    fit_predict: FitPredict,
    *,
    y: np.ndarray,
    classes: Sequence[str],
    speakers: Sequence[str],
    X: np.ndarray | None = None,
    records: Sequence | None = None,
    protocol: str = "custom",
    config: Mapping | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict:
    """Train and test once per split; collect per-fold, summary and pooled metrics.

    Parameters
    ----------
    splits : sequence of Split
        From :mod:`emovox.evaluation.protocols`.
    fit_predict : callable
        ``fit_predict(train: FoldData, test: FoldData)``; see :data:`FitPredict`.
        It sees the test side without labels.
    y : np.ndarray [shape=(n,), dtype=int]
        Class index of every sample.
    classes : sequence of str [shape=(n_classes,)]
    speakers : sequence of str [shape=(n,)]
        Speaker key of every sample.
    X : np.ndarray [shape=(n, d)], optional
        Features of every sample.
    records : sequence of Record [shape=(n,)], optional
        For paths and corpora in the per-sample predictions.
    protocol : str
        Recorded in the result.
    config : dict, optional
        Recorded verbatim under ``"config"``.
    progress : callable, optional
        ``progress(fold_number, n_folds, fold_name)`` before each fold.

    Returns
    -------
    dict
        ``emovox_version``, ``created_utc``, ``config``, ``protocol``,
        ``speaker_independent`` (measured: no fold shares a speaker between
        train and test), ``classes``, ``n_samples``, ``folds`` (name, sizes,
        test speakers, speaker overlap, seconds, model info, metrics),
        ``summary`` (mean ± std over folds), ``pooled`` (metrics of all test
        predictions together), ``predictions`` (one dict per tested sample;
        with ``gender`` when records are known) and ``intervals`` (95 %
        speaker-level bootstrap intervals of the pooled UAR and accuracy,
        :func:`emovox.evaluation.uncertainty.result_intervals`).
    """
    classes = tuple(str(c) for c in classes)
    y = np.asarray(y, dtype=np.int64)
    folds: list[dict[str, Any]] = []
    predictions: list[dict[str, Any]] = []
    all_true: list[np.ndarray] = []
    all_pred: list[np.ndarray] = []
    for run in fit_predict_folds(
        splits, fit_predict, y=y, speakers=speakers, X=X, records=records, classes=classes, progress=progress
    ):
        split = run.split
        output = _fold_output(run.raw, len(split.test_idx), len(classes), split.name)
        truth = y[split.test_idx]
        folds.append(run.summary(output.info, compute_metrics(truth, output.predicted, classes=classes)))
        for row, i in enumerate(split.test_idx):
            entry = run.sample(i, classes[truth[row]], classes[output.predicted[row]])
            if output.scores is not None:
                entry["scores"] = {c: float(s) for c, s in zip(classes, output.scores[row])}
            predictions.append(entry)
        all_true.append(truth)
        all_pred.append(output.predicted)

    from emovox.evaluation.uncertainty import result_intervals

    return {
        **result_header(config, protocol, folds),
        "classes": list(classes),
        "n_samples": len(y),
        "folds": folds,
        "summary": summarize_folds([f["metrics"] for f in folds]),
        "pooled": compute_metrics(np.concatenate(all_true), np.concatenate(all_pred), classes=classes),
        "predictions": predictions,
        # 95 % speaker-level bootstrap intervals of the pooled UAR and accuracy
        "intervals": result_intervals({"predictions": predictions}),
    }


@dataclass(frozen=True)
class FoldRun:
    """One fold as trained and tested: its split, what ``fit_predict`` returned, and the seconds it took."""

    split: Split
    raw: Any
    seconds: float
    speakers: np.ndarray
    records: tuple | None

    def summary(self, info: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, Any]:
        """The fold's entry in a result: sizes, test speakers, measured speaker overlap, seconds, model info, metrics.

        A model trained beforehand lists under ``info["speakers_seen_in_training"]``
        the test speakers it saw; they count as overlap.
        """
        split, keys = self.split, self.speakers
        seen = set(map(str, info.get("speakers_seen_in_training", [])))
        return {
            "name": split.name,
            "n_train": int(len(split.train_idx)),
            "n_test": int(len(split.test_idx)),
            "n_train_speakers": int(len(set(keys[split.train_idx]))),
            "test_speakers": sorted(set(keys[split.test_idx])),
            "speaker_overlap": sorted(set(check_speaker_disjoint(split, keys)) | seen),
            "seconds": round(self.seconds, 3),
            "model": dict(info),
            "metrics": dict(metrics),
        }

    def sample(self, i: int, true: Any, predicted: Any) -> dict[str, Any]:
        """A tested sample's entry: fold, speaker, truth and prediction (path, corpus and gender when known)."""
        entry: dict[str, Any] = {
            "fold": self.split.name,
            "speaker": self.speakers[i],
            "true": true,
            "predicted": predicted,
        }
        if self.records is not None:
            record = self.records[i]
            entry = {
                "path": str(record.path),
                "corpus": record.corpus,
                **entry,
                "gender": getattr(record, "gender", None),
            }
        return entry


def fit_predict_folds(
    splits: Sequence[Split],
    fit_predict: FitPredict,
    *,
    y: np.ndarray,
    speakers: Sequence[str],
    X: np.ndarray | None = None,
    records: Sequence | None = None,
    classes: Sequence[str] = (),
    progress: Callable[[int, int, str], None] | None = None,
) -> Iterator[FoldRun]:
    """Train and test once per split, yielding each fold's raw output: the one loop of every runner.

    The test side is given without labels. Checks that every array has one
    entry per sample and that no split is empty; calls
    ``progress(fold_number, n_folds, fold_name)`` before each fold.
    """
    speaker_keys = np.asarray([str(s) for s in speakers], dtype=object)
    n = len(y)
    if len(speaker_keys) != n or (X is not None and len(X) != n) or (records is not None and len(records) != n):
        raise ConfigError("y, speakers, X and records must all have one entry per sample")
    if not splits:
        raise ConfigError("no splits to evaluate")
    kept = tuple(records) if records is not None else None
    names = tuple(str(c) for c in classes)

    def side(idx: np.ndarray, with_labels: bool) -> FoldData:
        return FoldData(
            X=None if X is None else X[idx],
            y=y[idx] if with_labels else None,
            records=None if kept is None else tuple(kept[i] for i in idx),
            speakers=speaker_keys[idx],
            classes=names,
        )

    for number, split in enumerate(splits, start=1):
        if len(split.test_idx) == 0 or len(split.train_idx) == 0:
            raise ConfigError(f"fold {split.name} has an empty training or test set")
        if progress is not None:
            progress(number, len(splits), split.name)
        started = time.perf_counter()
        raw = fit_predict(side(split.train_idx, True), side(split.test_idx, False))
        yield FoldRun(split, raw, time.perf_counter() - started, speaker_keys, kept)


def result_header(config: Mapping | None, protocol: str, folds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The keys every result starts with: version, time, config, protocol and measured speaker independence."""
    return {
        "emovox_version": __version__,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": dict(config or {}),
        "protocol": protocol,
        "speaker_independent": all(not f["speaker_overlap"] for f in folds),
    }
