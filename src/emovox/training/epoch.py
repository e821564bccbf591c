"""One training epoch: the forward pass with its augmentation hooks, the loss, the optimiser steps.

:class:`TrainForward` is the training forward pass (``spec_augment`` between
``model.features`` and ``model.classify``); :func:`train_epoch` runs every
batch of one epoch (wave augmentation, mixup, loss, step, per-step schedule,
weight averaging) and returns the epoch's training loss and accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, cast

import numpy as np
import torch
import torch.nn.functional as F

from emovox.errors import ConfigError, ModelError
from emovox.training.distributed import DistContext, all_reduce_sum, global_batch_loss
from emovox.training.ema import WeightAverage

__all__ = ["Augment", "TrainForward", "train_epoch"]

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class _SplitModel(Protocol):
    """A model that ``spec_augment`` can cut in two: ``classify(features(x))`` gives the logits."""

    def features(self, x: torch.Tensor) -> torch.Tensor: ...

    def classify(self, feats: torch.Tensor) -> torch.Tensor: ...


class TrainForward(torch.nn.Module):
    """The training forward pass: ``model(x)``, or features -> ``spec_augment`` -> classify.

    One module so that DistributedDataParallel wraps the whole pass.
    """

    def __init__(self, model: torch.nn.Module, spec_augment: Augment | None, rng: np.random.Generator) -> None:
        super().__init__()
        self.model = model
        self.spec_augment = spec_augment
        self.rng = rng

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec_augment is None:
            return self.model(x)
        split = cast(_SplitModel, self.model)  # train_model checked it has features and classify
        with torch.no_grad():
            feats = split.features(x)
        feats = _as_tensor(self.spec_augment(feats.numpy(), self.rng), "spec_augment", feats.shape)
        return split.classify(feats)


def train_epoch(
    model,
    forward,
    loader,
    optimizer,
    config,
    weights,
    rng,
    wave_augment,
    callbacks,
    epoch,
    ema: WeightAverage | None = None,
    ctx: DistContext | None = None,
    *,
    step_scheduler=None,
) -> tuple[float, float]:
    distributed = ctx is not None and ctx.enabled
    model.train()
    total_loss = 0.0
    correct = 0
    seen = 0
    for batch_index, batch in enumerate(loader):
        x, y = batch[0], batch[1]
        if wave_augment is not None:
            x = _as_tensor(wave_augment(x.numpy(), rng), "wave_augment", x.shape)
        perm, lam = None, 1.0
        if config.mixup_alpha > 0:
            lam = float(rng.beta(config.mixup_alpha, config.mixup_alpha))
            perm = torch.from_numpy(rng.permutation(len(y)))
            x = lam * x + (1.0 - lam) * x[perm]
        logits = forward(x)
        if distributed:
            assert ctx is not None  # distributed implies a context
            loss, share, n_real = global_batch_loss(
                logits,
                y,
                batch[2],
                ctx=ctx,
                weights=weights,
                label_smoothing=config.label_smoothing,
                perm=perm,
                lam=lam,
            )
        else:
            loss = F.cross_entropy(logits, y, weight=weights, label_smoothing=config.label_smoothing)
            if perm is not None:
                loss = lam * loss + (1.0 - lam) * F.cross_entropy(
                    logits, y[perm], weight=weights, label_smoothing=config.label_smoothing
                )
        if not torch.isfinite(loss):
            raise ModelError(f"training diverged at epoch {epoch + 1} (loss {loss.item()}): lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if step_scheduler is not None:
            step_scheduler.step()
        if ema is not None:
            ema.update(model)
        value = float(loss.item())
        if distributed:  # sums of this process's share; added up over processes below
            real = batch[2]
            total_loss += share * n_real
            correct += int(((logits.argmax(dim=1) == y) & real).sum())
            seen += int(real.sum())
        else:
            total_loss += value * len(y)
            correct += int((logits.argmax(dim=1) == y).sum())
            seen += len(y)
        for cb in callbacks:
            cb.on_batch_end(epoch, batch_index, loss=value)
    if distributed:
        total_loss, correct, seen = all_reduce_sum([total_loss, correct, seen]).tolist()
    return total_loss / max(seen, 1), correct / max(seen, 1)


def _as_tensor(array, hook: str, shape) -> torch.Tensor:
    if isinstance(array, torch.Tensor):
        array = array.detach().numpy()
    array = np.asarray(array)
    if array.shape != tuple(shape):
        raise ConfigError(f"{hook} returned shape {array.shape}, expected {tuple(shape)}: keep the batch shape")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
