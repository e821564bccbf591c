"""Balancing rare classes by sampling them up to the median class count (seed S4).

:func:`median_balanced_indices` returns indices into the training set: every
original example once, plus, for each class with fewer examples than the
median class count, extra indices drawn (with replacement) from that class
until it reaches the median. The extra entries are meant to be augmented on
the fly (S4 applies noise, masks and amplitude scaling to them), so they are
flagged. Use it on the *training* indices of a split only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from emovox.augment.base import check_choice, check_rng
from emovox.errors import ConfigError


def median_target(labels) -> int:
    """The median of the per-class counts (classes present in ``labels``), rounded down."""
    labels = np.asarray(labels)
    _, counts = np.unique(labels, return_counts=True)
    return int(np.floor(np.median(counts)))


def median_balanced_indices(labels, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices that bring every class up to the median class count.

    Parameters
    ----------
    labels : array-like [shape=(n,)]
        Class ids or names of the training examples.
    rng : numpy.random.Generator

    Returns
    -------
    indices : np.ndarray [shape=(m,), dtype=int64]
        ``arange(n)`` followed by the extra draws (grouped by class, sorted class order).
    is_extra : np.ndarray [shape=(m,), dtype=bool]
        True for the added entries.
    """
    check_rng(rng)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ConfigError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    target = median_target(labels)
    extra = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        need = target - members.size
        if need > 0:
            extra.append(rng.choice(members, size=need, replace=True))
    extra_idx = np.concatenate(extra).astype(np.int64) if extra else np.zeros(0, dtype=np.int64)
    indices = np.concatenate([np.arange(labels.size, dtype=np.int64), extra_idx])
    is_extra = np.zeros(indices.size, dtype=bool)
    is_extra[labels.size :] = True
    return indices, is_extra


@dataclass(frozen=True)
class MedianBalancer:
    """Serialisable configuration of median balancing (``{"type": "median_balance"}``).

    ``strategy="median"`` is the only one for now (S4's choice).
    """

    name: ClassVar[str] = "median_balance"
    strategy: str = "median"

    def __post_init__(self) -> None:
        check_choice("balance strategy", self.strategy, ("median",))

    def __call__(self, labels, *, rng: np.random.Generator):
        return median_balanced_indices(labels, rng=rng)

    def to_dict(self) -> dict:
        return {"type": self.name, "strategy": self.strategy}

    @classmethod
    def from_dict(cls, data) -> MedianBalancer:
        return cls(strategy=data.get("strategy", "median"))
