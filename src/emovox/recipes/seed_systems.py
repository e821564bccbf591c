"""The five seed systems s0 ... s4 as :class:`~emovox.recipes.seed_recipe.SeedRecipe` definitions.

Each definition records the seed's input pipeline, scaling, augmentation,
network, training settings and its own reported figure, with notes where the
write-up is silent (derivations in :mod:`emovox.recipes.seeds`).
"""

from __future__ import annotations

from collections.abc import Callable

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
)
from emovox.errors import ConfigError
from emovox.recipes.seed_inputs import SeedInput
from emovox.recipes.seed_recipe import SeedRecipe
from emovox.training.config import TrainConfig

__all__ = ["SEED_RECIPES", "seed_recipe", "seed_recipe_names"]


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
