"""Process set-up for training: seeds and torch's thread counts."""

from __future__ import annotations

import random

import torch

__all__ = ["seed_everything", "set_threads"]


def seed_everything(seed: int, *, threads: int | None = None) -> None:
    """Seed torch, Python ``random`` (and set torch's thread count).

    Call it before building a model so the initial weights are reproducible.
    NumPy randomness in emovox always goes through explicit generators.
    """
    if threads is not None:
        set_threads(threads)
    torch.manual_seed(seed)
    random.seed(seed)


def set_threads(threads: int) -> None:
    """``torch.set_num_threads`` (inter-op threads too, where still allowed)."""
    torch.set_num_threads(int(threads))
    try:
        torch.set_num_interop_threads(int(threads))
    except RuntimeError:  # already set once in this process
        pass
