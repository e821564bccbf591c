"""Training configuration: one typed dataclass, validated, round-trips to JSON.

Runtime-only settings that do not change the result (progress bars) are kept
out of the JSON by :meth:`TrainConfig.to_dict` only where noted; everything that
influences the weights (seed, threads, schedule) is saved so that a run can be
repeated and resumed exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from emovox.errors import ConfigError
from emovox.fileio import atomic_write_text

OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("none", "plateau", "cosine", "onecycle", "cosine_steps")
SHUFFLES = ("torch", "numpy")
LAST_BATCHES = ("keep", "drop", "spread")
MONITORS = ("val_uar", "val_loss", "val_accuracy")


@dataclass
class TrainConfig:
    """Everything the training loop needs besides the model and the data.

    Attributes
    ----------
    epochs : int
        Maximum number of epochs.
    batch_size : int
        Training batch size (validation uses ``eval_batch_size``).
    optimizer : str
        ``"adam"`` or ``"adamw"``.
    lr : float
        Initial (peak, with warm-up) learning rate.
    weight_decay : float
        L2 (Adam) or decoupled (AdamW) weight decay.
    class_weights : str or list[float]
        ``"none"``, ``"balanced"`` (``n / (k * count_c)`` on the training
        labels) or one weight per class.
    label_smoothing : float
        In ``[0, 1)``.
    scheduler : str
        ``"none"``, ``"plateau"`` (ReduceLROnPlateau on the monitored metric)
        ``"cosine"`` (per-epoch cosine decay to ``min_lr``), or, stepped after
        every batch, ``"onecycle"`` (one-cycle: warm-up to ``lr``, cosine
        annealing, momentum cycled) or ``"cosine_steps"`` (linear warm-up,
        cosine decay to 0); see :mod:`emovox.training.schedules`.
    warmup_epochs : int
        Linear warm-up epochs before the cosine decay (``"cosine"`` only).
    warmup_fraction : float
        In ``[0, 1)``: the share of all steps spent warming up (``"onecycle"``,
        ``"cosine_steps"`` only).
    plateau_factor, plateau_patience : float, int
        ReduceLROnPlateau settings.
    min_lr : float
        Floor of the learning rate.
    early_stop_patience : int or None
        Stop after this many epochs without improvement; ``None`` never stops.
    monitor : str
        ``"val_uar"`` (default, maximised), ``"val_accuracy"`` (maximised) or
        ``"val_loss"`` (minimised); selects the best checkpoint and drives
        early stopping and the plateau scheduler.
    mixup_alpha : float
        Beta(alpha, alpha) mixup of training inputs; ``0`` disables it.
    balanced_sampling : bool
        Oversample classes under the median class count up to it (seeded);
        with ``shuffle="numpy"``, draw each epoch's ``n`` examples with
        replacement, with probabilities proportional to ``1 / count`` of their class.
    shuffle : str
        ``"torch"``: the order comes from a torch generator seeded with
        ``seed`` (shared by torchrun processes); ``"numpy"``: each epoch's
        order is ``rng.permutation(n)`` of the loop's NumPy generator, drawn
        before the epoch's augmentation (one process only).
    last_batch : str
        ``"keep"`` a short last batch, ``"drop"`` it, or ``"spread"`` the
        examples over ``ceil(n / batch_size)`` near-equal batches (``"numpy"``
        shuffle only).
    grad_clip : float or None
        Clip the global gradient norm to this value.
    encoder_lr_scale, layer_decay : float
        Passed to a model's ``optimizer_groups`` (:func:`emovox.training.optim.make_optimizer`):
        a pre-trained block ``i`` of ``K`` learns at ``lr * encoder_lr_scale * layer_decay ** (K - i)``;
        ``1`` (default) for both, and no effect on models without ``optimizer_groups``.
    ema_decay : float
        Keep an exponential moving average of the weights with this decay per
        step (see :mod:`emovox.training.ema`); validation, the best checkpoint
        and the returned model then use the averaged weights. ``0`` (default)
        disables it.
    seed : int
        Seeds torch, NumPy, Python ``random`` and the sampler.
    threads : int
        ``torch.set_num_threads`` for the run; under torchrun, the budget of
        one machine, shared by its processes (``max(1, threads // N)`` each).
    eval_batch_size : int
        Batch size for validation and prediction.
    progress : bool
        Show tqdm progress bars (does not influence the result).
    """

    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    class_weights: Any = "balanced"
    label_smoothing: float = 0.0
    scheduler: str = "plateau"
    warmup_epochs: int = 0
    warmup_fraction: float = 0.1
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    min_lr: float = 1e-6
    early_stop_patience: int | None = 8
    monitor: str = "val_uar"
    mixup_alpha: float = 0.0
    balanced_sampling: bool = False
    shuffle: str = "torch"
    last_batch: str = "keep"
    grad_clip: float | None = None
    ema_decay: float = 0.0
    encoder_lr_scale: float = 1.0
    layer_decay: float = 1.0
    seed: int = 0
    threads: int = 2
    eval_batch_size: int = 64
    progress: bool = True

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> TrainConfig:
        """Raise :class:`ConfigError` naming the first invalid field."""
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        _positive_int("eval_batch_size", self.eval_batch_size)
        _positive_int("threads", self.threads)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("scheduler", self.scheduler, SCHEDULERS)
        _choice("monitor", self.monitor, MONITORS)
        _choice("shuffle", self.shuffle, SHUFFLES)
        _choice("last_batch", self.last_batch, LAST_BATCHES)
        if not (isinstance(self.warmup_fraction, (int, float)) and 0 <= self.warmup_fraction < 1):
            raise ConfigError(f"warmup_fraction={self.warmup_fraction!r} must be in [0, 1)")
        if self.last_batch == "spread" and self.shuffle != "numpy":
            raise ConfigError("last_batch='spread' needs shuffle='numpy'")
        _positive_float("lr", self.lr)
        _nonneg_float("weight_decay", self.weight_decay)
        _nonneg_float("min_lr", self.min_lr)
        _nonneg_float("mixup_alpha", self.mixup_alpha)
        _positive_float("encoder_lr_scale", self.encoder_lr_scale)
        _positive_float("layer_decay", self.layer_decay)
        _nonneg_int("warmup_epochs", self.warmup_epochs)
        _nonneg_int("plateau_patience", self.plateau_patience)
        if not (isinstance(self.label_smoothing, (int, float)) and 0 <= self.label_smoothing < 1):
            raise ConfigError(f"label_smoothing={self.label_smoothing!r} must be in [0, 1)")
        if isinstance(self.ema_decay, bool) or not (
            isinstance(self.ema_decay, (int, float)) and 0 <= self.ema_decay < 1
        ):
            raise ConfigError(f"ema_decay={self.ema_decay!r} must be in [0, 1) (0 turns the weight average off)")
        if not (isinstance(self.plateau_factor, (int, float)) and 0 < self.plateau_factor < 1):
            raise ConfigError(f"plateau_factor={self.plateau_factor!r} must be in (0, 1)")
        if self.early_stop_patience is not None:
            _positive_int("early_stop_patience", self.early_stop_patience)
        if self.grad_clip is not None:
            _positive_float("grad_clip", self.grad_clip)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be a non-negative integer")
        if not isinstance(self.balanced_sampling, bool) or not isinstance(self.progress, bool):
            raise ConfigError("balanced_sampling and progress must be true or false")
        cw = self.class_weights
        if isinstance(cw, str):
            _choice("class_weights", cw, ("none", "balanced"))
        elif isinstance(cw, (list, tuple)):
            if not cw or not all(isinstance(w, (int, float)) and math.isfinite(w) and w > 0 for w in cw):
                raise ConfigError(f"class_weights={list(cw)!r} must be positive numbers, one per class")
            self.class_weights = [float(w) for w in cw]
        else:
            raise ConfigError(f"class_weights={cw!r} must be 'none', 'balanced' or a list of per-class weights")
        if self.scheduler == "cosine" and self.warmup_epochs >= self.epochs:
            raise ConfigError(f"warmup_epochs={self.warmup_epochs} must be smaller than epochs={self.epochs}")
        return self

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            atomic_write_text(path, text + "\n")
        return text

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from a mapping; unknown keys raise :class:`ConfigError` listing the valid ones."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"training config must be a JSON object, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(f"unknown training option(s) {unknown}: expected some of {names}")
        return cls(**dict(data))

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"training config {str(path)!r} does not exist") from None
        except json.JSONDecodeError as error:
            raise ConfigError(f"training config {str(path)!r} is not valid JSON ({error})") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with some fields changed."""
        data = self.to_dict()
        data.update(changes)
        return TrainConfig.from_dict(data)


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name}={value!r} must be a positive integer")


def _nonneg_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name}={value!r} must be a non-negative integer")


def _positive_float(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}={value!r} must be a positive number")


def _nonneg_float(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name}={value!r} must be a non-negative number")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not valid: expected one of {', '.join(choices)}")
