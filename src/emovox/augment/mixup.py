"""Mixup (Zhang et al. 2018) on batches of inputs and labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from emovox.augment.base import Transform, _set, check_number, check_rng, register_transform
from emovox.errors import ConfigError


def one_hot(labels, n_classes: int) -> np.ndarray:
    """Integer class ids ``(batch,)`` -> one-hot float32 ``(batch, n_classes)``."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ConfigError(f"labels must be a 1-D array of class ids, got shape {labels.shape} {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ConfigError(f"class ids must be in [0, {n_classes}), got range [{labels.min()}, {labels.max()}]")
    out = np.zeros((labels.shape[0], n_classes), dtype=np.float32)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


@register_transform
@dataclass(frozen=True)
class Mixup(Transform):
    """Blend each example with another of the batch: ``x' = lam x + (1 - lam) x[perm]``.

    Parameters
    ----------
    alpha : float
        ``lam ~ Beta(alpha, alpha)``, > 0 (0.2-0.4 is common).
    per_example : bool
        One ``lam`` per example instead of one per batch.

    Notes
    -----
    Call: ``t(x, y, *, rng, n_classes=None) -> (x_mixed, y_soft)`` where ``x``
    is a numpy array or torch tensor ``(batch, ...)``, ``y`` either class ids
    ``(batch,)`` (then ``n_classes`` is required) or soft labels
    ``(batch, n_classes)`` whose rows sum to 1. ``y_soft`` rows sum to 1.
    ``rng`` is a ``numpy.random.Generator`` for both numpy and torch inputs.
    """

    name: ClassVar[str] = "mixup"
    kind: ClassVar[str] = "batch"
    alpha: float = 0.2
    per_example: bool = False

    def __post_init__(self) -> None:
        _set(self, "alpha", check_number("mixup alpha", self.alpha, lo=0.0, hi=100.0, lo_open=True))

    def __call__(self, x, y, *, rng: np.random.Generator, n_classes: int | None = None, **_):
        check_rng(rng)
        batch = x.shape[0]
        y_arr = y.detach().cpu().numpy() if hasattr(y, "detach") else np.asarray(y)
        if y_arr.ndim == 1:
            if n_classes is None:
                raise ConfigError("mixup with integer labels needs n_classes=...: pass the number of classes")
            soft = one_hot(y_arr.astype(np.int64), n_classes)
        elif y_arr.ndim == 2:
            soft = y_arr.astype(np.float32)
        else:
            raise ConfigError(f"mixup labels must be (batch,) or (batch, n_classes), got shape {y_arr.shape}")
        if soft.shape[0] != batch:
            raise ConfigError(f"mixup got {batch} inputs but {soft.shape[0]} labels: pass one label per input")
        lam = rng.beta(self.alpha, self.alpha, size=batch if self.per_example else 1).astype(np.float32)
        lam = np.broadcast_to(lam, (batch,))
        perm = rng.permutation(batch)
        y_mix = lam[:, None] * soft + (1.0 - lam[:, None]) * soft[perm]
        shape = (batch,) + (1,) * (x.ndim - 1)
        if hasattr(x, "detach"):
            import torch

            lam_t = torch.as_tensor(lam.copy(), dtype=x.dtype, device=x.device).reshape(shape)
            perm_t = torch.as_tensor(perm, device=x.device)
            x_mix = lam_t * x + (1 - lam_t) * x[perm_t]
            return x_mix, torch.as_tensor(y_mix, device=x.device)
        x = np.asarray(x)
        lam_x = lam.reshape(shape).astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32)
        return lam_x * x + (1 - lam_x) * x[perm], y_mix
