"""The training batches: sampler, batch order and collation of one run (one process or torchrun shards)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler
from torch.utils.data.sampler import BatchSampler

from emovox.errors import ConfigError
from emovox.training.config import TrainConfig
from emovox.training.data import ArrayDataset, BalancedSampler, NumpyBatchSampler, RaggedDataset, collate
from emovox.training.distributed import DistContext, PaddedView, ShardedBatchSampler, collate_with_mask

__all__ = ["BatchAugment", "BatchCollate", "make_train_loader"]

BatchAugment = Callable[[list[np.ndarray], np.random.Generator], np.ndarray]


def make_train_loader(
    train_data: ArrayDataset | RaggedDataset,
    train_labels: np.ndarray,
    config: TrainConfig,
    ctx: DistContext,
    rng: np.random.Generator,
    sampler_gen: torch.Generator,
    batch_augment: BatchAugment | None,
) -> DataLoader:
    """The training loader: balanced or random sampling from ``sampler_gen``, NumPy shuffling from ``rng``.

    ``config.shuffle == "numpy"`` or ``config.last_batch`` other than
    ``"keep"``: batches of :class:`~emovox.training.data.NumpyBatchSampler`
    or a :class:`~torch.utils.data.BatchSampler`; under torchrun: this
    process's shard of every global batch, padded (``collate_with_mask``);
    otherwise a plain loader. ``batch_augment`` builds each batch
    (:class:`BatchCollate`).
    """
    sampler: BalancedSampler | RandomSampler
    if config.balanced_sampling:
        sampler = BalancedSampler(train_labels, generator=sampler_gen)
    else:
        sampler = RandomSampler(train_data, generator=sampler_gen)
    collate_fn = collate if batch_augment is None else BatchCollate(batch_augment, rng)
    if config.shuffle == "numpy" or config.last_batch != "keep":
        batches: NumpyBatchSampler | BatchSampler
        if config.shuffle == "numpy":
            batches = NumpyBatchSampler(
                len(train_labels),
                config.batch_size,
                rng,
                last_batch=config.last_batch,
                balanced_labels=train_labels if config.balanced_sampling else None,
            )
        else:
            batches = BatchSampler(sampler, config.batch_size, drop_last=config.last_batch == "drop")
        loader = DataLoader(
            train_data, batch_sampler=batches, collate_fn=collate_fn, num_workers=0, generator=sampler_gen
        )
    elif ctx.enabled:
        shards = ShardedBatchSampler(sampler, batch_size=config.batch_size, rank=ctx.rank, world_size=ctx.world_size)
        loader = DataLoader(
            PaddedView(train_data),
            batch_sampler=shards,
            collate_fn=collate_with_mask,
            num_workers=0,
            generator=sampler_gen,
        )
    else:
        loader = DataLoader(
            train_data,
            batch_size=config.batch_size,
            sampler=sampler,
            collate_fn=collate_fn,
            num_workers=0,
            generator=sampler_gen,
            drop_last=False,
        )

    return loader


class BatchCollate:
    """The loader's collate with a ``batch_augment`` hook: ``(x, y)`` tensors from a list of examples."""

    def __init__(self, batch_augment: BatchAugment, rng: np.random.Generator) -> None:
        self.batch_augment = batch_augment
        self.rng = rng

    def __call__(self, items: Sequence[tuple[np.ndarray, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        x = np.asarray(self.batch_augment([item[0] for item in items], self.rng), dtype=np.float32)
        if x.shape[:1] != (len(items),):
            raise ConfigError(f"batch_augment returned shape {x.shape} for {len(items)} examples")
        y = np.asarray([item[1] for item in items], dtype=np.int64)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)
