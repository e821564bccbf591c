"""Speaker adaptation (``--adapt``): a second head over speaker-centred embeddings.

Most of what a frozen encoder's pooled statistics carry is *who* speaks and
*how it was recorded*; a head trained on other speakers confuses a new voice's
offset with emotion. A Whisper-backed artifact may therefore carry a second
head, ``adapt.safetensors``, fitted on training rows from which each training
speaker's mean embedding was subtracted. Given a few unlabelled recordings of
one new speaker, the mean of their embeddings is that speaker's offset; every
later prediction subtracts it before the adapted head:

    logits = ((embedding - offset - mean) / scale) @ weight.T + bias

This module is the one implementation of each step: :func:`speaker_offset`
(a speaker's offset from their clips' embeddings), :func:`speaker_centred`
(training rows and held-out speakers centred by it, as the fit in
:mod:`emovox.recipes.speaker_adaptation` and the benchmarks do) and
:meth:`AdaptationHead.logits` (the adapted head applied after it, as
:meth:`emovox.inference.Predictor.adapt` does).

``embedding`` is the backend's ``embeddings()`` output ``(batch, n_features)``
(the head's input before standardisation). The adapted head has its own
calibration (temperature, rejection threshold) in ``config["adaptation"]``,
fitted on held-out speakers each centred with :data:`RECOMMENDED_CLIPS` random
clips of their own. It is a different product from the default prediction
(the user must give clips of the speaker first), so its figures are reported
separately (``docs/accurate_model.md``). Everything here is numpy: the ONNX
path stays torch-free.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emovox.errors import ConfigError, ModelError

__all__ = [
    "AdaptationHead",
    "ADAPT_FILE",
    "MIN_CLIPS",
    "RECOMMENDED_CLIPS",
    "SEGMENT_S",
    "SILENCE_PEAK",
    "speaker_centred",
    "speaker_offset",
    "speaker_segments",
    "write_adaptation",
]

ADAPT_FILE = "adapt.safetensors"
#: Fewest clips accepted: the offset of fewer is mostly the emotions they happen to hold.
MIN_CLIPS = 5
#: Clips the adapted head was calibrated and evaluated with (k = 20 in ``docs/accurate_model.md``).
RECOMMENDED_CLIPS = 20
#: Long adaptation recordings are cut into segments of this length (s), like the training clips.
SEGMENT_S = 3.0
#: A segment whose peak is under this (-60 dBFS) holds no audible sound: adaptation skips it.
SILENCE_PEAK = 10 ** (-60 / 20)
_TENSORS = ("mean", "scale", "weight", "bias")


def speaker_offset(embeddings: np.ndarray) -> np.ndarray:
    """A speaker's offset: the mean of their clips' embeddings.

    Parameters
    ----------
    embeddings : np.ndarray [shape=(k, ...)]
        One row per clip of the speaker (any trailing shape); the mean is taken in their dtype.

    Returns
    -------
    np.ndarray [shape=(...)]
        What centring subtracts from each of the speaker's rows.
    """
    return np.asarray(embeddings).mean(axis=0)


def speaker_centred(
    rows: np.ndarray, speakers: Sequence[str] | np.ndarray, *, k: int | None = None, seed: int = 0
) -> np.ndarray:
    """Subtract from each speaker's rows their :func:`speaker_offset` over ``k`` of their rows.

    Parameters
    ----------
    rows : np.ndarray [shape=(n, ...)]
        Embeddings (or pooled statistics), one row per clip.
    speakers : sequence of str [length n]
        The speaker of each row.
    k : int, optional
        Reference rows per speaker, drawn at random (``seed``) without labels:
        what ``--adapt`` does with a few unlabelled clips of a new speaker.
        All of the speaker's rows when ``None`` (or when they have at most ``k``).
    seed : int
        Seed of the draw.

    Returns
    -------
    np.ndarray [shape=(n, ...)], float32
    """
    rows = np.asarray(rows, dtype=np.float32)
    speaker_ids = np.asarray([str(s) for s in speakers])
    out = np.empty_like(rows)
    rng = np.random.default_rng(seed)
    for s in sorted(set(speaker_ids)):
        idx = np.flatnonzero(speaker_ids == s)
        ref = idx if k is None or k >= len(idx) else rng.choice(idx, size=k, replace=False)
        out[idx] = rows[idx] - speaker_offset(rows[ref])
    return out


@dataclass(frozen=True)
class AdaptationHead:
    """The adapted head: scaler ``mean``/``scale`` ``(d,)``, ``weight`` ``(n_classes, d)``, ``bias`` ``(n_classes,)``.

    ``temperature`` and ``threshold`` are its calibration; ``info`` the rest
    of ``config["adaptation"]`` (how it was fitted, its figures).
    """

    mean: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    temperature: float
    threshold: float
    info: Mapping[str, Any]

    @property
    def n_features(self) -> int:
        return int(self.mean.size)

    def offset(self, embeddings: np.ndarray) -> np.ndarray:
        """A speaker's :func:`speaker_offset` ``(d,)`` from their clips' embeddings ``(k, d)`` (``k >= MIN_CLIPS``)."""
        e = self._check(embeddings)
        if len(e) < MIN_CLIPS:
            raise ConfigError(
                f"speaker adaptation needs at least {MIN_CLIPS} clips of the speaker "
                f"(got {len(e)}); about {RECOMMENDED_CLIPS} are recommended"
            )
        return speaker_offset(e)

    def logits(self, embeddings: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """Logits ``(batch, n_classes)`` of embeddings ``(batch, d)`` centred by ``offset`` ``(d,)``."""
        x = (self._check(embeddings) - offset - self.mean) / self.scale
        return (x @ self.weight.T + self.bias).astype(np.float32)

    def _check(self, embeddings: np.ndarray) -> np.ndarray:
        e = np.asarray(embeddings, dtype=np.float64)
        if e.ndim != 2 or e.shape[1] != self.n_features:
            raise ModelError(
                f"embeddings of shape {e.shape} do not fit the adapted head's "
                f"{self.n_features} features: the artifact's files do not match"
            )
        return e

    @classmethod
    def from_artifact(cls, model_dir: str | os.PathLike, config: Mapping[str, Any], n_classes: int) -> AdaptationHead:
        """Read ``adapt.safetensors`` and ``config["adaptation"]`` (:class:`ModelError` if absent or bad)."""
        section = config.get("adaptation")
        path = Path(model_dir) / ADAPT_FILE
        if not path.is_file():
            raise ModelError(
                "this model has no speaker adaptation (no adapt.safetensors): --adapt works with "
                "the default model and artifacts written by scripts/add_speaker_adaptation.py"
            )
        if not isinstance(section, Mapping):
            raise ModelError(
                f"{path} has no 'adaptation' object in config.json beside it: rewrite both with "
                "scripts/add_speaker_adaptation.py"
            )
        try:
            from safetensors.numpy import load_file

            tensors = load_file(str(path))
        except Exception as error:  # safetensors raises its own types
            raise ModelError(f"cannot read {path}: {str(error).splitlines()[0]}") from None
        missing = [k for k in _TENSORS if k not in tensors]
        if missing:
            raise ModelError(f"{path} lacks {', '.join(missing)}: rewrite it with scripts/add_speaker_adaptation.py")
        mean, scale, weight, bias = (np.asarray(tensors[k], dtype=np.float64) for k in _TENSORS)
        d = mean.size
        if scale.shape != (d,) or weight.shape != (n_classes, d) or bias.shape != (n_classes,):
            raise ModelError(
                f"{path}: tensors of shapes {mean.shape}, {scale.shape}, {weight.shape}, "
                f"{bias.shape} do not form a head over {n_classes} labels"
            )
        from emovox.inference.backends import _number

        temperature = _number(section.get("temperature"), "adaptation.temperature", 1.0)
        threshold = _number(section.get("threshold"), "adaptation.threshold", 0.0)
        if not (temperature > 0 and 0.0 <= threshold <= 1.0):
            raise ModelError(
                f"config adaptation: temperature {temperature!r} must be > 0 and threshold {threshold!r} in [0, 1]"
            )
        return cls(mean, scale, weight, bias, temperature, threshold, dict(section))


def speaker_segments(y: np.ndarray, *, sample_rate_hz: int) -> list[np.ndarray]:
    """The audible segments of one prepared adaptation recording ``(n,)``.

    A recording up to twice :data:`SEGMENT_S` is one segment; a longer one is
    cut into segments of :data:`SEGMENT_S` (a shorter tail is dropped).
    Segments whose peak is under :data:`SILENCE_PEAK` are skipped.

    Returns
    -------
    list of np.ndarray [shape=(m,)]
        Possibly empty.
    """
    segment = int(SEGMENT_S * sample_rate_hz)
    pieces = [y] if y.size <= 2 * segment else [y[s : s + segment] for s in range(0, y.size - segment + 1, segment)]
    return [p for p in pieces if np.any(np.abs(p) >= SILENCE_PEAK)]


def write_adaptation(
    model_dir: str | os.PathLike, mean: np.ndarray, scale: np.ndarray, weight: np.ndarray, bias: np.ndarray
) -> Path:
    """Write ``adapt.safetensors`` (float32) atomically; the caller adds ``config["adaptation"]``."""
    from safetensors.numpy import save_file

    from emovox.fileio import atomic_output

    path = Path(model_dir) / ADAPT_FILE
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in zip(_TENSORS, (mean, scale, weight, bias))}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp))
    return path
