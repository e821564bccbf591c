"""Calibrated confidence: temperature scaling, ECE and the rejection threshold.

Temperature scaling (Guo et al. 2017) divides a model's logits by one scalar
``T`` fitted on held-out data by minimising the negative log-likelihood; it
changes confidences, never the predicted class. Expected calibration error
(ECE) is measured over 15 equal-width confidence bins before and after.

Rejection rule (stored as ``threshold`` in the artifact config): the largest
threshold that keeps at least ``keep_fraction`` (default 90 %) of the
correctly classified held-out clips, i.e. the ``1 - keep_fraction`` quantile of
the calibrated confidences of the correct held-out predictions. Predictions
under it become ``"unknown"``. It needs no unknown-class data, so every
artifact can carry one; ``bench/open_set.py`` measures how many clips of
unseen emotions it rejects.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, SupportsInt

import numpy as np

from emovox.errors import ConfigError, EmovoxError, ModelError
from emovox.fileio import atomic_write_text
from emovox.inference.predictor import load_model
from emovox.inference.scores import pool_logits, softmax

__all__ = [
    "softmax",
    "nll",
    "fit_temperature",
    "expected_calibration_error",
    "rejection_threshold",
    "CalibrationResult",
    "calibrate",
    "write_calibration",
    "calibrate_artifact",
    "calibrate_pooled",
    "N_BINS",
    "THRESHOLD_RULE",
]

N_BINS = 15
THRESHOLD_RULE = (
    "largest threshold keeping >= {keep:.0%} of the correct held-out predictions "
    "(the {q:.0%} quantile of their calibrated confidence)"
)


def _check(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] < 2:
        raise ConfigError(f"logits must be shaped (n, n_classes >= 2) with n > 0, got {z.shape}")
    if y.shape != (z.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"labels must be {z.shape[0]} integer class ids, got shape {y.shape} {y.dtype}")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ConfigError(f"labels must lie in [0, {z.shape[1] - 1}], got [{y.min()}, {y.max()}]")
    if not np.all(np.isfinite(z)):
        raise ConfigError("logits contain NaN or infinite values")
    return z, y.astype(np.int64)


def nll(logits: np.ndarray, labels: np.ndarray, *, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / T)``."""
    z, y = _check(logits, labels)
    z = z / float(temperature)
    m = z.max(axis=1, keepdims=True)
    logsumexp = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return float(np.mean(logsumexp - z[np.arange(len(y)), y]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """Temperature minimising held-out NLL (L-BFGS-B over ``log T``, analytic gradient).

    Parameters
    ----------
    logits : np.ndarray [shape=(n, n_classes)]
        Uncalibrated held-out logits.
    labels : np.ndarray [shape=(n,)], int
        True class ids.
    bounds : (float, float)
        Search range of ``T``.

    Returns
    -------
    float
        The fitted temperature ``T > 0`` (``> 1`` softens an over-confident model).
    """
    from scipy.optimize import minimize

    z, y = _check(logits, labels)
    rows = np.arange(len(y))

    def objective(v: np.ndarray) -> tuple[float, np.ndarray]:
        t = math.exp(float(v[0]))
        s = z / t
        m = s.max(axis=1, keepdims=True)
        e = np.exp(s - m)
        total = e.sum(axis=1)
        p = e / total[:, None]
        loss = np.mean(m[:, 0] + np.log(total) - s[rows, y])
        # d loss / d log T = mean( s_y - sum_k p_k s_k )
        grad = np.mean(s[rows, y] - (p * s).sum(axis=1))
        return float(loss), np.array([grad])

    lo, hi = (math.log(b) for b in bounds)
    res = minimize(objective, x0=np.array([0.0]), jac=True, method="L-BFGS-B", bounds=[(lo, hi)])
    return float(math.exp(float(res.x[0])))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, *, n_bins: int = N_BINS) -> float:
    """ECE: bin-weighted mean |accuracy - confidence| over ``n_bins`` equal-width bins.

    Parameters
    ----------
    probs : np.ndarray [shape=(n, n_classes)]
        Class probabilities.
    labels : np.ndarray [shape=(n,)], int
        True class ids.
    """
    p, y = _check(probs, labels)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    # bin i holds (i/n, (i+1)/n]; confidence 0 goes to bin 0
    idx = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = idx == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def rejection_threshold(confidences: np.ndarray, correct: np.ndarray, *, keep_fraction: float = 0.90) -> float:
    """Largest threshold keeping ``>= keep_fraction`` of the correct predictions.

    Parameters
    ----------
    confidences : np.ndarray [shape=(n,)]
        Calibrated top-class probabilities of held-out clips.
    correct : np.ndarray [shape=(n,)], bool
        Whether each prediction was right.
    keep_fraction : float
        Fraction of correct predictions that must stay above the threshold.
    """
    if not 0.0 < keep_fraction <= 1.0:
        raise ConfigError(f"keep_fraction={keep_fraction!r} must lie in (0, 1]")
    c = np.sort(np.asarray(confidences, dtype=np.float64)[np.asarray(correct, dtype=bool)])
    if c.size == 0:
        return 0.0
    # keep the top ceil(keep * n) correct confidences: threshold = the smallest of them
    n_keep = int(math.ceil(keep_fraction * c.size - 1e-9))
    return float(c[c.size - n_keep])


@dataclass(frozen=True)
class CalibrationResult:
    """What :func:`calibrate` measured; :meth:`to_config` is what the artifact stores."""

    temperature: float
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    threshold: float
    keep_fraction: float
    n_heldout: int
    accuracy: float

    def to_config(self) -> dict:
        """``{"calibration": {...}, "threshold": t}`` for the artifact's config.json."""
        return {
            "calibration": {
                "method": "temperature",
                "temperature": round(self.temperature, 6),
                "ece_before": round(self.ece_before, 6),
                "ece_after": round(self.ece_after, 6),
                "nll_before": round(self.nll_before, 6),
                "nll_after": round(self.nll_after, 6),
                "n_bins": N_BINS,
                "n_heldout": self.n_heldout,
                "heldout_accuracy": round(self.accuracy, 6),
                "threshold_rule": THRESHOLD_RULE.format(keep=self.keep_fraction, q=1 - self.keep_fraction),
                "keep_fraction": self.keep_fraction,
            },
            "threshold": round(self.threshold, 6),
        }


def calibrate(logits: np.ndarray, labels: np.ndarray, *, keep_fraction: float = 0.90) -> CalibrationResult:
    """Fit the temperature and the rejection threshold on held-out logits.

    Parameters
    ----------
    logits : np.ndarray [shape=(n, n_classes)]
        Held-out logits (speakers unseen in training).
    labels : np.ndarray [shape=(n,)], int
        True class ids.
    keep_fraction : float
        See :func:`rejection_threshold`.
    """
    z, y = _check(logits, labels)
    t = fit_temperature(z, y)
    before, after = softmax(z), softmax(z, temperature=t)
    correct = after.argmax(axis=1) == y
    return CalibrationResult(
        temperature=t,
        ece_before=expected_calibration_error(before, y),
        ece_after=expected_calibration_error(after, y),
        nll_before=nll(z, y),
        nll_after=nll(z, y, temperature=t),
        threshold=rejection_threshold(after.max(axis=1), correct, keep_fraction=keep_fraction),
        keep_fraction=float(keep_fraction),
        n_heldout=int(len(y)),
        accuracy=float(correct.mean()),
    )


def write_calibration(artifact_dir: str | os.PathLike, result: CalibrationResult) -> Path:
    """Store ``result`` in ``artifact_dir/config.json`` (atomic replace); returns its path."""
    path = Path(artifact_dir) / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read {path}: {error}; is {artifact_dir} a model artifact?") from None
    config.update(result.to_config())
    return atomic_write_text(path, json.dumps(config, indent=2) + "\n")


def calibrate_artifact(
    artifact_dir: str | os.PathLike,
    sources: Iterable[Any],
    labels: Iterable[str | SupportsInt],
    *,
    keep_fraction: float = 0.90,
    backend: str = "auto",
    sample_rate: int | None = None,
) -> CalibrationResult:
    """Calibrate a saved model on held-out clips through the inference path, and store the result.

    The logits come from :meth:`~emovox.inference.Predictor.clip_logits`,
    exactly as ``predict`` computes them (same decoding, trimming, cropping,
    windowing and pooling over a clip's windows), so the stored temperature
    and threshold fit what users will see. The speech gate is off: every
    held-out clip is scored.

    Parameters
    ----------
    artifact_dir : str or PathLike
        Model artifact; its ``config.json`` is updated atomically.
    sources : sequence
        Held-out clips (paths, bytes, or arrays at ``sample_rate`` Hz), from
        speakers the model was not trained on.
    labels : sequence of str or int
        Class name (one of the model's labels) or class index of each clip.
    keep_fraction : float
        See :func:`rejection_threshold`.
    backend : str
        Backend used to compute the logits.
    sample_rate : int or None
        Rate of array sources in Hz (required for arrays, as in :meth:`Predictor.predict`).
    """
    model = load_model(artifact_dir, backend=backend, min_confidence=0.0, gate=False)
    y = []
    for label in labels:
        if isinstance(label, str):
            if label not in model.labels:
                raise ConfigError(f"label {label!r} is not a class of the model {list(model.labels)}")
            y.append(model.labels.index(label))
        else:
            y.append(int(label))
    sources = list(sources)
    if len(sources) != len(y):
        raise ConfigError(f"got {len(sources)} clips and {len(y)} labels: give one label per clip")
    windows = []
    for _, clip in model.iter_clip_logits(sources, sample_rate=sample_rate):
        if isinstance(clip, EmovoxError):
            raise clip
        assert clip.window_logits is not None  # gate=False: every readable clip is scored
        windows.append(clip.window_logits)
    result = calibrate_pooled(windows, np.asarray(y, dtype=np.int64), keep_fraction=keep_fraction)
    write_calibration(artifact_dir, result)
    return result


def calibrate_pooled(
    window_logits: Sequence[np.ndarray], labels: np.ndarray, *, keep_fraction: float = 0.90, max_rounds: int = 20
) -> CalibrationResult:
    """:func:`calibrate` on clips of several windows, whose pooled logits depend on the temperature.

    A clip's logits are its windows' pooled at ``T`` (:func:`~emovox.inference.scores.pool_logits`),
    so ``T`` is fitted to a fixed point: pool at ``T``, fit ``T'`` on the pooled logits, repeat
    until ``T'`` equals ``T`` (one round when every clip has one window). The result then
    describes exactly the scores ``predict`` gives at the stored ``T``.

    Parameters
    ----------
    window_logits : sequence of np.ndarray [shape=(n_windows_i, n_classes)]
        Raw window logits of each held-out clip.
    labels : np.ndarray [shape=(n_clips,)], int
    """
    temperature = 1.0
    for _ in range(max_rounds):
        pooled = np.stack([pool_logits(w, temperature=temperature) for w in window_logits])
        result = calibrate(pooled, labels, keep_fraction=keep_fraction)
        if abs(result.temperature - temperature) <= 1e-4 * temperature:
            return result
        temperature = result.temperature
    return result
