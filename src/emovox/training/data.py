"""In-memory datasets, fixed-length crop/pad, collation, balanced sampling.

Inputs are NumPy arrays already in memory (waveforms of any length, or
feature arrays); the last axis is the time axis that :func:`fix_length`
crops or pads. Random crops are derived from ``(seed, epoch, index)`` so a
batch is the same whether an epoch runs straight through or after a resume.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from emovox.errors import ConfigError

CROPS = ("center", "random", "start")


def fix_length(
    x: np.ndarray, length: int, *, crop: str = "center", rng: np.random.Generator | None = None
) -> np.ndarray:
    """Crop or zero-pad the last axis of ``x`` to ``length``.

    Parameters
    ----------
    x : np.ndarray [shape=(..., n)]
    length : int
        Target size of the last axis.
    crop : str
        Where to cut a longer input: ``"center"``, ``"start"`` or ``"random"``
        (needs ``rng``). Shorter inputs are padded at the end, or, with
        ``"center"``, on both sides.

    Returns
    -------
    np.ndarray [shape=(..., length)], same dtype.
    """
    if crop not in CROPS:
        raise ConfigError(f"crop={crop!r} is unknown: expected one of {', '.join(CROPS)}")
    n = x.shape[-1]
    if n == length:
        return x
    if n > length:
        if crop == "start":
            start = 0
        elif crop == "center":
            start = (n - length) // 2
        else:
            if rng is None:
                raise ConfigError("crop='random' needs a numpy Generator")
            start = int(rng.integers(0, n - length + 1))
        return x[..., start : start + length]
    pad = length - n
    before = pad // 2 if crop == "center" else 0
    widths = [(0, 0)] * (x.ndim - 1) + [(before, pad - before)]
    return np.pad(x, widths)


class ArrayDataset(Dataset):
    """``(input, label)`` pairs from in-memory arrays, cropped/padded to a length.

    Parameters
    ----------
    inputs : sequence of np.ndarray [shape=(..., n_i)] or np.ndarray [shape=(N, ..., n)]
        Waveforms (any length) or feature arrays.
    labels : sequence of int [shape=(N,)]
        Class indices.
    length : int or None
        Size of the last axis after :func:`fix_length`; ``None`` keeps inputs
        as they are (they must then all have the same shape).
    crop : str
        ``"random"`` for training (a new offset per epoch), ``"center"`` or
        ``"start"`` for evaluation.
    seed : int
        Seeds random crops together with the epoch and the index.
    """

    def __init__(
        self,
        inputs: Sequence[np.ndarray] | np.ndarray,
        labels: Sequence[int] | np.ndarray,
        *,
        length: int | None = None,
        crop: str = "center",
        seed: int = 0,
    ) -> None:
        if len(inputs) != len(labels):
            raise ConfigError(f"{len(inputs)} inputs but {len(labels)} labels: give one label per input")
        if len(inputs) == 0:
            raise ConfigError("a dataset needs at least one example")
        if crop not in CROPS:
            raise ConfigError(f"crop={crop!r} is unknown: expected one of {', '.join(CROPS)}")
        self.inputs = [np.asarray(x, dtype=np.float32) for x in inputs]
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.labels.ndim != 1 or (self.labels < 0).any():
            raise ConfigError("labels must be a 1-D sequence of non-negative class indices")
        self.length = length
        self.crop = crop
        self.seed = int(seed)
        self.epoch = 0
        if length is None:
            shapes = {x.shape for x in self.inputs}
            if len(shapes) != 1:
                raise ConfigError(f"inputs have {len(shapes)} different shapes: pass length= to crop/pad them")

    def set_epoch(self, epoch: int) -> None:
        """Select the random crops of ``epoch`` (called by the engine)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        x = self.inputs[index]
        if self.length is not None:
            rng = None
            if self.crop == "random":
                rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            x = fix_length(x, self.length, crop=self.crop, rng=rng)
        return x, int(self.labels[index])

    @property
    def n_classes_seen(self) -> int:
        return int(self.labels.max()) + 1


def collate(items: Sequence[tuple[np.ndarray, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``(input, label)`` pairs into ``(x [batch, ...], y [batch])`` tensors."""
    xs = np.stack([x for x, _ in items]).astype(np.float32, copy=False)
    ys = np.asarray([y for _, y in items], dtype=np.int64)
    return torch.from_numpy(xs), torch.from_numpy(ys)


def class_counts(labels: Sequence[int] | np.ndarray, n_classes: int) -> np.ndarray:
    """Examples per class, ``(n_classes,)`` int."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)[:n_classes]


def balanced_class_weights(labels: Sequence[int] | np.ndarray, n_classes: int) -> np.ndarray:
    """``n / (k * count_c)`` per class (sklearn's "balanced"); absent classes get 0."""
    counts = class_counts(labels, n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


class BalancedSampler(Sampler[int]):
    """Every index once, plus seeded extra draws of classes under the median count.

    Each epoch, a class with fewer examples than the median class count (over
    the classes present) is topped up to the median by drawing its examples
    with replacement; the whole list is then shuffled. All randomness comes
    from ``generator``, whose state the engine checkpoints.
    """

    def __init__(self, labels: Sequence[int] | np.ndarray, *, generator: torch.Generator) -> None:
        self.labels = np.asarray(labels, dtype=np.int64)
        self.generator = generator
        counts = np.bincount(self.labels)
        present = counts[counts > 0]
        self.target = int(np.median(present)) if len(present) else 0
        self.by_class = [np.flatnonzero(self.labels == c) for c in range(len(counts))]

    def __len__(self) -> int:
        return len(self.labels) + sum(max(0, self.target - len(ix)) for ix in self.by_class if len(ix))

    def __iter__(self) -> Iterator[int]:
        parts = [torch.arange(len(self.labels))]
        for ix in self.by_class:
            missing = self.target - len(ix)
            if len(ix) and missing > 0:
                draw = torch.randint(len(ix), (missing,), generator=self.generator)
                parts.append(torch.from_numpy(ix)[draw])
        order = torch.cat(parts)
        perm = torch.randperm(len(order), generator=self.generator)
        return iter(order[perm].tolist())


class RaggedDataset(Dataset):
    """``(input, label)`` pairs whose inputs keep their own lengths (e.g. cached log-mel of whole clips).

    The engine turns a batch of them into one array with its ``batch_augment``
    hook (random crops of a fixed length), never by stacking them as they are.

    Parameters
    ----------
    inputs : sequence of np.ndarray [shape=(..., n_i)]
    labels : sequence of int [shape=(N,)]
    """

    def __init__(self, inputs: Sequence[np.ndarray], labels: Sequence[int] | np.ndarray) -> None:
        if len(inputs) != len(labels):
            raise ConfigError(f"{len(inputs)} inputs but {len(labels)} labels: give one label per input")
        if len(inputs) == 0:
            raise ConfigError("a dataset needs at least one example")
        self.inputs = [np.asarray(x, dtype=np.float32) for x in inputs]
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.labels.ndim != 1 or (self.labels < 0).any():
            raise ConfigError("labels must be a 1-D sequence of non-negative class indices")
        self.seed = 0

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.inputs[index], int(self.labels[index])


class NumpyBatchSampler(Sampler[list[int]]):
    """Batches of one ``rng.permutation(n)`` per epoch, drawn from the training loop's NumPy generator.

    The permutation is drawn when an epoch's first batch is asked for, so it
    comes before that epoch's augmentation draws from the same generator (and
    after the state a checkpoint restores).

    Parameters
    ----------
    n : int
        Number of examples.
    batch_size : int
    rng : np.random.Generator
        The loop's generator (shared with augmentation and mixup).
    last_batch : {"keep", "drop", "spread"}
        Keep a short last batch, drop it, or split the permutation into
        ``ceil(n / batch_size)`` near-equal batches (:func:`numpy.array_split`).
    balanced_labels : np.ndarray [shape=(n,)] or None
        When given, each epoch draws ``n`` examples with replacement, with
        probabilities proportional to ``1 / count`` of their class, instead
        of a permutation.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        rng: np.random.Generator,
        *,
        last_batch: str = "keep",
        balanced_labels: np.ndarray | None = None,
    ) -> None:
        if last_batch not in ("keep", "drop", "spread"):
            raise ConfigError(f"last_batch={last_batch!r}: expected keep, drop or spread")
        self.n = int(n)
        self.batch_size = int(batch_size)
        self.rng = rng
        self.last_batch = last_batch
        self.probs: np.ndarray | None = None
        if balanced_labels is not None:
            labels = np.asarray(balanced_labels, dtype=np.int64)
            weights = 1.0 / np.bincount(labels)[labels]
            self.probs = weights / weights.sum()

    def __len__(self) -> int:
        if self.last_batch == "drop":
            return self.n // self.batch_size
        return max(1, -(-self.n // self.batch_size))

    def __iter__(self) -> Iterator[list[int]]:
        if self.probs is None:
            order = self.rng.permutation(self.n)
        else:
            order = self.rng.choice(self.n, size=self.n, p=self.probs)
        if self.last_batch == "spread":
            batches = np.array_split(order, len(self))
        else:
            batches = [order[k * self.batch_size : (k + 1) * self.batch_size] for k in range(len(self))]
        for batch in batches:
            yield [int(i) for i in batch]
