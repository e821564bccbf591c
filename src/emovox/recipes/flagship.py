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

:func:`train_flagship` runs all of this through the one training loop,
:func:`emovox.training.engine.train_model` (options in
:func:`flagship_train_config`; the augmentation is
:class:`emovox.augment.logmel.LogMelAugment`, the engine's ``batch_augment``
hook; the EMA is :mod:`emovox.training.ema`), so it checkpoints every epoch
and a killed run resumes (``out_dir=..., resume=True``).

Inference (:func:`predict_logits`) runs each clip at full length, one at a
time (the model pools over time, so lengths may differ).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emovox.augment.logmel import LogMelAugment
from emovox.errors import ConfigError
from emovox.models.flagship import FlagshipConfig, FlagshipNet
from emovox.training.callbacks import Callback
from emovox.training.checkpoint import load_checkpoint
from emovox.training.config import TrainConfig
from emovox.training.data import RaggedDataset
from emovox.training.engine import CHECKPOINT_NAME, train_model

__all__ = [
    "FlagshipRecipe",
    "augment_batch",
    "flagship_train_config",
    "logmel_of",
    "predict_logits",
    "train_flagship",
]


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


def _augmenter(recipe: FlagshipRecipe, mel_weights: np.ndarray | None) -> LogMelAugment:
    return LogMelAugment(
        crop_frames=recipe.crop_frames,
        stretch=(float(recipe.stretch[0]), float(recipe.stretch[1])),
        noise_p=recipe.noise_p,
        snr_db=(float(recipe.snr_db[0]), float(recipe.snr_db[1])),
        n_freq_masks=recipe.n_freq_masks,
        freq_mask=recipe.freq_mask,
        n_time_masks=recipe.n_time_masks,
        time_mask=recipe.time_mask,
        mel_weights=None if mel_weights is None else tuple(float(w) for w in mel_weights),
    )


def augment_batch(
    logmels: Sequence[np.ndarray],
    recipe: FlagshipRecipe,
    rng: np.random.Generator,
    mel_weights: np.ndarray | None = None,
) -> torch.Tensor:
    """Crop, stretch, add noise and SpecAugment a batch of log-mel ``(n_mels, frames)`` arrays.

    :class:`emovox.augment.logmel.LogMelAugment` with the recipe's settings.
    Returns an un-normalised log-mel batch ``(batch, n_mels, crop_frames)``.
    """
    return _augmenter(recipe, mel_weights).batch(logmels, rng)


def _mel_weights(model: FlagshipNet) -> np.ndarray:
    fb = model.frontend.mel_fb.numpy()
    w = fb.sum(axis=1)
    return (w / w.mean()).astype(np.float32)


class _NormalisedInput(nn.Module):
    """The module the engine trains: normalised log-mel ``(batch, n_mels, frames)`` -> logits of ``net``."""

    def __init__(self, net: FlagshipNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_normalized(x)


class _NormalisedBatch:
    """Engine ``batch_augment`` hook: :class:`LogMelAugment`, then the model's per-utterance normalisation.

    Mixup (the engine's) then mixes normalised inputs, as the recipe says.
    """

    def __init__(self, augment: LogMelAugment, norm: nn.Module) -> None:
        self.augment = augment
        self.norm = norm

    def __call__(self, logmels: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
        with torch.no_grad():
            return self.norm(self.augment.batch(logmels, rng)).numpy()


class _LogLines(Callback):
    """``log("epoch e/n loss x.xxxx Ts")`` after every epoch."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.started = time.perf_counter()
        self.epochs = 0

    def on_train_start(self, *, start_epoch: int, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, record: dict) -> None:
        seconds = time.perf_counter() - self.started
        self.log(f"epoch {epoch + 1}/{self.epochs} loss {record['train_loss']:.4f} {seconds:.0f}s")


def flagship_train_config(recipe: FlagshipRecipe, *, threads: int | None = None) -> TrainConfig:
    """The engine options of the cached-log-mel recipe.

    AdamW, one-cycle schedule per step (15 % warm-up), label smoothing,
    mixup, weight EMA, a fixed number of epochs without validation, each
    epoch's order ``rng.permutation`` (or class-balanced draws) of the loop's
    generator, the last short batch dropped.
    """
    return TrainConfig(
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        optimizer="adamw",
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        class_weights="none",
        label_smoothing=recipe.label_smoothing,
        scheduler="onecycle",
        warmup_fraction=0.15,
        early_stop_patience=None,
        mixup_alpha=recipe.mixup_alpha,
        ema_decay=recipe.ema_decay,
        seed=recipe.seed,
        threads=threads or torch.get_num_threads(),
        shuffle="numpy",
        last_batch="drop",
        progress=False,
    )


def train_flagship(
    logmels: Sequence[np.ndarray],
    labels: np.ndarray,
    n_classes: int,
    recipe: FlagshipRecipe | None = None,
    *,
    balanced: bool = False,
    log: Callable[[str], None] | None = None,
    return_raw: bool = False,
    init_state: dict | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
) -> FlagshipNet | tuple[FlagshipNet, FlagshipNet]:
    """Train a flagship from cached log-mel arrays, through :func:`emovox.training.engine.train_model`.

    Parameters
    ----------
    logmels : sequence of np.ndarray [shape=(n_mels, frames)]
        Un-normalised log-mel of each training clip (from ``model.frontend``).
    labels : np.ndarray [shape=(n,)], int
        Class index of each clip.
    n_classes : int
        Output classes.
    recipe : FlagshipRecipe, optional
    balanced : bool
        Draw each epoch's clips with replacement, class-balanced (what the
        shipped ``cnn`` was trained with); ``False``: one permutation per epoch.
    log : callable, optional
        Receives one line per epoch.
    return_raw : bool
        Also return the last (non-averaged) weights, for ablations.
    init_state : dict or None
        A ``state_dict`` to start from (e.g. pre-trained on other corpora with
        the same ``n_classes``); ``None`` starts from a random initialisation.
    out_dir : path-like, optional
        Where the engine keeps its checkpoint and logs (a temporary folder if
        ``None``); with ``resume=True`` a killed run continues from it.
    resume : bool
    callbacks : sequence of Callback
        The engine's progress hooks.

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
    torch.manual_seed(recipe.seed)
    model = FlagshipNet(FlagshipConfig(n_classes=n_classes, **recipe.model))
    if init_state is not None:
        model.load_state_dict(init_state)
    trained = _NormalisedInput(model)
    config = flagship_train_config(recipe).replace(balanced_sampling=bool(balanced))
    hooks = [*callbacks, *([_LogLines(log)] if log is not None else [])]
    with tempfile.TemporaryDirectory(prefix="emovox-flagship-") as scratch:
        folder = Path(out_dir) if out_dir is not None else Path(scratch)
        train_model(
            trained,
            RaggedDataset(logmels, labels),
            None,
            config,
            out_dir=folder,
            n_classes=n_classes,
            batch_augment=_NormalisedBatch(_augmenter(recipe, _mel_weights(model)), model.norm),
            callbacks=hooks,
            resume=resume,
            plot=False,
        )
        raw = None
        if return_raw:
            tensors, _ = load_checkpoint(folder / CHECKPOINT_NAME)
            raw = FlagshipNet(model.config)
            raw.load_state_dict({k[len("model.net.") :]: v for k, v in tensors.items() if k.startswith("model.net.")})
    model.eval()  # train_model loaded the kept (averaged) weights into it
    if raw is not None:
        return model, raw.eval()
    return model


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
# ``emovox train --recipe flagship`` trains on waveforms (front end run every
# step, validation on held-out training speakers). The figures in
# docs/flagship_experiments.md and the shipped ``cnn`` come from
# :func:`train_flagship` above (the same engine, on cached log-mel for speed on
# a shared 2-core machine); the waveform recipe mirrors its settings as far as
# waveform hooks allow (noise in the waveform, SpecAugment between
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
