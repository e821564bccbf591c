"""Augmentation of cached log-mel spectrograms, batch by batch (the flagship recipe's).

:class:`LogMelAugment` turns a list of un-normalised log-mel arrays
``(n_mels, frames)`` of whole clips (their lengths may differ) into one
training batch ``(batch, n_mels, crop_frames)``. It is the training engine's
``batch_augment`` hook (:func:`emovox.training.engine.train_model`); every
random draw comes from the generator it is given, in this order per clip:

1. tempo perturbation: a factor in ``stretch``; a crop of
   ``round(crop_frames * factor)`` frames (short clips are tiled) is
   resampled in time to ``crop_frames`` (linear interpolation);
2. with probability ``noise_p``, white noise at an SNR drawn from ``snr_db``
   (dB), added in the mel power domain (``log(exp(x) + noise)``), shaped by
   ``mel_weights`` (the mel filters' relative bandwidths);

then per batch SpecAugment: ``n_freq_masks`` bands of up to ``freq_mask`` mel
bins, then ``n_time_masks`` spans of up to ``time_mask`` frames, each set to
the example's mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from emovox.errors import ConfigError

__all__ = ["LogMelAugment", "random_crop"]


def random_crop(x: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random window of ``length`` frames of ``x`` ``(n_mels, frames)``; a shorter ``x`` is tiled first."""
    t = x.shape[1]
    if t < length:
        reps = int(math.ceil(length / t)) + 1
        x = np.tile(x, (1, reps))
        t = x.shape[1]
    start = int(rng.integers(0, t - length + 1))
    return x[:, start : start + length]


@dataclass(frozen=True)
class LogMelAugment:
    """Crop, stretch, add noise to and mask a batch of log-mel arrays.

    Attributes
    ----------
    crop_frames : int
        Frames per training example (10 ms each for the flagship's front end).
    stretch : tuple[float, float]
        Range of the tempo factor; ``(1, 1)`` turns it off.
    noise_p : float
        Probability of adding noise to a clip.
    snr_db : tuple[float, float]
        Range of the noise's SNR in dB.
    n_freq_masks, freq_mask, n_time_masks, time_mask : int
        SpecAugment: number of masks and their largest width (mel bins, frames).
    mel_weights : tuple[float, ...] or None
        Relative noise power per mel band ``(n_mels,)``; ``None``: flat.
    """

    crop_frames: int = 200
    stretch: tuple[float, float] = (0.9, 1.1)
    noise_p: float = 0.3
    snr_db: tuple[float, float] = (10.0, 40.0)
    n_freq_masks: int = 2
    freq_mask: int = 8
    n_time_masks: int = 2
    time_mask: int = 20
    mel_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.crop_frames < 1 or not 0.0 <= self.noise_p <= 1.0 or self.stretch[0] > self.stretch[1]:
            raise ConfigError(
                f"log-mel augmentation crop_frames={self.crop_frames}, noise_p={self.noise_p}, "
                f"stretch={self.stretch}: need crop_frames >= 1, noise_p in [0, 1], stretch low <= high"
            )

    def batch(self, logmels: Sequence[np.ndarray], rng: np.random.Generator) -> torch.Tensor:
        """The augmented batch as a tensor ``(batch, n_mels, crop_frames)`` (un-normalised log-mel)."""
        n = self.crop_frames
        weights = None if self.mel_weights is None else np.asarray(self.mel_weights, np.float32)
        out = []
        for x in logmels:
            x = np.asarray(x, np.float32)
            factor = rng.uniform(*self.stretch) if self.stretch[1] > self.stretch[0] else 1.0
            src = max(8, int(round(n * factor)))
            c = random_crop(x, src, rng)
            if src != n:
                c = F.interpolate(
                    torch.from_numpy(np.ascontiguousarray(c))[None], size=n, mode="linear", align_corners=False
                )[0].numpy()
            if self.noise_p > 0 and rng.random() < self.noise_p:
                p = np.exp(c)
                level = p.mean() * 10 ** (-rng.uniform(*self.snr_db) / 10)
                w = weights if weights is not None else np.ones(c.shape[0], np.float32)
                # chi-square(2)-like fluctuation of a white noise mel power
                noise = level * w[:, None] * rng.exponential(1.0, size=c.shape)
                c = np.log(p + noise + 1e-6)
            out.append(np.ascontiguousarray(c, np.float32))
        batch = torch.from_numpy(np.stack(out))
        b, f, t = batch.shape
        for _ in range(self.n_freq_masks):
            widths = rng.integers(0, self.freq_mask + 1, size=b)
            starts = rng.integers(0, f, size=b)
            for i in range(b):
                batch[i, starts[i] : starts[i] + widths[i], :] = batch[i].mean()
        for _ in range(self.n_time_masks):
            widths = rng.integers(0, self.time_mask + 1, size=b)
            starts = rng.integers(0, t, size=b)
            for i in range(b):
                batch[i, :, starts[i] : starts[i] + widths[i]] = batch[i].mean()
        return batch

    def __call__(self, logmels: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """:meth:`batch` as a NumPy array (the engine's ``batch_augment`` signature)."""
        return self.batch(logmels, rng).numpy()
