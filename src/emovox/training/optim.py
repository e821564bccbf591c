"""The loss's class weights and the optimiser of a training run.

A model (or the module inside a ``DistributedDataParallel`` wrapper) that
defines ``optimizer_groups(lr, *, encoder_lr_scale, layer_decay) -> [dict]``
gets one parameter group per entry (its own learning rates, e.g. layer-wise
decay in :class:`emovox.models.whisper_finetune.FinetuneTop`), called with the
config's ``lr``, ``encoder_lr_scale`` and ``layer_decay``; any other model gets
one group of its trainable parameters at ``lr``.
"""

from __future__ import annotations

import numpy as np
import torch

from emovox.errors import ConfigError, ModelError
from emovox.training.config import TrainConfig
from emovox.training.data import balanced_class_weights

__all__ = ["class_weights", "make_optimizer"]


def class_weights(config: TrainConfig, labels: np.ndarray, n_classes: int) -> torch.Tensor | None:
    if config.class_weights == "none":
        return None
    if config.class_weights == "balanced":
        return torch.from_numpy(balanced_class_weights(labels, n_classes))
    weights = list(config.class_weights)
    if len(weights) != n_classes:
        raise ConfigError(f"class_weights has {len(weights)} values for {n_classes} classes")
    return torch.tensor(weights, dtype=torch.float32)


def make_optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ModelError(f"{type(model).__name__} has no trainable parameters")
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    groups = _model_groups(config, model, params)
    if groups is not None:
        return cls(groups, lr=config.lr, weight_decay=config.weight_decay)
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def _model_groups(config: TrainConfig, model: torch.nn.Module, params: list) -> list[dict] | None:
    """The model's own parameter groups (``optimizer_groups``), checked to hold each trainable parameter once."""
    from torch.nn.parallel import DistributedDataParallel

    while isinstance(model, DistributedDataParallel):
        model = model.module
    make = getattr(model, "optimizer_groups", None)
    if not callable(make):
        return None
    groups = list(make(config.lr, encoder_lr_scale=config.encoder_lr_scale, layer_decay=config.layer_decay))
    listed = [p for g in groups for p in g["params"]]
    if len(listed) != len({id(p) for p in listed}) or {id(p) for p in listed} != {id(p) for p in params}:
        raise ModelError(
            f"{type(model).__name__}.optimizer_groups must list every trainable parameter exactly once (a bug)"
        )
    return groups
