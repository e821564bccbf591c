"""Emotion from a frozen Whisper encoder: pooled hidden states -> standardised -> linear head.

:class:`WhisperEmotionClassifier` is one ``torch.nn.Module`` from waveform to
logits, so it saves as an ordinary emovox artifact (architecture
``"whisper-linear"``: encoder, scaler and head in one ``model.safetensors``)
and predicts through :class:`emovox.inference.Predictor` like any other model
(variable length up to 30 s, ``preprocessing.crop = "none"``).

Per clip it computes, for each of the encoder's ``n_layers + 1`` hidden states
(:class:`~emovox.models.whisper_encoder.WhisperEncoder`), the mean and the
standard deviation over frames, keeps the states listed in ``layers``,
standardises them with the training set's mean and scale, and applies a
linear layer: multinomial logistic regression (:class:`HeadFit`, loaded with
:meth:`WhisperEmotionClassifier.set_head`). The head is fitted by
:func:`emovox.training.whisper_fit.fit_linear_head`, which picks the layer set
and the regularisation by an inner speaker-disjoint cross-validation on the
training speakers only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from emovox.errors import ConfigError
from emovox.models.whisper_encoder import WhisperEncoder, WhisperEncoderConfig, WhisperLogMel
from emovox.models.whisper_pooling import pool_hidden_states

__all__ = ["WhisperEmotionClassifier", "HeadFit", "flatten_layers", "pool_hidden_states", "C_GRID"]

#: Inverse regularisation strengths tried by :func:`emovox.training.whisper_fit.fit_linear_head`.
C_GRID = (1e-3, 1e-2, 1e-1, 1.0)


class WhisperEmotionClassifier(nn.Module):
    """Waveform ``(batch, n)`` at 16 kHz -> logits ``(batch, n_classes)``.

    Parameters
    ----------
    n_classes : int
    encoder : Mapping
        :class:`WhisperEncoderConfig` sizes (``n_mels``, ``d_model``, ``n_heads``,
        ``n_layers``, ``n_ctx``).
    layers : sequence of int
        Hidden states fed to the head (0 = after the positions, ``n_layers`` =
        the final LayerNorm output).

    Notes
    -----
    The clips of one batch must have equal length (no mask); 0.5 s to 30 s.
    """

    feature_mean: torch.Tensor
    feature_scale: torch.Tensor

    def __init__(self, n_classes: int, *, encoder: Mapping, layers: Sequence[int]) -> None:
        super().__init__()
        config = WhisperEncoderConfig.from_dict(encoder, source="architecture params 'encoder'")
        layers = tuple(int(i) for i in layers)
        if not layers or any(not 0 <= i <= config.n_layers for i in layers) or len(set(layers)) != len(layers):
            raise ConfigError(f"layers={list(layers)} must be distinct hidden-state indices in 0..{config.n_layers}")
        self.layers = layers
        self.frontend = WhisperLogMel(config.n_mels)
        self.encoder = WhisperEncoder(config).requires_grad_(False)
        n_features = len(layers) * 2 * config.d_model
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_scale", torch.ones(n_features))
        self.head = nn.Linear(n_features, n_classes)

    def pooled(self, y: torch.Tensor) -> torch.Tensor:
        """Pooled hidden states of every layer: ``(batch, n_states, 2, d_model)``."""
        return pool_hidden_states(self.encoder(self.frontend(y)))

    def embedding(self, y: torch.Tensor) -> torch.Tensor:
        """Waveform ``(batch, n)`` -> the head's input before standardisation, ``(batch, len(layers) * 2 * d_model)``.

        The pooled statistics of the states in ``layers`` (layer-major, then mean/std,
        then channel): what speaker adaptation (:mod:`emovox.inference.adaptation`) averages.
        """
        if y.ndim == 1:
            y = y.unsqueeze(0)
        return self.pooled(y)[:, list(self.layers)].flatten(1)

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        """:meth:`embedding` ``(batch, n_features)`` -> logits ``(batch, n_classes)``."""
        return self.head((embedding - self.feature_mean) / self.feature_scale)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embedding(y))

    def set_head(self, fit: HeadFit) -> None:
        """Load a fitted scaler and logistic regression (shapes must match ``layers``)."""
        if tuple(fit.layers) != self.layers:
            raise ConfigError(f"head was fitted on layers {list(fit.layers)}, the model uses {list(self.layers)}")
        with torch.no_grad():
            self.feature_mean.copy_(torch.from_numpy(fit.mean))
            self.feature_scale.copy_(torch.from_numpy(fit.scale))
            self.head.weight.copy_(torch.from_numpy(fit.coef))
            self.head.bias.copy_(torch.from_numpy(fit.intercept))


@dataclass(frozen=True)
class HeadFit:
    """A fitted head: layer set, ``C``, scaler ``(d,)`` and logistic regression ``(n_classes, d)``, ``(n_classes,)``."""

    layers: tuple[int, ...]
    C: float
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    inner_uar: float
    #: Logits of each training row from the inner fold that held it out (chosen pair), for calibration.
    oof_logits: np.ndarray | None = None

    def logits(self, pooled: np.ndarray) -> np.ndarray:
        """Logits ``(n, n_classes)`` of pooled features ``(n, n_states, 2, d_model)``."""
        x = (flatten_layers(pooled, self.layers) - self.mean) / self.scale
        return x @ self.coef.T + self.intercept


def flatten_layers(pooled: np.ndarray, layers: Sequence[int]) -> np.ndarray:
    """``(n, n_states, 2, d_model)`` -> ``(n, len(layers) * 2 * d_model)`` float64 rows."""
    rows = pooled[:, list(layers)]
    return rows.reshape(len(pooled), int(np.prod(rows.shape[1:]))).astype(np.float64)


def fit_standardised_logistic(
    x: np.ndarray, y: np.ndarray, C: float, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardise ``x`` ``(n, d)`` and fit a balanced logistic regression of inverse strength ``C``.

    Returns ``(mean (d,), scale (d,), coef (n_classes, d), intercept (n_classes,))``; a class
    absent from ``y`` gets an intercept of -1e4, so it is never predicted.
    """
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-8] = 1.0
    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=2000)
    clf.fit((x - mean) / scale, y)
    coef = np.zeros((n_classes, x.shape[1]))
    intercept = np.full(n_classes, -1e4)  # a class absent from training is never predicted
    if len(clf.classes_) == 2 and n_classes == 2:
        coef[1], intercept[:] = clf.coef_[0], (0.0, clf.intercept_[0])
    else:
        coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
    return mean, scale, coef, intercept


def build_whisper_linear(spec, *, encoder: Mapping, layers: Sequence[int]) -> WhisperEmotionClassifier:
    """Registry builder (architecture ``"whisper-linear"``)."""
    return WhisperEmotionClassifier(spec.n_classes, encoder=encoder, layers=layers)


def _register() -> None:
    from emovox.models.registry import register_architecture

    register_architecture("whisper-linear", build_whisper_linear)
    # the other heads' architecture ("whisper-head"), so that loading any Whisper artifact finds it
    import emovox.models.whisper_heads  # noqa: F401


_register()
