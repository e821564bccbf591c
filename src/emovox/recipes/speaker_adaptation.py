"""Fit the speaker-adaptation head (``--adapt``) of a Whisper-backed artifact and add it to the artifact.

The head (:mod:`emovox.inference.adaptation`) is a balanced logistic
regression on standardised, **speaker-centred** embeddings: every training
speaker's rows minus the mean of all that speaker's rows. Its calibration and
figures come from speaker-disjoint folds in which each held-out speaker is
centred with ``k`` random clips of their own (no labels; the ``k`` clips are
scored too), as a user of ``--adapt`` would do. The temperature and threshold
are fitted on the first draw's out-of-fold logits; the figures average
``draws`` draws.

>>> fit = fit_speaker_adaptation(embeddings, y, speakers, n_classes=7, splits=folds)  # doctest: +SKIP
>>> add_adaptation(artifact_dir, fit)                                                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emovox.errors import ConfigError, ModelError
from emovox.inference.adaptation import ADAPT_FILE, MIN_CLIPS, RECOMMENDED_CLIPS, write_adaptation

__all__ = ["AdaptationFit", "fit_speaker_adaptation", "add_adaptation"]


@dataclass
class AdaptationFit:
    """Head tensors (float32: ``mean``/``scale`` ``(d,)``, ``weight`` ``(n_classes, d)``, ``bias``) and the config section."""

    mean: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    section: dict = field(default_factory=dict)


def _uar(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    from emovox.evaluation import compute_metrics

    return compute_metrics(y, pred, classes=[str(c) for c in range(n_classes)])["uar"]


def fit_speaker_adaptation(
    embeddings: np.ndarray,
    y: np.ndarray,
    speakers: Sequence[str],
    *,
    n_classes: int,
    splits: Sequence[Any],
    C: float = 1e-3,
    k: int = RECOMMENDED_CLIPS,
    draws: int = 3,
    groups: Sequence[str] | None = None,
    seed: int = 0,
) -> AdaptationFit:
    """Fit the adapted head on every row, calibrated and measured on speaker-disjoint ``splits``.

    Parameters
    ----------
    embeddings : np.ndarray [shape=(n, d)]
        :meth:`emovox.inference.Predictor.clip_embedding` of every training clip.
    y : np.ndarray [shape=(n,)]
        Class ids ``0..n_classes - 1``.
    speakers : sequence of str
        Speaker of each row (unique across corpora).
    splits : sequence of objects with ``train_idx`` / ``test_idx``
        Speaker-disjoint folds (:func:`emovox.evaluation.speaker_kfold`).
    C : float
        Inverse regularisation of the logistic regression.
    k : int
        Clips per held-out speaker for their offset (at least :data:`MIN_CLIPS`).
    draws : int
        Random draws of the ``k`` clips averaged in the figures.
    groups : sequence of str, optional
        A group (e.g. corpus) per row: figures per group too.
    """
    from emovox.inference.adaptation import speaker_centred
    from emovox.inference.calibration import calibrate
    from emovox.models.whisper_classifier import fit_standardised_logistic

    x, y = np.asarray(embeddings, dtype=np.float64), np.asarray(y, dtype=np.int64)
    speaker_ids = np.asarray([str(s) for s in speakers])
    if x.ndim != 2 or len(x) != len(y) or len(speaker_ids) != len(y):
        raise ConfigError(f"embeddings {x.shape}, labels {y.shape} and {len(speaker_ids)} speakers disagree")
    if k < MIN_CLIPS:
        raise ConfigError(f"k={k}: speaker adaptation needs at least {MIN_CLIPS} clips per speaker")
    centred = speaker_centred(x, speaker_ids).astype(np.float64)
    oof = np.zeros((draws, len(y), n_classes))
    for split in splits:
        tr, te = np.asarray(split.train_idx), np.asarray(split.test_idx)
        if set(speaker_ids[tr]) & set(speaker_ids[te]):
            raise ConfigError("the folds share speakers: speaker adaptation is measured on unseen speakers only")
        mean, scale, coef, intercept = fit_standardised_logistic(centred[tr], y[tr], C, n_classes)
        for d in range(draws):
            xte = speaker_centred(x[te], speaker_ids[te], k=k, seed=seed * 1000 + d).astype(np.float64)
            oof[d, te] = (xte - mean) / scale @ coef.T + intercept
    tested = np.zeros(len(y), bool)
    for split in splits:
        tested[np.asarray(split.test_idx)] = True
    if not tested.all():
        raise ConfigError("the folds must test every row once (out-of-fold calibration)")
    calibration = calibrate(oof[0], y)
    preds = oof.argmax(axis=2)
    figures: dict[str, float | dict[str, float]] = {
        "uar": float(np.mean([_uar(y, p, n_classes) for p in preds])),
        "accuracy": float(np.mean(preds == y[None])),
    }
    if groups is not None:
        group_ids = np.asarray([str(g) for g in groups])
        figures["per_group"] = {
            g: float(np.mean([_uar(y[group_ids == g], p[group_ids == g], n_classes) for p in preds]))
            for g in sorted(set(group_ids))
        }
    mean, scale, coef, intercept = fit_standardised_logistic(centred, y, C, n_classes)
    section = {
        "file": ADAPT_FILE,
        "temperature": float(calibration.temperature),
        "threshold": float(calibration.threshold),
        "C": float(C),
        "recommended_clips": RECOMMENDED_CLIPS,
        "min_clips": MIN_CLIPS,
        "method": "balanced logistic regression on standardised speaker-centred embeddings (each training "
        "speaker's rows minus that speaker's mean); a new speaker is centred with the mean embedding "
        "of a few unlabelled clips of theirs",
        "calibration": {
            "ece_before": calibration.ece_before,
            "ece_after": calibration.ece_after,
            "n_heldout": calibration.n_heldout,
            "keep_fraction": calibration.keep_fraction,
        },
        "heldout": {
            "protocol": f"{len(splits)} speaker-disjoint folds, each held-out speaker centred with "
            f"{k} random clips of their own (mean of {draws} draws)",
            "k": int(k),
            "draws": int(draws),
            **figures,
        },
        "n_train": int(len(y)),
        "n_speakers": int(len(set(speaker_ids))),
    }
    return AdaptationFit(
        mean.astype(np.float32),
        scale.astype(np.float32),
        coef.astype(np.float32),
        intercept.astype(np.float32),
        section,
    )


def add_adaptation(model_dir: str | os.PathLike, fit: AdaptationFit) -> Path:
    """Write ``adapt.safetensors`` and ``config["adaptation"]`` into an artifact (each file replaced atomically)."""
    from emovox.fileio import atomic_write_text

    model_dir = Path(model_dir)
    path = model_dir / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read {path}: {error}; is {model_dir} a model artifact?") from None
    written = write_adaptation(model_dir, fit.mean, fit.scale, fit.weight, fit.bias)
    config["adaptation"] = fit.section
    if isinstance(config.get("files"), dict):
        config["files"][ADAPT_FILE] = {"bytes": written.stat().st_size}
    atomic_write_text(path, json.dumps(config, indent=2) + "\n")
    return written
