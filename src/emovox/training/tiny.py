"""Tiny debug models and the "tiny" recipe: training smoke-tested on CPU in seconds.

``tiny-cnn`` is a two-layer 2-D CNN over a log-mel spectrogram computed inside
the model (its own fixed frontend, so the debug path does not depend on any
other layer); ``tiny-mlp`` is a one-hidden-layer MLP over feature vectors.
Both are sized from a :class:`~emovox.models.spec.TaskSpec`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from emovox.errors import ConfigError
from emovox.models.registry import register_architecture
from emovox.models.spec import TaskSpec
from emovox.training.config import TrainConfig
from emovox.training.recipes import Recipe, register_recipe


def _mel_filterbank(n_mels: int, n_fft: int, sample_rate_hz: int) -> np.ndarray:
    """HTK-scale triangular filters, ``(n_mels, n_fft // 2 + 1)``."""

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    bins = np.linspace(0, sample_rate_hz / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate_hz / 2), n_mels + 2))
    fb = np.zeros((n_mels, len(bins)))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        fb[i] = np.maximum(0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
    return fb.astype(np.float32)


class TinyLogMel(nn.Module):
    """``(batch, n)`` waveform -> ``(batch, n_mels, frames)`` log-mel (fixed, no weights)."""

    window: torch.Tensor
    fb: torch.Tensor

    def __init__(self, sample_rate_hz: int, *, n_mels: int = 32, win_s: float = 0.025, hop_s: float = 0.010) -> None:
        super().__init__()
        self.n_fft = 2 ** math.ceil(math.log2(win_s * sample_rate_hz))
        self.win = int(round(win_s * sample_rate_hz))
        self.hop = int(round(hop_s * sample_rate_hz))
        self.register_buffer("window", torch.hann_window(self.win), persistent=False)
        self.register_buffer(
            "fb", torch.from_numpy(_mel_filterbank(n_mels, self.n_fft, sample_rate_hz)), persistent=False
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        spec = (
            torch.stft(
                y,
                self.n_fft,
                hop_length=self.hop,
                win_length=self.win,
                window=self.window,
                center=True,
                return_complex=True,
            )
            .abs()
            .pow(2)
        )
        return torch.log(torch.matmul(self.fb, spec) + 1e-6)


class TinyCNN(nn.Module):
    """Log-mel -> 2 x (conv 3x3, BN, ReLU) -> average over time in 4 frequency bands -> linear.

    Input ``(batch, n_samples)`` float32; output ``(batch, n_classes)`` logits.
    ``features``/``classify`` split it at the spectrogram so feature-level
    augmentation (SpecAugment) can be applied in between.
    """

    def __init__(self, spec: TaskSpec, *, n_mels: int = 32, channels: int = 8, dropout: float = 0.1) -> None:
        super().__init__()
        if spec.input_kind != "waveform":
            raise ConfigError("tiny-cnn takes waveforms: use tiny-mlp for feature inputs")
        self.frontend = TinyLogMel(spec.sample_rate_hz, n_mels=n_mels)
        self.body = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.BatchNorm2d(2 * channels),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d((4, 1)),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(2 * channels * 4, spec.n_classes),
        )

    def features(self, y: torch.Tensor) -> torch.Tensor:
        """``(batch, n)`` -> per-utterance normalised log-mel ``(batch, n_mels, frames)``."""
        s = self.frontend(y)
        return (s - s.mean(dim=(1, 2), keepdim=True)) / (s.std(dim=(1, 2), keepdim=True) + 1e-5)

    def classify(self, s: torch.Tensor) -> torch.Tensor:
        return self.body(s.unsqueeze(1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(y))


class TinyMLP(nn.Module):
    """Flatten -> linear -> ReLU -> dropout -> linear; for ``"features"`` inputs."""

    def __init__(self, spec: TaskSpec, *, hidden: int = 32, dropout: float = 0.1) -> None:
        super().__init__()
        n_in = int(np.prod(spec.input_shape))
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, spec.n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_architecture("tiny-cnn")
def build_tiny_cnn(spec: TaskSpec, *, n_mels: int = 32, channels: int = 8, dropout: float = 0.1) -> TinyCNN:
    return TinyCNN(spec, n_mels=n_mels, channels=channels, dropout=dropout)


@register_architecture("tiny-mlp")
def build_tiny_mlp(spec: TaskSpec, *, hidden: int = 32, dropout: float = 0.1) -> TinyMLP:
    return TinyMLP(spec, hidden=hidden, dropout=dropout)


@register_recipe("tiny")
def tiny_recipe() -> Recipe:
    """Debug recipe: 1 s clips, tiny CNN on log-mel, 3 epochs. Not for accuracy figures."""
    return Recipe(
        name="tiny",
        arch="tiny-cnn",
        arch_params={"n_mels": 32, "channels": 8, "dropout": 0.1},
        train=TrainConfig(
            epochs=3, batch_size=16, lr=3e-3, scheduler="plateau", early_stop_patience=None, eval_batch_size=32
        ),
        label_scheme="native",
        sample_rate_hz=16000,
        clip_s=1.0,
        input_kind="waveform",
        normalize="peak",
        val_fraction=0.2,
        description="tiny CNN on log-mel for smoke tests (seconds on a CPU); not for accuracy figures",
    )
