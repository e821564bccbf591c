"""Training: one loop for every neural model, atomic checkpoints, exact resume.

Main entry points::

    TrainConfig                      # typed, validated, JSON round-trip
    ArrayDataset, fix_length, BalancedSampler
    train_model(model, train, val, config, out_dir=..., resume=...) -> TrainResult
    register_recipe / get_recipe     # named input pipeline + arch + config bundles
    run_recipe(recipe, records, out_dir=...)   # what `emovox train` runs
"""

from __future__ import annotations

from emovox.training.callbacks import Callback, TqdmProgress
from emovox.training.config import TrainConfig
from emovox.training.data import ArrayDataset, BalancedSampler, fix_length
from emovox.training.engine import TrainResult, predict_logits, seed_everything, train_model
from emovox.training.recipes import Recipe, get_recipe, recipe_names, register_recipe

__all__ = [
    "ArrayDataset",
    "BalancedSampler",
    "Callback",
    "Recipe",
    "TqdmProgress",
    "TrainConfig",
    "TrainResult",
    "fix_length",
    "get_recipe",
    "predict_logits",
    "recipe_names",
    "register_recipe",
    "seed_everything",
    "train_model",
]
