"""The five seed systems as named recipes ("seed replicas"): s0, s1, s2, s3, s4.

Each :class:`SeedRecipe` bundles what one seed system did, so a user of that
system can switch to emovox and compare on the same data:

- its input pipeline (:class:`SeedInput`, :mod:`emovox.recipes.seed_inputs`):
  which window of the file is read, at which rate, and the exact feature
  computation (librosa, same parameters);
- its scaling (none, a StandardScaler fitted on the training rows, or the
  per-array mean/std normalisation of S4);
- its augmentation, as *on-the-fly* emovox transforms applied to training
  draws inside a fold only (:class:`SeedTrainDataset`);
- its network (:mod:`emovox.models.seeds`), optimiser, schedule and early
  stopping (:class:`~emovox.training.config.TrainConfig`), label scheme and
  the kind of split it reported on, with the figure it reported.

Derivations
-----------
S1's 4,536 and S3's 2,376 inputs are frame-level features flattened, computed
on ``librosa.load(path, duration=2.5, offset=0.6)`` (22,050 Hz) with
``frame_length=2048, hop_length=512`` (librosa's defaults, ``center=True``):
2.5 s x 22,050 Hz = 55,125 samples -> ``1 + 55125 // 512 = 108`` frames.
Per frame: ZCR (1) + RMS (1) + MFCC (``n_mfcc``), the MFCC matrix flattened
frame-major (``np.ravel(mfcc.T)``) after the ZCR and RMS rows:

- S3: ``108 * (1 + 1 + 20) = 2,376`` -> librosa's default 20 MFCC;
- S1: ``108 * (1 + 1 + 40) = 4,536`` -> 40 MFCC. (No other single frame grid
  fits: 4,536 / 22 is not an integer.)

Clips shorter than 3.1 s give fewer frames; as in the seeds (``fillna(0)`` on a
ragged table) the concatenated vector is zero-padded at its end.

Deviations from the seeds (on purpose)
--------------------------------------
- S1 wrote four feature rows per file (original, noise, pitch, noise+pitch)
  *before* splitting, so copies of one clip sat on both sides of its split
  (its 99.7 %). Here each training draw is, with equal chance, one of those
  four variants, made on the fly from training clips only; test clips are
  never augmented. The same holds for S2, S3 and S4.
- Validation for early stopping is carved out of the training part (the seeds
  used their test set as validation); test figures are on unseen clips.
- Corpora not available on this machine (TESS, SAVEE, CREMA-D, full RAVDESS
  song) are skipped by the benchmark; the recipe still names them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

import numpy as np

from emovox.augment import (
    BackgroundNoise,
    Compose,
    FrequencyMask,
    Gain,
    GaussianNoise,
    OneOf,
    PitchShift,
    TimeMask,
    TimeStretch,
    Transform,
    median_balanced_indices,
)
from emovox.errors import ConfigError
from emovox.recipes.seed_inputs import (  # noqa: F401  (the feature functions are re-exported)
    SCALINGS,
    SeedInput,
    frame_features,
    mel_db,
    mfcc_means,
    normalize_array,
    resize_array,
    two_channel,
)
from emovox.training.config import TrainConfig

__all__ = [
    "SeedInput",
    "SeedRecipe",
    "SeedTrainDataset",
    "SEED_RECIPES",
    "seed_recipe",
    "seed_recipe_names",
    "mfcc_means",
    "frame_features",
    "mel_db",
    "two_channel",
    "resize_array",
    "normalize_array",
]


class _WaveformStep(Protocol):
    """How a waveform :class:`~emovox.augment.Transform` is called."""

    def __call__(self, y: np.ndarray, *, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray: ...


class _FeatureStep(Protocol):
    """How a spectrogram :class:`~emovox.augment.Transform` is called."""

    def __call__(self, x: np.ndarray, *, rng: np.random.Generator) -> np.ndarray: ...


# --------------------------------------------------------------------------- the recipe
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


# --------------------------------------------------------------------------- training data
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
        recipe: SeedRecipe,
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


# --------------------------------------------------------------------------- the five seeds
def _s0() -> SeedRecipe:
    return SeedRecipe(
        name="s0",
        title="AuraMood: Conv1D over 40 MFCC means",
        architecture="s0-conv1d-mfcc",
        label_scheme="ravdess8",
        corpora=("ravdess",),
        input=SeedInput("mfcc-means", sample_rate_hz=22050, n_mfcc=40),
        scaling="none",
        train=TrainConfig(
            epochs=200,
            batch_size=16,
            optimizer="adam",
            lr=1e-3,
            class_weights="none",
            scheduler="none",
            early_stop_patience=20,
            monitor="val_loss",
            progress=False,
        ),
        test_fraction=0.33,
        val_fraction=0.15,
        reported={
            "metric": "accuracy",
            "value": 0.80,
            "n_classes": 8,
            "split": "random",
            "note": "1734 test clips (RAVDESS or EMO-DB)",
        },
        notes=(
            "Whole clip at librosa's 22,050 Hz; no scaling (as the seed).",
            "Dropout 0.1, Adam 1e-3, batch 16, early stopping (patience 20 on val loss): the write-up "
            "names dropout and early stopping only; values from the Keras notebook its summary matches.",
            "test fraction 0.33 as in that notebook (1734 test clips).",
        ),
    )


def _s1() -> SeedRecipe:
    noise_pitch = Compose(
        ((GaussianNoise(snr_db=(10.0, 30.0)), 0.5), (PitchShift(semitones=(0.7, 0.7), method="librosa"), 0.5))
    )
    return SeedRecipe(
        name="s1",
        title="Conv1D over ZCR+RMS+MFCC frames (4,536 values), four corpora",
        architecture="s1-conv1d-4536",
        label_scheme="seven",
        corpora=("ravdess", "tess", "savee", "crema-d"),
        input=SeedInput("frames", sample_rate_hz=22050, offset_s=0.6, duration_s=2.5, n_mfcc=40, n_values=4536),
        scaling="standard",
        augmentation=noise_pitch,
        train=TrainConfig(
            epochs=50,
            batch_size=64,
            optimizer="adam",
            lr=1e-3,
            class_weights="none",
            scheduler="plateau",
            plateau_factor=0.5,
            plateau_patience=3,
            min_lr=1e-5,
            early_stop_patience=None,
            monitor="val_loss",
            progress=False,
        ),
        test_fraction=0.2,
        val_fraction=0.15,
        reported={
            "metric": "accuracy",
            "value": 0.997,
            "n_classes": 7,
            "split": "random",
            "note": "augmented copies of one clip on both sides of the split",
        },
        notes=(
            "4,536 = 108 frames x (ZCR + RMS + 40 MFCC); frame 2048, hop 512, 2.5 s from 0.6 s at 22,050 Hz.",
            "The four copies per file become, per training draw, original / noise / pitch / noise+pitch "
            "with equal chance (noise p=.5, pitch p=.5 independently), on the fly, training folds only.",
            "Noise: the seed adds 0.035*U*peak Gaussian noise; expressed as SNR 10-30 dB here. Pitch: +0.7 "
            "semitone (librosa pitch_shift, as the seed).",
            "Adam 1e-3, ReduceLROnPlateau (x0.5, patience 3) on val loss, best checkpoint, no early stopping.",
        ),
    )


def _s2() -> SeedRecipe:
    noise = OneOf((GaussianNoise(snr_db=(10.0, 30.0)), BackgroundNoise(snr_db=(5.0, 20.0))), p=0.4)
    return SeedRecipe(
        name="s2",
        title="Conv2D over a mel spectrogram of 66,150 samples, three corpora",
        architecture="s2-conv2d-melspec",
        label_scheme="six-calm-merged",
        corpora=("savee", "ravdess", "crema-d"),
        input=SeedInput("melspec", sample_rate_hz=22050, pad_to_s=66150 / 22050, n_mels=128),
        scaling="none",
        augmentation=noise,
        train=TrainConfig(
            epochs=60,
            batch_size=32,
            optimizer="adam",
            lr=1e-3,
            class_weights="none",
            scheduler="none",
            early_stop_patience=6,
            monitor="val_accuracy",
            progress=False,
        ),
        test_fraction=0.30,
        val_fraction=0.20,
        reported={
            "metric": "accuracy",
            "value": 0.37,
            "n_classes": 6,
            "split": "random 56/14/30",
            "note": "validation 38 %",
        },
        notes=(
            "66,150 samples = 3 s at 22,050 Hz; librosa default mel (128 bands, n_fft 2048, hop 512) in dB.",
            "Gaussian or background noise (coloured noise when no noise folder) on 40 % of training draws.",
            "Layer sizes not given: 2 x [Conv2D 32/64 3x3, ReLU, MaxPool 2, Dropout .25] -> Dense.",
            "56/14/30 split: test 30 %, validation 20 % of the rest; early stopping patience 6 on val accuracy.",
        ),
    )


def _s3() -> SeedRecipe:
    aug = Compose(
        (
            (TimeStretch(rate=(0.8, 1.25), keep_length=True), 1 / 3),
            (PitchShift(semitones=(-2.0, 2.0), method="librosa"), 1 / 3),
            (BackgroundNoise(snr_db=(10.0, 30.0)), 1 / 3),
        )
    )
    return SeedRecipe(
        name="s3",
        title="Five-block Conv1D over MFCC+ZCR+RMS frames (2,376 values)",
        architecture="s3-conv1d-2376",
        label_scheme="ravdess8",
        corpora=("ravdess", "ravdess-song"),
        input=SeedInput("frames", sample_rate_hz=22050, offset_s=0.6, duration_s=2.5, n_mfcc=20, n_values=2376),
        scaling="standard",
        augmentation=aug,
        train=TrainConfig(
            epochs=50,
            batch_size=64,
            optimizer="adam",
            lr=1e-3,
            class_weights="none",
            scheduler="plateau",
            plateau_factor=0.5,
            plateau_patience=3,
            min_lr=1e-5,
            early_stop_patience=5,
            monitor="val_loss",
            progress=False,
        ),
        test_fraction=0.2,
        val_fraction=0.15,
        reported={
            "metric": "accuracy",
            "value": 0.682,
            "n_classes": 8,
            "split": "random",
            "note": "validation accuracy (the validation set was its test set)",
        },
        notes=(
            "2,376 = 108 frames x (ZCR + RMS + 20 MFCC); frame 2048, hop 512, 2.5 s from 0.6 s at 22,050 Hz.",
            "Time stretch (0.8-1.25, length kept), pitch shift (+-2 semitones), background noise: each on a "
            "third of training draws, on the fly.",
            "Adam 1e-3, batch 64, early stopping patience 5 and ReduceLROnPlateau x0.5 on val loss.",
        ),
    )


def _s4() -> SeedRecipe:
    wave = Compose(((GaussianNoise(snr_db=(15.0, 30.0)), 0.5), (Gain(gain_db=(-6.0, 6.0)), 0.5)))
    masks = Compose(((FrequencyMask(width=(1, 4)), 0.5), (TimeMask(width=(1, 10)), 0.5)))
    return SeedRecipe(
        name="s4",
        title="Two-channel (mel, MFCC/chroma/contrast) Conv2D, 6 classes",
        architecture="s4-conv2d-two-channel",
        label_scheme="six-no-sad-surprised",
        corpora=("ravdess", "ravdess-song"),
        input=SeedInput("two-channel", sample_rate_hz=16000, pad_to_s=3.0, n_mels=32, n_fft=1024, hop_length=512),
        scaling="per-array",
        augmentation=wave,
        feature_augmentation=masks,
        balance="median",
        augment_extras_only=True,
        train=TrainConfig(
            epochs=100,
            batch_size=32,
            optimizer="adam",
            lr=1e-3,
            class_weights="balanced",
            scheduler="plateau",
            plateau_factor=0.5,
            plateau_patience=5,
            min_lr=1e-5,
            early_stop_patience=10,
            monitor="val_accuracy",
            progress=False,
        ),
        test_fraction=0.2,
        val_fraction=0.15,
        reported={
            "metric": "accuracy",
            "value": 0.862,
            "n_classes": 6,
            "split": "random 80/20 stratified",
            "note": "78.6 % with all 8 classes",
        },
        notes=(
            "16 kHz, 3 s trimmed/padded; mel 32 x 94 (n_fft 1024, hop 512) and MFCC13+d, chroma+d, "
            "contrast+d (64 rows) resized to 32 x 94; per-array mean/std; channels first (2, 32, 94).",
            "Rare classes topped up to the median class count each epoch; only those extra draws get noise, "
            "amplitude scaling (waveform) and frequency/time masks (features); balanced class weights.",
            "ReduceLROnPlateau follows the monitored val accuracy (the seed watched val loss for it).",
        ),
    )


SEED_RECIPES: dict[str, Callable[[], SeedRecipe]] = {"s0": _s0, "s1": _s1, "s2": _s2, "s3": _s3, "s4": _s4}


def seed_recipe_names() -> list[str]:
    return sorted(SEED_RECIPES)


def seed_recipe(name: str) -> SeedRecipe:
    """The :class:`SeedRecipe` called ``name`` (``"s0"`` ... ``"s4"``)."""
    key = str(name).lower()
    if key not in SEED_RECIPES:
        raise ConfigError(f"unknown seed recipe {name!r}: expected one of {', '.join(seed_recipe_names())}")
    return SEED_RECIPES[key]()


# --------------------------------------------------------------------------- registration
def _flat_extractor(name: str) -> Callable[..., np.ndarray]:
    def extract(y: np.ndarray, *, sample_rate_hz: int) -> np.ndarray:
        inp = seed_recipe(name).input
        if sample_rate_hz != inp.sample_rate_hz:
            from emovox.audio import resample

            y = resample(y, orig_hz=sample_rate_hz, target_hz=inp.sample_rate_hz)
        return inp.extract(inp.window(np.asarray(y, dtype=np.float32))).ravel()

    extract.__qualname__ = f"seed_{name}_features"
    return extract


def register_seed_recipes() -> None:
    """Register the seed features, and the five recipes with :mod:`emovox.training.recipes`.

    Feature sets ``seed-s0`` ... ``seed-s4`` (flattened) go to
    :mod:`emovox.features`; recipes ``s0`` ... ``s4`` to the training registry.
    Missing registries are skipped silently (partial installs).
    """
    try:
        from emovox.features.registry import FEATURE_SETS, FeatureSet, register_feature_set
    except ImportError:  # pragma: no cover
        FEATURE_SETS = None  # type: ignore[assignment]  # partial install: no feature registry
    if FEATURE_SETS is not None:
        for name in SEED_RECIPES:
            if f"seed-{name}" not in FEATURE_SETS:
                register_feature_set(
                    FeatureSet(
                        f"seed-{name}",
                        _flat_extractor(name),
                        {},
                        f"seed replica {name.upper()} input pipeline (flattened)",
                    )
                )
    try:
        from emovox.training.recipes import register_recipe
    except ImportError:  # pragma: no cover
        return
    for name in SEED_RECIPES:
        register_recipe(name, _recipe_builder(name))


def _recipe_builder(name: str):
    def build():
        return seed_recipe(name).to_training_recipe()

    build.__qualname__ = f"build_seed_recipe_{name}"
    return build
