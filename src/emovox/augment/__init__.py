"""On-the-fly data augmentation: arrays in, arrays out, seeded and replayable.

Augmentations are applied inside the training folds only, to a fresh draw each
time an example is used; emovox never writes augmented copies that could end
up on both sides of a split (the leak behind seed S1's 99.7 %).

Waveform (``y``, ``sample_rate_hz``, ``rng``):
:class:`GaussianNoise`, :class:`BackgroundNoise` (folder of noise files or a
built-in white/pink/brown source), :class:`PitchShift`, :class:`TimeStretch`,
:class:`TimeShift`, :class:`Gain`.
Spectrogram (``(batch, ..., n_freq, n_frames)``, ``rng``):
:class:`FrequencyMask`, :class:`TimeMask`.
Batch: :class:`Mixup`. Sampling: :func:`median_balanced_indices`.
Chaining: :class:`Compose` (per-step probability), :class:`OneOf`.
Serialisation: ``t.to_dict()`` / :func:`transform_from_dict`.
Training engine hooks: :func:`engine_hook` (``hook(x, rng) -> x`` on batches).
"""

from __future__ import annotations

from emovox.augment.balance import MedianBalancer, median_balanced_indices, median_target
from emovox.augment.base import (
    TRANSFORMS,
    Compose,
    OneOf,
    Transform,
    augmentation_from_config,
    engine_hook,
    register_transform,
    transform_from_dict,
)
from emovox.augment.mixup import Mixup, one_hot
from emovox.augment.noise import (
    BackgroundNoise,
    GaussianNoise,
    colored_noise,
    load_noise_folder,
    mix_at_snr,
)
from emovox.augment.spectral import FrequencyMask, TimeMask
from emovox.augment.waveform import Gain, PitchShift, TimeShift, TimeStretch, pitch_shift_resample, shift, stretch

__all__ = [
    "TRANSFORMS",
    "BackgroundNoise",
    "Compose",
    "FrequencyMask",
    "Gain",
    "GaussianNoise",
    "MedianBalancer",
    "Mixup",
    "OneOf",
    "PitchShift",
    "TimeMask",
    "TimeShift",
    "TimeStretch",
    "Transform",
    "augmentation_from_config",
    "colored_noise",
    "engine_hook",
    "load_noise_folder",
    "median_balanced_indices",
    "median_target",
    "mix_at_snr",
    "one_hot",
    "pitch_shift_resample",
    "register_transform",
    "shift",
    "stretch",
    "transform_from_dict",
]
