"""SpecAugment time and frequency masks on batched spectrograms.

Inputs are arrays or tensors of shape ``(n_freq, n_frames)`` (one example) or
``(batch, ..., n_freq, n_frames)``: masks are drawn independently per example
(axis 0) and shared by any axes between the batch and the last two (e.g. the
two channels of seed S4). Frequency is axis -2, time axis -1.

Pass a ``torch.Generator`` with a tensor and a ``numpy.random.Generator`` with
a numpy array; the input is not modified (a masked copy is returned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from emovox.augment.base import (
    Transform,
    _set,
    check_choice,
    check_number,
    check_range,
    register_transform,
)
from emovox.errors import ConfigError


def _is_tensor(x) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(x, torch.Tensor)


def _draw_int(rng, low: int, high: int) -> int:
    """Uniform integer in [low, high] from a numpy or torch generator."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(low, high + 1))
    import torch

    if isinstance(rng, torch.Generator):
        return int(torch.randint(low, high + 1, (), generator=rng))
    raise ConfigError(
        f"rng must be a numpy.random.Generator or torch.Generator, got {type(rng).__name__}: "
        f"pass rng=torch.Generator().manual_seed(seed) for tensors"
    )


@dataclass(frozen=True)
class _Mask(Transform):
    kind: ClassVar[str] = "spectrogram"
    axis: ClassVar[int] = -1

    width: tuple = (0, 10)
    n_masks: int = 1
    fill: str = "zero"

    def __post_init__(self) -> None:
        lo, hi = check_range(f"{self.name} width", self.width, lo=0, hi=100_000, unit="bins")
        if lo != int(lo) or hi != int(hi):
            raise ConfigError(f"{self.name} width {self.width!r} must be whole numbers of bins")
        _set(self, "width", (int(lo), int(hi)))
        _set(self, "n_masks", check_number(f"{self.name} n_masks", self.n_masks, lo=0, hi=100, integer=True))
        check_choice(f"{self.name} fill", self.fill, ("zero", "mean"))

    def __call__(self, x, *, rng, **_):
        tensor = _is_tensor(x)
        if not tensor:
            x = np.asarray(x)
        if x.ndim < 2:
            raise ConfigError(
                f"{self.name} needs a spectrogram of shape (..., n_freq, n_frames), got shape {tuple(x.shape)}"
            )
        out = x.clone() if tensor else x.copy()
        single = out.ndim == 2
        batch = out[None] if single else out
        size = batch.shape[self.axis]
        for b in range(batch.shape[0]):
            item = batch[b]
            value = float(item.mean()) if self.fill == "mean" else 0.0
            for _ in range(self.n_masks):
                w = min(_draw_int(rng, *self.width), size)
                start = _draw_int(rng, 0, size - w)
                if self.axis == -1:
                    item[..., start : start + w] = value
                else:
                    item[..., start : start + w, :] = value
        return out


@register_transform
@dataclass(frozen=True)
class FrequencyMask(_Mask):
    """Set ``n_masks`` bands of consecutive frequency bins per example to 0 (or the mean).

    Parameters
    ----------
    width : (low, high)
        Band width in bins, drawn uniformly (inclusive); clipped to ``n_freq``.
    n_masks : int
        Masks per example (they may overlap).
    fill : {"zero", "mean"}
        Fill value: 0, or the example's mean (useful on log-mel in dB).
    """

    name: ClassVar[str] = "frequency_mask"
    axis: ClassVar[int] = -2
    width: tuple = (0, 8)


@register_transform
@dataclass(frozen=True)
class TimeMask(_Mask):
    """Set ``n_masks`` runs of consecutive frames per example to 0 (or the mean).

    Parameters
    ----------
    width : (low, high)
        Run length in frames, drawn uniformly (inclusive); clipped to ``n_frames``.
    n_masks : int
    fill : {"zero", "mean"}
    """

    name: ClassVar[str] = "time_mask"
    axis: ClassVar[int] = -1
    width: tuple = (0, 20)
