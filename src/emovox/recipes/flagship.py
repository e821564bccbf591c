"""Training recipe of the flagship model (:mod:`emovox.models.flagship`).

The recipe trains on cached *un-normalised log-mel* spectrograms produced by
the model's own front end (``model.frontend``), which is deterministic, so the
trained module still takes waveforms. Augmentation happens in the log-mel
domain, where it is cheap on a CPU:

- random crop of ``crop_frames`` frames (short clips are tiled);
- tempo perturbation by resampling the crop in time (factor in ``stretch``);
- additive noise at a random SNR, added in the mel power domain
  (``log(exp(x) + noise)``), with probability ``noise_p``;
- SpecAugment: ``n_freq_masks`` bands of up to ``freq_mask`` mel bins and
  ``n_time_masks`` spans of up to ``time_mask`` frames;
- mixup of the normalised inputs (``mixup_alpha``) and label smoothing.

Optimiser: AdamW with a one-cycle schedule over a fixed number of epochs (no
early stopping, so no validation data is needed and no test data is peeked
at); an exponential moving average (EMA) of the weights is what is returned
when ``ema_decay`` > 0.

Inference (:func:`predict_logits`) runs each clip at full length, one at a
time (the model pools over time, so lengths may differ).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from emovox.errors import ConfigError
from emovox.models.flagship import FlagshipConfig, FlagshipNet

__all__ = ["FlagshipRecipe", "augment_batch", "train_flagship", "predict_logits", "logmel_of"]


@dataclass(frozen=True)
class FlagshipRecipe:
    """Everything that decides how the flagship is trained."""

    epochs: int = 50
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.05
    crop_frames: int = 200
    stretch: tuple[float, float] = (0.9, 1.1)
    noise_p: float = 0.3
    snr_db: tuple[float, float] = (10.0, 40.0)
    n_freq_masks: int = 2
    freq_mask: int = 8
    n_time_masks: int = 2
    time_mask: int = 20
    mixup_alpha: float = 0.3
    label_smoothing: float = 0.1
    ema_decay: float = 0.995
    seed: int = 0
    model: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.crop_frames < 16:
            raise ConfigError(
                f"recipe epochs={self.epochs}, batch_size={self.batch_size}, crop_frames={self.crop_frames}: "
                "need epochs >= 1, batch_size >= 2, crop_frames >= 16"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stretch"] = list(self.stretch)
        d["snr_db"] = list(self.snr_db)
        return d


def logmel_of(model: FlagshipNet, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Un-normalised log-mel ``(n_mels, frames)`` of each waveform, via ``model.frontend``."""
    out = []
    with torch.no_grad():
        for y in waves:
            out.append(model.frontend(torch.from_numpy(np.ascontiguousarray(y, np.float32))[None])[0].numpy())
    return out


def _crop(x: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    t = x.shape[1]
    if t < length:
        reps = int(math.ceil(length / t)) + 1
        x = np.tile(x, (1, reps))
        t = x.shape[1]
    start = int(rng.integers(0, t - length + 1))
    return x[:, start : start + length]


def augment_batch(
    logmels: Sequence[np.ndarray],
    recipe: FlagshipRecipe,
    rng: np.random.Generator,
    mel_weights: np.ndarray | None = None,
) -> torch.Tensor:
    """Crop, stretch, add noise and SpecAugment a batch of log-mel ``(n_mels, frames)`` arrays.

    Returns an un-normalised log-mel batch ``(batch, n_mels, crop_frames)``.
    """
    n = recipe.crop_frames
    out = []
    for x in logmels:
        x = np.asarray(x, np.float32)
        factor = rng.uniform(*recipe.stretch) if recipe.stretch[1] > recipe.stretch[0] else 1.0
        src = max(8, int(round(n * factor)))
        c = _crop(x, src, rng)
        if src != n:
            c = F.interpolate(
                torch.from_numpy(np.ascontiguousarray(c))[None], size=n, mode="linear", align_corners=False
            )[0].numpy()
        if recipe.noise_p > 0 and rng.random() < recipe.noise_p:
            p = np.exp(c)
            level = p.mean() * 10 ** (-rng.uniform(*recipe.snr_db) / 10)
            w = mel_weights if mel_weights is not None else np.ones(c.shape[0], np.float32)
            # chi-square(2)-like fluctuation of a white noise mel power
            noise = level * w[:, None] * rng.exponential(1.0, size=c.shape)
            c = np.log(p + noise + 1e-6)
        out.append(np.ascontiguousarray(c, np.float32))
    batch = torch.from_numpy(np.stack(out))
    b, f, t = batch.shape
    for _ in range(recipe.n_freq_masks):
        w = rng.integers(0, recipe.freq_mask + 1, size=b)
        s = rng.integers(0, f, size=b)
        for i in range(b):
            batch[i, s[i] : s[i] + w[i], :] = batch[i].mean()
    for _ in range(recipe.n_time_masks):
        w = rng.integers(0, recipe.time_mask + 1, size=b)
        s = rng.integers(0, t, size=b)
        for i in range(b):
            batch[i, :, s[i] : s[i] + w[i]] = batch[i].mean()
    return batch


def _mel_weights(model: FlagshipNet) -> np.ndarray:
    fb = model.frontend.mel_fb.numpy()
    w = fb.sum(axis=1)
    return (w / w.mean()).astype(np.float32)


def train_flagship(
    logmels: Sequence[np.ndarray],
    labels: np.ndarray,
    n_classes: int,
    recipe: FlagshipRecipe | None = None,
    *,
    sample_weights: np.ndarray | None = None,
    log: Callable[[str], None] | None = None,
    return_raw: bool = False,
    init_state: dict | None = None,
) -> FlagshipNet | tuple[FlagshipNet, FlagshipNet]:
    """Train a flagship from cached log-mel arrays.

    Parameters
    ----------
    logmels : sequence of np.ndarray [shape=(n_mels, frames)]
        Un-normalised log-mel of each training clip (from ``model.frontend``).
    labels : np.ndarray [shape=(n,)], int
        Class index of each clip.
    n_classes : int
        Output classes.
    sample_weights : np.ndarray [shape=(n,)] or None
        Sampling probabilities (unnormalised); ``None`` samples uniformly.

    return_raw : bool
        Also return the last (non-averaged) weights, for ablations.
    init_state : dict or None
        A ``state_dict`` to start from (e.g. pre-trained on other corpora with
        the same ``n_classes``); ``None`` starts from a random initialisation.

    Returns
    -------
    FlagshipNet
        In eval mode (the EMA weights when ``recipe.ema_decay > 0``); with
        ``return_raw`` a pair ``(model, raw_model)``.
    """
    recipe = recipe or FlagshipRecipe()
    labels = np.asarray(labels, dtype=np.int64)
    if len(logmels) != len(labels) or len(labels) < recipe.batch_size:
        raise ConfigError(
            f"got {len(logmels)} clips and {len(labels)} labels: need equal counts, at least batch_size={recipe.batch_size}"
        )
    rng = np.random.default_rng(recipe.seed)
    torch.manual_seed(recipe.seed)
    model = FlagshipNet(FlagshipConfig(n_classes=n_classes, **recipe.model))
    if init_state is not None:
        model.load_state_dict(init_state)
    mel_w = _mel_weights(model)
    ema = copy.deepcopy(model) if recipe.ema_decay > 0 else None
    steps_per_epoch = len(labels) // recipe.batch_size
    total = steps_per_epoch * recipe.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=recipe.lr, total_steps=total, pct_start=0.15, anneal_strategy="cos"
    )
    probs = None
    if sample_weights is not None:
        probs = np.asarray(sample_weights, np.float64)
        probs = probs / probs.sum()
    t0 = time.time()
    step = 0
    for epoch in range(recipe.epochs):
        model.train()
        if probs is None:
            order = rng.permutation(len(labels))
        else:
            order = rng.choice(len(labels), size=len(labels), p=probs)
        run_loss = 0.0
        for k in range(steps_per_epoch):
            idx = order[k * recipe.batch_size : (k + 1) * recipe.batch_size]
            x = augment_batch([logmels[i] for i in idx], recipe, rng, mel_w)
            y = torch.from_numpy(labels[idx])
            x = model.norm(x)
            target = F.one_hot(y, n_classes).float()
            target = target * (1 - recipe.label_smoothing) + recipe.label_smoothing / n_classes
            if recipe.mixup_alpha > 0:
                lam = float(rng.beta(recipe.mixup_alpha, recipe.mixup_alpha))
                perm = torch.from_numpy(rng.permutation(len(idx)))
                x = lam * x + (1 - lam) * x[perm]
                target = lam * target + (1 - lam) * target[perm]
            logits = model.forward_normalized(x)
            loss = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            run_loss += float(loss.detach())
            if ema is not None:
                d = min(recipe.ema_decay, (1 + step) / (10 + step))
                with torch.no_grad():
                    for pe, pm in zip(ema.parameters(), model.parameters()):
                        pe.mul_(d).add_(pm.detach(), alpha=1 - d)
                    for be, bm in zip(ema.buffers(), model.buffers()):
                        be.copy_(bm)
        if log is not None:
            log(f"epoch {epoch + 1}/{recipe.epochs} loss {run_loss / steps_per_epoch:.4f} {time.time() - t0:.0f}s")
    out = ema if ema is not None else model
    if return_raw:
        return out.eval(), model.eval()
    return out.eval()


def predict_logits(model: FlagshipNet, logmels: Sequence[np.ndarray]) -> np.ndarray:
    """Logits ``(n, n_classes)`` of full-length un-normalised log-mel arrays, one clip at a time."""
    model.eval()
    out = []
    with torch.no_grad():
        for x in logmels:
            out.append(model.forward_logmel(torch.from_numpy(np.asarray(x, np.float32))[None])[0].numpy())
    return np.stack(out)


# -- the same recipe through the shared training engine -----------------------------------
#
# ``emovox train --recipe flagship`` goes through :mod:`emovox.training.engine`
# (waveform batches, front end run every step, validation on held-out training
# speakers, checkpoints). The figures in docs/flagship_experiments.md come from
# :func:`train_flagship` above, which trains on cached log-mel for speed on a
# shared 2-core machine; the engine recipe mirrors its settings as far as the
# engine's hooks allow (noise in the waveform, SpecAugment between
# ``model.features`` and ``model.classify``, mixup, label smoothing, AdamW,
# cosine with warm-up, the weight EMA). Differences: no tempo perturbation,
# and a per-epoch cosine instead of the per-step one-cycle schedule.


class FlagshipWaveAugment:
    """Engine ``wave_augment`` hook: white noise at 10–40 dB SNR on 30 % of the clips."""

    name = "flagship-wave"

    def __init__(self, *, noise_p: float = 0.3, snr_db: tuple[float, float] = (10.0, 40.0)) -> None:
        from emovox.augment import GaussianNoise

        self.noise_p = noise_p
        self.noise = GaussianNoise(snr_db=snr_db)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.array(x, dtype=np.float32, copy=True)
        for i in range(out.shape[0]):
            if rng.random() < self.noise_p and np.any(out[i]):
                out[i] = self.noise(out[i], sample_rate_hz=16000, rng=rng)
        return out


class FlagshipSpecAugment:
    """Engine ``spec_augment`` hook: 2 frequency masks (≤ 8 bands), 2 time masks (≤ 20 frames).

    Applied to the normalised log-mel, where 0 is each band's mean.
    """

    name = "flagship-spec"

    def __init__(self) -> None:
        from emovox.augment import FrequencyMask, TimeMask

        self.freq = FrequencyMask(width=(0, 8), n_masks=2)
        self.time = TimeMask(width=(0, 20), n_masks=2)

    def __call__(self, f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.time(self.freq(f, rng=rng), rng=rng)


def flagship_engine_recipe():
    """The flagship as a :class:`emovox.training.recipes.Recipe` (for ``emovox train``)."""
    from emovox.training.config import TrainConfig
    from emovox.training.recipes import Recipe

    r = FlagshipRecipe()
    return Recipe(
        name="flagship",
        arch="flagship",
        arch_params={},
        train=TrainConfig(
            epochs=r.epochs,
            batch_size=r.batch_size,
            optimizer="adamw",
            lr=r.lr,
            weight_decay=r.weight_decay,
            class_weights="none",
            label_smoothing=r.label_smoothing,
            scheduler="cosine",
            warmup_epochs=3,
            early_stop_patience=None,
            monitor="val_uar",
            mixup_alpha=r.mixup_alpha,
            ema_decay=r.ema_decay,
            seed=r.seed,
            threads=2,
        ),
        label_scheme="native",
        sample_rate_hz=16000,
        clip_s=r.crop_frames / 100.0,
        input_kind="waveform",
        trim_silence=True,
        val_fraction=0.15,
        wave_augment=FlagshipWaveAugment(noise_p=r.noise_p, snr_db=r.snr_db),
        spec_augment=FlagshipSpecAugment(),
        description="flagship: log-mel + residual CNN + attentive statistics pooling (~0.36 M params)",
    )


def _register_engine_recipe() -> None:
    try:
        from emovox.training.recipes import register_recipe
    except ImportError:  # pragma: no cover - engine absent
        return
    register_recipe("flagship", flagship_engine_recipe)


_register_engine_recipe()
