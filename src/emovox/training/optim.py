"""The loss's class weights and the optimiser of a training run."""

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
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)
