"""Learning-rate schedules of the training engine.

Per-epoch schedules (stepped once after each epoch's validation):

- ``"plateau"``: ReduceLROnPlateau on the monitored validation metric;
- ``"cosine"``: linear warm-up over ``warmup_epochs``, then cosine decay to ``min_lr``.

Per-step schedules (stepped after every optimiser step):

- ``"onecycle"``: :class:`torch.optim.lr_scheduler.OneCycleLR` peaking at
  ``lr`` (each parameter group at its own rate) after ``warmup_fraction`` of the steps, cosine annealing (momentum
  cycled too): the flagship recipe's schedule;
- ``"cosine_steps"``: linear warm-up over ``warmup_fraction`` of the steps,
  then cosine decay to 0: the Whisper heads' schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from emovox.training.config import TrainConfig

#: Schedules stepped after every optimiser step rather than after every epoch.
PER_STEP = ("onecycle", "cosine_steps")

Scheduler = torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, *, steps_per_epoch: int) -> Scheduler | None:
    """The scheduler named by ``config.scheduler`` (``None`` for ``"none"``).

    Parameters
    ----------
    config : TrainConfig
    optimizer : torch.optim.Optimizer
    steps_per_epoch : int
        Optimiser steps per epoch (batches of the training loader); sizes the per-step schedules.
    """
    if config.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min" if config.monitor == "val_loss" else "max",
            factor=config.plateau_factor,
            patience=config.plateau_patience,
            min_lr=config.min_lr,
        )
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_factor(config))
    total = max(1, steps_per_epoch * config.epochs)
    if config.scheduler == "onecycle":
        peaks = [float(group["lr"]) for group in optimizer.param_groups]  # each group peaks at its own rate
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=peaks, total_steps=total, pct_start=config.warmup_fraction, anneal_strategy="cos"
        )
    if config.scheduler == "cosine_steps":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_steps_factor(total, config.warmup_fraction))
    return None


def cosine_factor(config: TrainConfig) -> Callable[[int], float]:
    """LR multiplier per epoch: linear warm-up, then cosine decay to ``min_lr``."""
    floor = min(config.min_lr / config.lr, 1.0)
    warm = config.warmup_epochs
    span = max(config.epochs - warm, 1)

    def factor(epoch: int) -> float:
        if epoch < warm:
            return (epoch + 1) / (warm + 1)
        progress = min((epoch - warm) / span, 1.0)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def cosine_steps_factor(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """LR multiplier per step ``i`` (from 0): ``min((i + 1) / w, cosine decay to 0 over the steps after w)``.

    ``w = max(1, floor(total_steps * warmup_fraction))`` warm-up steps.
    """
    warmup = max(1, math.floor(total_steps * warmup_fraction + 1e-9))
    span = max(1, total_steps - warmup)

    def factor(i: int) -> float:
        progress = min(1.0, max(0, i + 1 - warmup) / span)
        return min((i + 1) / warmup, 0.5 * (1.0 + math.cos(math.pi * progress)))

    return factor
