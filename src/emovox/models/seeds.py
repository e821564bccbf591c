"""PyTorch replicas of the five seed systems' networks (S0-S4).

Each network follows its seed's layer stack (``../shared/seeds/``) and, where
the seed printed a Keras ``model.summary()``, has exactly its parameter count
when counted the Keras way (:func:`keras_param_count`: BatchNorm moving mean
and variance are *non-trainable parameters* in Keras and *buffers* in PyTorch).

=====  =========================  =================  ===============================
seed   architecture name          input (no batch)   Keras count (given / replica)
=====  =========================  =================  ===============================
S0     ``s0-conv1d-mfcc``         ``(40,)``          87,944 / 87,944
S1     ``s1-conv1d-4536``         ``(4536,)``        12,600,039 / 12,600,039
S2     ``s2-conv2d-melspec``      ``(128, 130)``     not given (see :class:`S2MelCNN`)
S3     ``s3-conv1d-2376``         ``(2376,)``        7,193,736 / 7,193,736
S4     ``s4-conv2d-two-channel``  ``(2, 32, 94)``    not given
=====  =========================  =================  ===============================

All modules return logits (the seeds' final softmax is folded into the loss).
The registry builders (``build_sN``) start them the Keras way
(:func:`keras_init`): Glorot-uniform kernels, zero biases, BatchNorm momentum
0.99 and epsilon 1e-3. PyTorch's own defaults are not a neutral substitute:
with them the S2 replica never left the uniform output on its unscaled dB
input (UAR exactly 1/6 after 6 epochs), with Keras's it learns (random split
accuracy 0.44 after 8 epochs).
Keras ``padding='same'`` pooling is reproduced exactly (:class:`SamePool1d`:
TensorFlow pads ``total = max((ceil(n / s) - 1) * s + k - n, 0)``, the smaller
half on the left; max pooling ignores the padding, average pooling divides by
the number of real samples in the window).

Shapes of S3 under Keras 'same' padding (stride-2 pools halve with ceil):
2376 -conv/pool-> 1188 -> 594 -> 297 -> 149 -> 75; flatten 75 x 128 = 9,600;
dense 9,600 x 512 + 512 = 4,915,712; total 7,193,736 of which 4,352 BN moving
statistics. S1: 4536 -avgpool(5, 3, same)-> 1512; flatten 1512 x 32 = 48,384.
"""

from __future__ import annotations

import math
from typing import TypedDict, TypeVar

import torch
from torch import nn
from torch.nn import functional as F

from emovox.errors import ConfigError

_M = TypeVar("_M", bound=nn.Module)


class _BatchNormArgs(TypedDict):
    """Keras ``BatchNormalization`` defaults as PyTorch ``BatchNorm`` keyword arguments."""

    eps: float
    momentum: float


__all__ = [
    "SamePool1d",
    "S0MfccCNN",
    "S1Conv1D",
    "S2MelCNN",
    "S3Conv1D",
    "S4TwoChannelCNN",
    "keras_init",
    "keras_param_count",
    "SEED_ARCHITECTURES",
]


def keras_param_count(model: nn.Module) -> dict[str, int]:
    """Parameter counts as Keras ``model.summary()`` reports them.

    Returns ``{"total", "trainable", "non_trainable"}``: trainable = PyTorch
    parameters with ``requires_grad``; non-trainable = frozen parameters plus
    BatchNorm ``running_mean`` / ``running_var`` buffers (Keras's
    ``moving_mean`` / ``moving_variance``). ``num_batches_tracked`` has no
    Keras counterpart and is not counted.
    """
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    moving = 0
    for m in model.modules():
        if (
            isinstance(m, nn.modules.batchnorm._BatchNorm)
            and m.track_running_stats
            and m.running_mean is not None
            and m.running_var is not None
        ):
            moving += m.running_mean.numel() + m.running_var.numel()
    return {"total": trainable + frozen + moving, "trainable": trainable, "non_trainable": frozen + moving}


def keras_init(model: _M) -> _M:
    """Re-initialise ``model`` as Keras would have built it; returns ``model``.

    Conv and Dense (Linear) kernels: Glorot (Xavier) uniform; biases: zeros;
    BatchNormalization: momentum 0.99 (PyTorch's ``momentum=0.01``), epsilon 1e-3.
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum, module.eps = 0.01, 1e-3
    return model


class SamePool1d(nn.Module):
    """1-D max or average pooling with Keras/TensorFlow ``padding='same'``.

    Input ``(batch, channels, n)`` -> ``(batch, channels, ceil(n / stride))``.
    """

    def __init__(self, kernel_size: int, stride: int, *, mode: str = "max") -> None:
        super().__init__()
        if mode not in ("max", "avg"):
            raise ConfigError(f"pool mode {mode!r} must be 'max' or 'avg'")
        self.kernel_size, self.stride, self.mode = int(kernel_size), int(stride), mode

    def _pads(self, n: int) -> tuple[int, int]:
        out = math.ceil(n / self.stride)
        total = max((out - 1) * self.stride + self.kernel_size - n, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = self._pads(x.shape[-1])
        if self.mode == "max":
            x = F.pad(x, (left, right), value=float("-inf"))
            return F.max_pool1d(x, self.kernel_size, self.stride)
        ones = torch.ones((1, 1, x.shape[-1]), dtype=x.dtype, device=x.device)
        s = F.avg_pool1d(F.pad(x, (left, right)), self.kernel_size, self.stride)
        c = F.avg_pool1d(F.pad(ones, (left, right)), self.kernel_size, self.stride)
        return s / c

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, mode={self.mode!r}, padding='same'"


def _check_input(x: torch.Tensor, shape: tuple[int, ...], who: str) -> None:
    if tuple(x.shape[1:]) != shape:
        raise ConfigError(
            f"{who} expects input (batch, {', '.join(map(str, shape))}), got {tuple(x.shape)}: "
            f"use the recipe's input pipeline"
        )


def _unflatten(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Accept the flattened form ``(batch, prod(dims))`` (feature-set vectors) as well."""
    if x.dim() == 2 and x.shape[1] == math.prod(dims):
        return x.reshape(x.shape[0], *dims)
    return x


def _dims_or_flat(spec, default: tuple[int, ...]) -> tuple[int, ...]:
    dims = _dims(spec, default)
    return default if len(dims) == 1 and dims[0] == math.prod(default) else dims


class S0MfccCNN(nn.Module):
    """S0 (AuraMood): Conv1D over the 40 MFCC means read as a length-40 sequence.

    Conv1D(128, 5, same) -> ReLU -> Dropout -> MaxPool(8) -> Conv1D(128, 5, same)
    -> ReLU -> Dropout -> Flatten (5 x 128 = 640) -> Dense(n_classes).
    Input ``(batch, 40)`` -> logits ``(batch, n_classes)``. 87,944 parameters
    with 8 classes. Dropout 0.1 follows the widely copied Keras notebook this
    summary comes from (the write-up does not give the rate).
    """

    def __init__(self, n_classes: int = 8, *, n_mfcc: int = 40, dropout: float = 0.1) -> None:
        super().__init__()
        if n_mfcc % 8:
            raise ConfigError(f"n_mfcc={n_mfcc} must be a multiple of 8 (MaxPool(8), valid padding)")
        self.n_mfcc = n_mfcc
        self.features = nn.Sequential(
            nn.Conv1d(1, 128, 5, padding=2),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.MaxPool1d(8),
            nn.Conv1d(128, 128, 5, padding=2),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.classifier = nn.Linear(128 * (n_mfcc // 8), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, (self.n_mfcc,), "S0")
        h = self.features(x.unsqueeze(1))
        # Keras flattens (time, channels) channels-last: transpose to match its weight order.
        return self.classifier(h.transpose(1, 2).flatten(1))


def _conv_bn(c_in: int, c_out: int, k: int) -> list[nn.Module]:
    return [nn.Conv1d(c_in, c_out, k, padding=k // 2), nn.ReLU(), nn.BatchNorm1d(c_out, eps=1e-3, momentum=0.01)]


class S1Conv1D(nn.Module):
    """S1: Conv1D stack over 4,536 frame features (ZCR + RMS + 40 MFCC x 108 frames).

    Conv1D(512, 5, same)+ReLU -> BN -> AvgPool(5, 3, same) -> Dropout .6 ->
    Conv1D(64, 5)+ReLU -> BN -> Conv1D(32, 5)+ReLU -> BN -> Dropout .3 ->
    Flatten (1512 x 32) -> Dense 256+ReLU -> Dropout .37 -> Dense 128+ReLU ->
    Dense(n_classes). 12,600,039 Keras parameters with 7 classes (1,216 of
    them BN moving statistics). BatchNorm uses Keras's eps=1e-3, momentum .99.
    """

    def __init__(self, n_classes: int = 7, *, n_inputs: int = 4536) -> None:
        super().__init__()
        self.n_inputs = n_inputs
        self.features = nn.Sequential(
            *_conv_bn(1, 512, 5),
            SamePool1d(5, 3, mode="avg"),
            nn.Dropout(0.6),
            *_conv_bn(512, 64, 5),
            *_conv_bn(64, 32, 5),
            nn.Dropout(0.3),
        )
        n = math.ceil(n_inputs / 3)
        self.classifier = nn.Sequential(
            nn.Linear(n * 32, 256),
            nn.ReLU(),
            nn.Dropout(0.37),
            nn.Linear(256, 128),
            nn.ReLU(),
            nn.Linear(128, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, (self.n_inputs,), "S1")
        h = self.features(x.unsqueeze(1))
        return self.classifier(h.transpose(1, 2).flatten(1))


class S3Conv1D(nn.Module):
    """S3: five Conv1D blocks over 2,376 features (ZCR + RMS + 20 MFCC x 108 frames).

    (512, k5) BN MaxPool(5, 2) -> (512, k5) BN MaxPool(5, 2) Dropout .2 ->
    (256, k5) BN MaxPool(5, 2) -> (256, k3) BN MaxPool(5, 2) Dropout .2 ->
    (128, k3) BN MaxPool(3, 2) Dropout .2 -> Flatten (75 x 128) ->
    Dense 512+ReLU -> BN -> Dense(n_classes). Convolutions and pools use
    'same' padding. 7,193,736 Keras parameters with 8 classes (4,352 BN
    moving statistics).
    """

    def __init__(self, n_classes: int = 8, *, n_inputs: int = 2376) -> None:
        super().__init__()
        self.n_inputs = n_inputs
        bn: _BatchNormArgs = {"eps": 1e-3, "momentum": 0.01}
        layers: list[nn.Module] = []
        spec = [
            (1, 512, 5, 5, False),
            (512, 512, 5, 5, True),
            (512, 256, 5, 5, False),
            (256, 256, 3, 5, True),
            (256, 128, 3, 3, True),
        ]
        n = n_inputs
        for c_in, c_out, k, pool, drop in spec:
            layers += [
                nn.Conv1d(c_in, c_out, k, padding=k // 2),
                nn.ReLU(),
                nn.BatchNorm1d(c_out, **bn),
                SamePool1d(pool, 2, mode="max"),
            ]
            if drop:
                layers.append(nn.Dropout(0.2))
            n = math.ceil(n / 2)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(n * 128, 512),
            nn.ReLU(),
            nn.BatchNorm1d(512, **bn),
            nn.Linear(512, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, (self.n_inputs,), "S3")
        h = self.features(x.unsqueeze(1))
        return self.classifier(h.transpose(1, 2).flatten(1))


class S2MelCNN(nn.Module):
    """S2: Conv2D + ReLU + MaxPool + Dropout blocks -> Dense softmax on a mel spectrogram.

    The write-up gives the layer types but not their sizes; this replica uses
    two blocks Conv2D(32, 3x3, same) and Conv2D(64, 3x3, same), each followed
    by ReLU, MaxPool(2x2) and Dropout(0.25), then Flatten -> Dense(n_classes).
    Input ``(batch, 128, 130)`` (or flattened ``(batch, 16640)``): librosa's default 128-band power mel (in dB)
    of 66,150 samples at 22,050 Hz (hop 512 -> 130 frames). With 6 classes:
    412,038 Keras parameters (6 classes; 409,600 of them in the dense layer).
    """

    def __init__(
        self,
        n_classes: int = 6,
        *,
        n_mels: int = 128,
        n_frames: int = 130,
        channels: tuple[int, int] = (32, 64),
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        self.input_dims = (n_mels, n_frames)
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(dropout),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(dropout),
        )
        self.classifier = nn.Linear(c2 * (n_mels // 4) * (n_frames // 4), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _unflatten(x, self.input_dims)
        _check_input(x, self.input_dims, "S2")
        h = self.features(x.unsqueeze(1))
        return self.classifier(h.permute(0, 2, 3, 1).flatten(1))


class S4TwoChannelCNN(nn.Module):
    """S4: three Conv2D blocks over the two-channel (mel, features) image.

    Following the write-up's layer table: Conv2D(32, 3x3)+ReLU -> BN ->
    MaxPool(2x2) -> Conv2D(64, 3x3)+ReLU -> Dropout .3 -> Conv2D(128, 3x3)+ReLU
    -> Dropout .4 -> GlobalAveragePooling -> Dense 128+ReLU -> Dropout .5 ->
    Dense(n_classes). Keras 'valid' padding (its default; the write-up gives
    none; global pooling makes the count independent of it).
    Input channels-first ``(batch, 2, 32, 94)`` (Keras: ``(32, 94, 2)``), or
    flattened ``(batch, 6016)`` as the ``seed-s4`` feature set gives it.
    """

    def __init__(self, n_classes: int = 6, *, input_dims: tuple[int, ...] = (2, 32, 94)) -> None:
        super().__init__()
        self.input_dims = tuple(input_dims)
        c = self.input_dims[0]
        self.features = nn.Sequential(
            nn.Conv2d(c, 32, 3),
            nn.ReLU(),
            nn.BatchNorm2d(32, eps=1e-3, momentum=0.01),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Conv2d(64, 128, 3),
            nn.ReLU(),
            nn.Dropout(0.4),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _unflatten(x, self.input_dims)
        _check_input(x, self.input_dims, "S4")
        return self.classifier(self.features(x))


# --------------------------------------------------------------------------- registry glue
def _dims(spec, default: tuple[int, ...]) -> tuple[int, ...]:
    dims = getattr(spec, "feature_dims", None)
    return tuple(dims) if dims else default


def build_s0(spec, **params) -> S0MfccCNN:
    """Registry builder: ``spec.feature_dims == (n_mfcc,)``."""
    (n_mfcc,) = _dims(spec, (40,))
    return keras_init(S0MfccCNN(spec.n_classes, n_mfcc=n_mfcc, **params))


def build_s1(spec, **params) -> S1Conv1D:
    (n,) = _dims(spec, (4536,))
    return keras_init(S1Conv1D(spec.n_classes, n_inputs=n, **params))


def build_s2(spec, **params) -> S2MelCNN:
    n_mels, n_frames = _dims_or_flat(spec, (128, 130))
    return keras_init(S2MelCNN(spec.n_classes, n_mels=n_mels, n_frames=n_frames, **params))


def build_s3(spec, **params) -> S3Conv1D:
    (n,) = _dims(spec, (2376,))
    return keras_init(S3Conv1D(spec.n_classes, n_inputs=n, **params))


def build_s4(spec, **params) -> S4TwoChannelCNN:
    return keras_init(S4TwoChannelCNN(spec.n_classes, input_dims=_dims_or_flat(spec, (2, 32, 94)), **params))


#: architecture name -> builder(spec, **params)
SEED_ARCHITECTURES = {
    "s0-conv1d-mfcc": build_s0,
    "s1-conv1d-4536": build_s1,
    "s2-conv2d-melspec": build_s2,
    "s3-conv1d-2376": build_s3,
    "s4-conv2d-two-channel": build_s4,
}


def _register() -> None:
    try:
        from emovox.models.registry import register_architecture
    except ImportError:  # pragma: no cover - registry not installed
        return
    for name, builder in SEED_ARCHITECTURES.items():
        register_architecture(name, builder)


_register()
