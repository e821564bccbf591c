"""Train the Whisper-backed emotion model: pooled encoder features -> fitted head -> artifact.

The encoder is frozen, so training is: decode each clip through the product
path (:func:`emovox.audio.load_audio`, :func:`emovox.audio.trim_for_model`),
pool the encoder's hidden states once per clip (cached on disk, keyed by the
file's bytes and the encoder's weights), then fit the head
(:func:`emovox.models.whisper_classifier.fit_linear_head`; layer set and
``C`` chosen by inner speaker-disjoint CV on the training speakers). The
artifact holds the whole waveform-to-logits module, calibrated (temperature
and rejection threshold) on the inner out-of-fold logits, so
``emovox predict --model DIR`` and ``emovox evaluate --model DIR`` take it.

The encoder weights come from a local folder written by
``scripts/import_whisper_ct2.py`` (nothing is downloaded).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from emovox.errors import EmovoxError
from emovox.models.whisper_classifier import HeadFit, WhisperEmotionClassifier, fit_linear_head, pool_hidden_states
from emovox.models.whisper_encoder import WEIGHTS_NAME, WhisperLogMel, load_whisper_encoder

__all__ = ["encoder_id", "pooled_features", "build_classifier", "train_whisper_model", "PREPROCESSING"]

SAMPLE_RATE_HZ = 16000
#: The artifact's preprocessing: full clip (up to 30 s), the model silence trim, no normalisation.
PREPROCESSING = {"sample_rate_hz": SAMPLE_RATE_HZ, "crop": "none", "trim_silence": True, "normalize": None}


def encoder_id(encoder_dir: str | os.PathLike) -> str:
    """SHA-256 of the encoder's weights file: identifies the features it produces."""
    h = hashlib.sha256()
    with open(Path(encoder_dir) / WEIGHTS_NAME, "rb") as handle:
        while chunk := handle.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def pooled_features(records: Sequence, encoder_dir: str | os.PathLike, *,
                    cache_dir: str | os.PathLike | None = None, augment=None, seed: int = 0,
                    progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Pooled hidden states of every record: ``(n, n_layers + 1, 2, d_model)`` float32.

    Clips longer than 30 s are cut to their first 30 s (the encoder's limit).
    With ``cache_dir`` each clip's features are stored under a key of its
    file's bytes, the encoder's weights and this preprocessing. ``augment``
    (an :mod:`emovox.augment` transform) is applied to each trimmed clip first,
    with a generator seeded by ``seed`` and the file's bytes: one reproducible
    augmented copy per clip, for training rows only.
    """
    from emovox.audio import load_audio, trim_for_model
    from emovox.features.cache import FeatureCache, cache_key, file_fingerprint

    encoder = load_whisper_encoder(encoder_dir)
    frontend = WhisperLogMel(encoder.config.n_mels)
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    config = {"whisper_encoder": encoder_id(encoder_dir) if cache else None, "preprocessing": PREPROCESSING,
              "pooling": "mean+std per hidden state", "max_s": 30.0}
    if augment is not None:
        config["augment"] = {"transform": augment.to_dict(), "seed": seed}
    rows = []
    for i, record in enumerate(records):
        path = os.fspath(getattr(record, "path", record))
        fingerprint = file_fingerprint(path) if (cache or augment is not None) else None
        key = cache_key(fingerprint, config) if cache else None
        row = cache.get(key) if cache else None
        if row is None:
            try:
                y = trim_for_model(load_audio(path, sample_rate_hz=SAMPLE_RATE_HZ), sample_rate_hz=SAMPLE_RATE_HZ)
            except EmovoxError as error:
                raise type(error)(f"{path}: {error}") from error
            if augment is not None:
                rng = np.random.default_rng([seed, int(fingerprint[:15], 16)])
                y = np.asarray(augment(y, sample_rate_hz=SAMPLE_RATE_HZ, rng=rng), dtype=np.float32)
            with torch.inference_mode():
                row = pool_hidden_states(encoder(frontend(torch.from_numpy(y[: 30 * SAMPLE_RATE_HZ])[None])))[0]
            row = row.numpy().astype(np.float32)
            if cache:
                cache.put(key, row)
        rows.append(row)
        if progress:
            progress(i + 1, len(records))
    return np.stack(rows)


def build_classifier(encoder_dir: str | os.PathLike, fit: HeadFit, n_classes: int) -> WhisperEmotionClassifier:
    """The waveform-to-logits module: the encoder's weights plus a fitted head."""
    encoder = load_whisper_encoder(encoder_dir)
    model = WhisperEmotionClassifier(n_classes, encoder=encoder.config.to_dict(), layers=fit.layers)
    model.encoder.load_state_dict(encoder.state_dict())
    model.set_head(fit)
    return model.eval()


def train_whisper_model(records: Sequence, encoder_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                        scheme: str = "native", cache_dir: str | os.PathLike | None = None,
                        seed: int = 0, progress: Callable[[int, int], None] | None = None) -> dict:
    """Fit the head on ``records`` and save a calibrated artifact in ``out_dir``; returns a summary.

    Parameters
    ----------
    records : sequence of emovox.corpora.Record
        Training clips (speakers are used for the inner CV).
    encoder_dir : path-like
        Whisper encoder folder (``model.safetensors`` + ``config.json``).
    out_dir : path-like
        Artifact folder (replaced atomically).
    scheme : str
        Label scheme (see :func:`emovox.labels.resolve_scheme`).
    """
    from emovox.evaluation.experiment import prepare_labels
    from emovox.inference.calibration import calibrate
    from emovox.models.artifact import make_config, save_artifact
    from emovox.models.spec import TaskSpec
    from emovox.training.pipeline import data_card

    t0 = time.perf_counter()
    kept, y, classes = prepare_labels(records, scheme)
    pooled = pooled_features(kept, encoder_dir, cache_dir=cache_dir, progress=progress)
    t1 = time.perf_counter()
    fit = fit_linear_head(pooled, y, [r.speaker_key for r in kept], n_classes=len(classes), seed=seed)
    calibration = calibrate(fit.oof_logits, y)
    model = build_classifier(encoder_dir, fit, len(classes))
    spec = TaskSpec(labels=tuple(classes), sample_rate_hz=SAMPLE_RATE_HZ, clip_s=3.0, input_kind="waveform")
    encoder_config = model.encoder.config.to_dict()
    config = make_config(
        spec, "whisper-linear", {"encoder": encoder_config, "layers": list(fit.layers)},
        preprocessing=dict(PREPROCESSING),
        training={"recipe": "whisper-linear", "scheme": scheme, "C": fit.C, "layers": list(fit.layers),
                  "inner_cv_uar": fit.inner_uar, "encoder": {**encoder_config, "sha256": encoder_id(encoder_dir)},
                  "data": data_card(kept, classes=classes, labels=y), "seed": seed},
        metrics={"inner_cv": {"uar": fit.inner_uar, "protocol": "4-fold speaker k-fold inside the training data"}},
        **calibration.to_config(),
    )
    artifact = save_artifact(out_dir, model, config)
    return {"artifact": str(artifact), "classes": list(classes), "layers": list(fit.layers), "C": fit.C,
            "inner_cv_uar": fit.inner_uar, "temperature": calibration.temperature,
            "threshold": calibration.threshold, "n_train": len(kept),
            "features_s": round(t1 - t0, 2), "fit_s": round(time.perf_counter() - t1, 2)}
