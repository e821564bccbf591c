"""Training data of a seed recipe: :class:`SeedTrainDataset`, clips augmented on the fly.

Built by :meth:`emovox.recipes.seed_recipe.SeedRecipe.make_datasets` from a
fold's training clips only (test clips are never augmented).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

import numpy as np

from emovox.augment import median_balanced_indices
from emovox.errors import ConfigError

__all__ = ["SeedTrainDataset"]


class _WaveformStep(Protocol):
    """How a waveform :class:`~emovox.augment.Transform` is called."""

    def __call__(self, y: np.ndarray, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray: ...


class _FeatureStep(Protocol):
    """How a spectrogram :class:`~emovox.augment.Transform` is called."""

    def __call__(self, x: np.ndarray, *, rng: np.random.Generator) -> np.ndarray: ...


class SeedTrainDataset:
    """Training draws of a seed recipe, augmented on the fly.

    Holds the windowed training waveforms and their clean features; item ``i``
    of epoch ``e`` uses ``numpy.random.default_rng([seed, e, i])``, so a draw
    is replayable and independent of batch order. With ``balance="median"``
    the list of draws is rebuilt each epoch by
    :func:`~emovox.augment.median_balanced_indices`.

    Compatible with :func:`emovox.training.engine.train_model` (``labels``,
    ``seed``, ``set_epoch``, ``__len__``, ``__getitem__ -> (x, label)``).

    Parameters
    ----------
    recipe : SeedRecipe
    waveforms : sequence of np.ndarray
        Windowed training clips (:meth:`SeedInput.load`).
    labels : sequence of int
    features : np.ndarray, optional
        Clean features of ``waveforms`` (computed if omitted).
    transform : callable, optional
        Applied to every feature array after extraction (the fold's scaler).
    seed : int
    """

    def __init__(
        self,
        recipe: Any,
        waveforms: Sequence[np.ndarray],
        labels: Sequence[int] | np.ndarray,
        *,
        features: np.ndarray | None = None,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        seed: int = 0,
    ) -> None:
        if len(waveforms) != len(labels) or not len(labels):
            raise ConfigError(f"{len(waveforms)} waveforms but {len(labels)} labels: give one label per clip")
        self.recipe = recipe
        self.waveforms = list(waveforms)
        self.base_labels = np.asarray(labels, dtype=np.int64)
        self.clean = features if features is not None else np.stack([recipe.input.extract(y) for y in waveforms])
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        self._plan()

    def _plan(self) -> None:
        if self.recipe.balance == "median":
            rng = np.random.default_rng([self.seed, self.epoch, 7])
            self.indices, self.is_extra = median_balanced_indices(self.base_labels, rng=rng)
        else:
            self.indices = np.arange(len(self.base_labels))
            self.is_extra = np.zeros(len(self.base_labels), dtype=bool)
        self.labels = self.base_labels[self.indices]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self._plan()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        j = int(self.indices[i])
        x = self.clean[j]
        augment = not self.recipe.augment_extras_only or bool(self.is_extra[i])
        if augment and (self.recipe.augmentation is not None or self.recipe.feature_augmentation is not None):
            rng = np.random.default_rng([self.seed, self.epoch, int(i)])
            y = self.waveforms[j]
            if self.recipe.augmentation is not None:
                wave_step = cast(_WaveformStep, self.recipe.augmentation)  # concrete transforms define __call__
                y_aug = wave_step(y, sample_rate_hz=self.recipe.input.sample_rate_hz, rng=rng)
                if y_aug is not y:  # some step fired (a no-op chain returns its input)
                    x = self.recipe.input.extract(y_aug)
            if self.recipe.feature_augmentation is not None:
                feature_step = cast(_FeatureStep, self.recipe.feature_augmentation)  # as above
                x = feature_step(x, rng=rng)
        if self.transform is not None:
            x = self.transform(x)
        return np.asarray(x, dtype=np.float32), int(self.labels[i])
