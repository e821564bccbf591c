"""Exponential moving average (EMA) of a model's weights during training.

The averaged model is what gets validated, kept as "best" and returned when
``TrainConfig.ema_decay > 0``. It is smoother than the last step's weights.
On the acted corpora here it measured neutral (``docs/flagship_experiments.md``),
but the flagship recipes use it (decay 0.995), both the waveform one and the
cached-log-mel :func:`emovox.recipes.flagship.train_flagship`, which runs
through the same engine.

Update after optimiser step ``t`` (counted from 1)::

    d = min(decay, (1 + t) / (10 + t))        # short warm-up: early steps move the average fast
    ema_param = d * ema_param + (1 - d) * param
    ema_buffer = buffer                       # BatchNorm statistics are copied, not averaged
"""

from __future__ import annotations

import copy

import torch

from emovox.errors import ConfigError


class WeightAverage:
    """A frozen copy of ``model`` whose parameters follow an EMA of ``model``'s.

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained (copied once here; never modified).
    decay : float
        In ``(0, 1)``; the weight of the old average per step (before warm-up).

    Attributes
    ----------
    model : torch.nn.Module
        The averaged copy (eval mode, no gradients).
    steps : int
        Optimiser steps folded in so far (checkpointed; set it when resuming).
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ConfigError(f"ema_decay={decay!r} must be in (0, 1)")
        self.decay = float(decay)
        self.steps = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold ``model``'s current weights into the average (call after each optimiser step)."""
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for avg, cur in zip(self.model.parameters(), model.parameters()):
            avg.mul_(d).add_(cur.detach(), alpha=1 - d)
        for avg_buf, cur_buf in zip(self.model.buffers(), model.buffers()):
            avg_buf.copy_(cur_buf)
