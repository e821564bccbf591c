"""The :class:`SeedRecipe`: what one seed system did (input, scaling, augmentation, network, training).

A recipe is a frozen description; :meth:`SeedRecipe.make_datasets` is its
training pipeline (:mod:`emovox.recipes.seed_data`) and
:meth:`SeedRecipe.to_training_recipe` the :class:`emovox.training.recipes.Recipe`
that ``emovox train --recipe sN`` runs. The five seeds are defined in
:mod:`emovox.recipes.seed_systems`; the overview is :mod:`emovox.recipes.seeds`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from emovox.augment import Transform
from emovox.errors import ConfigError
from emovox.recipes.seed_inputs import SCALINGS, SeedInput
from emovox.training.config import TrainConfig

__all__ = ["SeedRecipe"]


@dataclass(frozen=True)
class SeedRecipe:
    """One seed system, reproducible in emovox.

    Attributes
    ----------
    name : str
        ``"s0"`` ... ``"s4"``.
    title : str
    architecture : str
        Name in :mod:`emovox.models.registry` (see :mod:`emovox.models.seeds`).
    label_scheme : str
        :func:`emovox.labels.get_scheme` name.
    corpora : tuple[str, ...]
        Corpora the seed trained on (``emovox.corpora`` names).
    input : SeedInput
    scaling : {"none", "standard", "per-array"}
        ``"standard"`` = StandardScaler on the training rows of each fold.
    augmentation : Transform or None
        Waveform augmentation of training draws (on the fly).
    feature_augmentation : Transform or None
        Spectrogram-level augmentation of training draws (S4's masks).
    balance : {None, "median"}
        Top rare classes up to the median class count (S4); with
        ``augment_extras_only`` only those extra draws are augmented.
    train : TrainConfig
    test_fraction, val_fraction : float
        The seed's own random split (test share) and the validation share
        carved from the training part for early stopping.
    reported : dict
        The seed's own figure: ``{"metric", "value", "n_classes", "split", "note"}``.
    notes : tuple[str, ...]
        Assumptions where the write-up is silent, and deviations.
    """

    name: str
    title: str
    architecture: str
    label_scheme: str
    corpora: tuple[str, ...]
    input: SeedInput
    scaling: str = "none"
    augmentation: Transform | None = None
    feature_augmentation: Transform | None = None
    balance: str | None = None
    augment_extras_only: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)
    test_fraction: float = 0.2
    val_fraction: float = 0.15
    reported: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.scaling not in SCALINGS:
            raise ConfigError(f"scaling {self.scaling!r} is unknown: expected one of {', '.join(SCALINGS)}")
        if self.balance not in (None, "median"):
            raise ConfigError(f"balance {self.balance!r} is unknown: expected None or 'median'")

    def task_spec(self, labels: Sequence[str]):
        """The :class:`~emovox.models.spec.TaskSpec` of this recipe for ``labels``."""
        from emovox.models.spec import TaskSpec

        clip = self.input.pad_to_s or self.input.duration_s or 3.0
        return TaskSpec(
            labels=tuple(labels),
            sample_rate_hz=self.input.sample_rate_hz,
            clip_s=clip,
            input_kind="features",
            feature=f"seed-{self.name}",
            feature_dims=self.input.dims,
        )

    def build_model(self, labels: Sequence[str]):
        """Build the replica network for ``labels`` via the architecture registry."""
        from emovox.models.registry import build_model

        return build_model(self.architecture, self.task_spec(labels))

    def with_changes(self, **changes: Any) -> SeedRecipe:
        return replace(self, **changes)

    def features(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Clean inputs of whole clips (loaded at ``input.sample_rate_hz``) -> ``(n, *input.dims)`` float32.

        The same computation as the ``seed-<name>`` feature set (before flattening).
        """
        inp = self.input
        return np.stack([inp.extract(inp.window(np.asarray(y, dtype=np.float32))) for y in waveforms])

    def make_datasets(
        self,
        train_waveforms: Sequence[np.ndarray],
        train_labels: Sequence[int] | np.ndarray,
        val_waveforms: Sequence[np.ndarray],
        val_labels: Sequence[int] | np.ndarray,
        *,
        seed: int = 0,
        train_features: np.ndarray | None = None,
        val_features: np.ndarray | None = None,
    ):
        """This seed's training pipeline: the ``make_datasets`` hook of its training recipe.

        Parameters
        ----------
        train_waveforms, val_waveforms : sequence of np.ndarray [shape=(n_i,)]
            Whole clips at ``input.sample_rate_hz`` (not yet windowed), float32.
        train_labels, val_labels : sequence of int
        seed : int
            Seeds the on-the-fly augmentation (with epoch and index).
        train_features, val_features : np.ndarray [shape=(n, *input.dims)], optional
            Precomputed :meth:`features` of the clips (a cache; computed if omitted).

        Returns
        -------
        train : SeedTrainDataset
            Augmented on the fly (training clips only), then scaled, flattened.
        val : emovox.training.data.ArrayDataset
            Clean, scaled, flattened inputs ``(n, prod(input.dims))``.
        preprocessing : dict
            ``"normalization"``: the fold's standard scaling statistics
            (``scaling="standard"``) or ``None`` (``"none"``; ``"per-array"``
            is part of the feature computation); plus a record of the
            scaling and augmentation. With it,
            :func:`emovox.training.pipeline.prepare_inputs` on the
            ``seed-<name>`` feature set gives exactly the validation inputs.
        """
        from emovox.recipes.seed_data import SeedTrainDataset
        from emovox.training.data import ArrayDataset
        from emovox.training.pipeline import apply_normalization, fit_normalization

        train_labels = np.asarray(train_labels, dtype=np.int64)
        val_labels = np.asarray(val_labels, dtype=np.int64)
        windows = [self.input.window(np.asarray(y, dtype=np.float32)) for y in train_waveforms]
        clean_train = self.features(train_waveforms) if train_features is None else np.asarray(train_features)
        clean_val = self.features(val_waveforms) if val_features is None else np.asarray(val_features)
        if len(clean_train) != len(train_labels) or len(clean_val) != len(val_labels):
            raise ConfigError(
                f"{len(clean_train)}/{len(clean_val)} training/validation inputs but "
                f"{len(train_labels)}/{len(val_labels)} labels: give one label per clip"
            )
        stats = fit_normalization(clean_train.reshape(len(clean_train), -1)) if self.scaling == "standard" else None

        def to_input(x: np.ndarray) -> np.ndarray:
            return apply_normalization(np.asarray(x).reshape(1, -1), stats)[0]

        train = SeedTrainDataset(self, windows, train_labels, features=clean_train, transform=to_input, seed=seed)
        val = ArrayDataset(apply_normalization(clean_val.reshape(len(clean_val), -1), stats), val_labels)
        preprocessing = {
            "normalization": stats,
            "scaling": self.scaling,
            "augmentation": None if self.augmentation is None else self.augmentation.to_dict(),
            "feature_augmentation": (
                None if self.feature_augmentation is None else self.feature_augmentation.to_dict()
            ),
            "balance": self.balance,
            "augment_extras_only": self.augment_extras_only,
        }
        return train, val, preprocessing

    def to_dict(self) -> dict:
        """JSON-able description (what an artifact records)."""
        return {
            "name": self.name,
            "title": self.title,
            "architecture": self.architecture,
            "label_scheme": self.label_scheme,
            "corpora": list(self.corpora),
            "input": self.input.to_dict(),
            "scaling": self.scaling,
            "augmentation": None if self.augmentation is None else self.augmentation.to_dict(),
            "feature_augmentation": None if self.feature_augmentation is None else self.feature_augmentation.to_dict(),
            "balance": self.balance,
            "augment_extras_only": self.augment_extras_only,
            "train": self.train.to_dict(),
            "test_fraction": self.test_fraction,
            "val_fraction": self.val_fraction,
            "reported": dict(self.reported),
            "notes": list(self.notes),
        }

    def to_training_recipe(self):
        """This seed as an :class:`emovox.training.recipes.Recipe` (for ``emovox train --recipe``).

        Training inputs come from :meth:`make_datasets` (this seed's scaling and
        on-the-fly augmentation); the artifact's feature set is ``seed-<name>``.
        """
        from emovox.training.recipes import Recipe

        return Recipe(
            name=self.name,
            arch=self.architecture,
            train=self.train,
            label_scheme=self.label_scheme,
            sample_rate_hz=self.input.sample_rate_hz,
            clip_s=float(self.input.offset_s + (self.input.pad_to_s or self.input.duration_s or 3.0)),
            input_kind="features",
            feature=f"seed-{self.name}",
            val_fraction=self.val_fraction,
            wave_augment=None,
            spec_augment=None,
            make_datasets=self.make_datasets,
            description=f"seed replica {self.name.upper()}: {self.title}",
        )
