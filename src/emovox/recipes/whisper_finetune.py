"""Recipe ``whisper-finetune``: fine-tune the top blocks of a Whisper encoder in the one training loop.

::

    emovox train --recipe whisper-finetune --backbone ~/whisper-base --corpus ravdess --out runs/ft
    emovox train --recipe whisper-finetune --backbone ~/whisper-base --corpus emodb --folds 5 --fold 0 \\
        --epochs 10 --set top_blocks=2 --set lora_rank=8 --out runs/ft-lora

The model is :class:`~emovox.models.whisper_finetune.WhisperFinetuneClassifier`
(architecture ``whisper-finetune``): blocks ``1..L`` of the encoder frozen,
blocks ``L+1..K`` trained (or frozen with LoRA adapters), mean+std pooling of
hidden states ``0..K`` (``layers``; as the shipped linear probe) and a linear
head. Steps:

1. **Cache** (:func:`encode_clips`): every clip is decoded and silence-trimmed
   as :class:`emovox.inference.Predictor` does (16 kHz, at most 30 s), and run
   once through the frozen encoder up to block ``K``. Stored per clip, on disk
   (:class:`emovox.features.cache.FeatureCache`, keyed by the file's bytes,
   the encoder's SHA-256, ``L``, ``K``, the states kept and the
   preprocessing): the frame states the top part reads, in float16
   ``(frames, n_in * d_model)`` (the pooled states under ``L`` and the states
   of block ``L``, concatenated along channels), and the pooled statistics of
   the frozen states ``0..K`` ``(K + 1, 2, d_model)``.
2. **Initialisation**: the top blocks are copied from the encoder; the
   standardiser is the training clips' mean and std of the pooled statistics;
   with ``head_init="probe"`` the head starts as a class-balanced logistic
   regression on them (linear probing, then fine-tuning).
3. **Training** (:func:`finetune`): :func:`emovox.training.engine.train_model`
   trains ``model.top`` on random crops of ``crop_s`` seconds of the cached
   states (:class:`CachedStates`: a new crop of every clip each epoch, drawn
   from ``(seed, epoch, clip)``; a shorter clip is tiled, which leaves its
   attention and pooled statistics unchanged for whole repeats, as every
   frame then has identical copies), AdamW, class-balanced
   cross-entropy with label smoothing, per-group learning rates (the head at
   ``lr``, block ``i`` at ``lr * encoder_lr_scale * layer_decay ** (K - i)``),
   linear warm-up over ``warmup_fraction`` of the steps then cosine decay
   (``scheduler="cosine_steps"``), gradient clipping. No ``batch_augment``
   hook and the engine's own sampler: the same run works under torchrun (DDP).
   With ``val_fraction`` > 0 whole speakers of the training data are held out,
   validated on whole clips after every epoch, and the best epoch is kept
   (its logits also calibrate the artifact); else the last epoch is kept.
4. **Artifact**: the whole waveform-to-logits model (the frozen encoder part
   stored in float16) in ``OUT/model``; held-out test figures with
   ``folds``/``fold``; ``OUT/summary.json``.

Resumption: the engine writes ``OUT/train/checkpoint.safetensors`` after every
epoch; running the same command again (same settings, same data) continues
from it and ends with the same weights as an uninterrupted run. A folder
holding a run with other settings is refused.

``copies=N`` adds N degraded copies of every training clip (the robust
recipe's chains, :func:`emovox.recipes.robust.copy_chain`: a telephone call,
then the full degradation chain, then noisy places, with synthetic rooms and
music/hum banks and no babble), each cached like the clips (one more encoder
pass per copy).

Settings (``emovox train`` options of the same names, the others with
``--set KEY=VALUE``): :data:`SETTINGS`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from emovox.errors import ConfigError
from emovox.recipes.whisper_finetune_data import (
    FRAMES_PER_S,
    SAMPLE_RATE_HZ,
    CachedStates,
    EncodedClips,
    copy_transform,
    encode_clips,
)
from emovox.training.callbacks import Callback

__all__ = [
    "SETTINGS",
    "FinetuneOptions",
    "CachedStates",
    "EncodedClips",
    "encode_clips",
    "finetune",
    "predict_states",
    "train_whisper_finetune",
    "fit_recipe",
    "build_recipe",
]

#: Blocks the default model runs (it reads hidden states 0..4 of Whisper base).
DEFAULT_DEPTH = 4


@dataclass(frozen=True)
class FinetuneOptions:
    """Everything that decides a fine-tuning run (besides data and encoder).

    Model: ``depth`` (``K``; ``None``: ``min(4, n_layers)``, the default
    model's depth), ``top_blocks`` (``K - L``), ``layers`` (pooled states in
    ``L..K``; ``None``: all), ``pooling`` (``"concat"`` or ``"weighted"``),
    ``lora_rank`` (0: train the blocks), ``lora_alpha``, ``dropout`` (head
    input), ``checkpointing`` (gradient checkpointing of the top blocks).

    Training: ``epochs``, ``batch_size``, ``lr`` (the head's),
    ``encoder_lr_scale``, ``layer_decay``, ``weight_decay`` (AdamW),
    ``warmup_fraction``, ``label_smoothing``, ``grad_clip``, ``ema_decay``,
    ``crop_s`` (training crop), ``val_fraction`` (speakers held out for
    validation; 0: none, the last epoch is kept), ``copies`` (degraded copies
    per training clip), ``head_init`` (``"probe"``: logistic regression with
    inverse regularisation ``probe_C`` on the frozen features; ``"random"``),
    ``seed``, ``threads``.
    """

    depth: int | None = None
    top_blocks: int = 1
    layers: tuple[int, ...] | None = None
    pooling: str = "concat"
    lora_rank: int = 0
    lora_alpha: float = 16.0
    dropout: float = 0.1
    checkpointing: bool = False
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    encoder_lr_scale: float = 0.05
    layer_decay: float = 0.8
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    ema_decay: float = 0.0
    crop_s: float = 3.0
    val_fraction: float = 0.0
    copies: int = 0
    head_init: str = "probe"
    probe_C: float = 1e-3
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))
        if self.crop_s * FRAMES_PER_S < 1 or not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"crop_s={self.crop_s} must be positive and val_fraction={self.val_fraction} in [0, 1)")
        if self.head_init not in ("probe", "random"):
            raise ConfigError(f"head_init={self.head_init!r}: 'probe' (logistic regression first) or 'random'")
        if isinstance(self.copies, bool) or not isinstance(self.copies, int) or self.copies < 0:
            raise ConfigError(f"copies={self.copies!r} must be a non-negative integer")
        if not self.probe_C > 0:
            raise ConfigError(f"probe_C={self.probe_C!r} must be positive")

    @property
    def crop_frames(self) -> int:
        return max(1, int(round(self.crop_s * FRAMES_PER_S)))

    def resolved_depth(self, n_layers: int) -> int:
        return int(self.depth) if self.depth is not None else min(DEFAULT_DEPTH, n_layers)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = None if self.layers is None else list(self.layers)
        return d

    @classmethod
    def from_settings(cls, settings: dict) -> FinetuneOptions:
        """From recipe settings (unknown keys ignored; ``None`` values keep the defaults)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in settings.items() if k in names and v is not None}
        if "clip_s" in settings and settings["clip_s"] is not None:
            values["crop_s"] = float(settings["clip_s"])
        try:
            return cls(**values)
        except TypeError as error:
            raise ConfigError(f"whisper-finetune settings: {error}") from None


# ---------------------------------------------------------------------------------- the run
class _EpochLines(Callback):
    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.epochs = 0

    def on_train_start(self, *, start_epoch: int, epochs: int) -> None:
        self.epochs = epochs
        if start_epoch:
            self.log(f"resuming after epoch {start_epoch}/{epochs}")

    def on_epoch_end(self, epoch: int, record: dict) -> None:
        val = record.get("val_uar")
        self.log(
            f"epoch {epoch + 1}/{self.epochs} loss {record['train_loss']:.4f} acc {record['train_accuracy']:.3f}"
            + (f" val UAR {val:.3f}" if val is not None else "")
            + f" {record['time_s']:.0f}s"
        )


def build_model(encoder_dir: str | os.PathLike, n_classes: int, options: FinetuneOptions):
    """A :class:`WhisperFinetuneClassifier` holding the encoder's weights (seeded LoRA init) and its params."""
    from emovox.models.whisper_encoder import load_whisper_encoder
    from emovox.models.whisper_finetune import WhisperFinetuneClassifier, finetune_params

    encoder = load_whisper_encoder(encoder_dir)
    params = finetune_params(
        encoder.config.to_dict(),
        depth=options.resolved_depth(encoder.config.n_layers),
        top_blocks=options.top_blocks,
        layers=options.layers,
        pooling=options.pooling,
        lora_rank=options.lora_rank,
        lora_alpha=options.lora_alpha,
        dropout=options.dropout,
        checkpointing=options.checkpointing,
    )
    torch.manual_seed(options.seed)
    model = WhisperFinetuneClassifier(n_classes, **params)
    model.load_encoder(encoder.state_dict())
    return model, params


def train_config(options: FinetuneOptions, *, validation: bool, progress: bool = False):
    """The engine options of a fine-tuning run."""
    from emovox.training.config import TrainConfig

    return TrainConfig(
        epochs=options.epochs,
        batch_size=options.batch_size,
        optimizer="adamw",
        lr=options.lr,
        weight_decay=options.weight_decay,
        class_weights="balanced",
        label_smoothing=options.label_smoothing,
        scheduler="cosine_steps",
        warmup_fraction=options.warmup_fraction,
        early_stop_patience=None,
        monitor="val_uar",
        grad_clip=options.grad_clip,
        ema_decay=options.ema_decay,
        encoder_lr_scale=options.encoder_lr_scale,
        layer_decay=options.layer_decay,
        seed=options.seed,
        threads=options.threads,
        eval_batch_size=1 if validation else 64,  # whole clips of their own lengths
        progress=progress,
    )


def _init_head(model, pooled: np.ndarray, y: np.ndarray, n_classes: int, options: FinetuneOptions) -> None:
    """Standardiser from the training rows' pooled statistics; head from a logistic regression on them ("probe")."""
    from emovox.models.softmax_regression import fit_softmax_regression

    rows = pooled[:, list(model.layers)].astype(np.float64)
    mean, scale = rows.mean(axis=0), rows.std(axis=0)
    model.set_standardiser(torch.from_numpy(mean), torch.from_numpy(scale))
    if options.head_init != "probe":
        return
    z = (rows - model.top.feature_mean.double().numpy()) / model.top.feature_scale.double().numpy()
    if model.top.pooling == "weighted":  # zero layer logits: the states' plain mean
        z = z.mean(axis=1)
    z = z.reshape(len(z), -1)
    fit = fit_softmax_regression(z, y, C=options.probe_C, n_classes=n_classes)  # on (z - mean) / scale
    coef = fit.coef / fit.scale
    with torch.no_grad():
        model.top.head.weight.copy_(torch.from_numpy(coef))
        model.top.head.bias.copy_(torch.from_numpy(fit.intercept - coef @ fit.mean))


def finetune(
    model,
    train: tuple[Sequence[np.ndarray], np.ndarray, np.ndarray],
    n_classes: int,
    options: FinetuneOptions,
    *,
    out_dir: str | os.PathLike,
    val: tuple[Sequence[np.ndarray], np.ndarray] | None = None,
    callbacks: Sequence[Callback] = (),
    resume: bool = True,
    plot: bool = True,
    progress: bool = False,
):
    """Initialise and train ``model.top`` on cached states through :func:`emovox.training.engine.train_model`.

    Parameters
    ----------
    model : WhisperFinetuneClassifier
        From :func:`build_model`.
    train : (states, labels, pooled)
        Training clips' cached states of block ``L``, labels, and pooled frozen
        states ``(n, K + 1, 2, d_model)`` (standardiser and probe head).
    val : (states, labels), optional
        Validation clips (whole); ``None``: the last epoch is kept.
    out_dir : path-like
        The engine's folder (checkpoint, logs); with ``resume`` a killed run continues.

    Returns
    -------
    emovox.training.engine.TrainResult
    """
    from emovox.training.engine import train_model

    states, y, pooled = train
    y = np.asarray(y, dtype=np.int64)
    _init_head(model, pooled, y, n_classes, options)
    train_ds = CachedStates(states, y, crop_frames=options.crop_frames, crop="random", seed=options.seed)
    val_ds = None if val is None else CachedStates(val[0], val[1], crop_frames=None)
    config = train_config(options, validation=val is not None, progress=progress)
    result = train_model(
        model.top,
        cast(Any, train_ds),  # any dataset with labels, seed and set_epoch (the engine's contract)
        cast(Any, val_ds),
        config,
        out_dir=Path(out_dir),
        n_classes=n_classes,
        callbacks=callbacks,
        resume=resume,
        plot=plot,
    )
    model.eval()
    return result


@torch.no_grad()
def predict_states(model, states: Sequence[np.ndarray]) -> np.ndarray:
    """Logits ``(n, n_classes)`` of whole clips from their cached states, one clip at a time."""
    was = model.training
    model.eval()
    try:
        out = [model.forward_states(torch.from_numpy(np.asarray(h, np.float32))[None])[0].numpy() for h in states]
    finally:
        model.train(was)
    n_classes = model.top.head.out_features
    return np.stack(out) if out else np.zeros((0, n_classes), np.float32)


def _check_same_run(path: Path, build: dict) -> None:
    from emovox.fileio import atomic_write_text

    if path.is_file() and json.loads(path.read_text()) != build:
        raise ConfigError(
            f"{path.parent} holds a whisper-finetune run with other settings or data ({path}): "
            "use the same ones to continue it, or choose another --out"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(build, indent=2, sort_keys=True) + "\n")


def train_whisper_finetune(
    records: Sequence,
    encoder_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    scheme: str = "native",
    folds: int | None = None,
    fold: int = 0,
    options: FinetuneOptions | None = None,
    cache_dir: str | os.PathLike | None = None,
    callbacks: Sequence[Callback] = (),
    log: Callable[[str], None] | None = None,
    plot: bool = True,
) -> dict:
    """Fine-tune on ``records`` and save ``out_dir/model`` (an artifact) and ``out_dir/summary.json``.

    Parameters
    ----------
    records : sequence of emovox.corpora.Record
    encoder_dir : path-like
        Whisper encoder folder (``scripts/import_whisper_ct2.py``).
    scheme : str
        Label scheme.
    folds, fold : int
        With ``folds``, train on the speakers outside fold ``fold`` of a
        speaker k-fold (stratified by corpus, seeded by ``options.seed``; with
        3 folds and seed 0 the model card's folds) and report test figures on it.
    options : FinetuneOptions
    cache_dir : path-like, optional
        The frame-state cache (default ``$EMOVOX_CACHE/features`` or ``~/.cache/emovox/features``).
    callbacks : sequence of Callback
        The engine's progress hooks.
    log : callable, optional
        Receives progress lines.

    Returns
    -------
    dict
        ``artifact``, ``classes``, ``n_train``, ``n_val``, ``n_test``,
        ``protocol``, ``metrics`` (``test`` with folds), ``cache_s``,
        ``epoch_s`` (per epoch run by this call), ``train_s``, ``options``, ``lines``.
    """
    from emovox.evaluation import compute_metrics, speaker_kfold, speaker_validation_split
    from emovox.evaluation.data import default_cache_dir, prepare_labels
    from emovox.fileio import atomic_write_text
    from emovox.models.artifact import make_config, save_artifact
    from emovox.models.spec import TaskSpec
    from emovox.models.whisper_encoder import half_encoders
    from emovox.recipes.whisper import PREPROCESSING, encoder_id
    from emovox.training.distributed import init_distributed
    from emovox.training.pipeline import data_card

    options = options or FinetuneOptions()
    out = Path(out_dir)
    say = log or (lambda line: None)
    torch.set_num_threads(options.threads)
    kept, y, classes = prepare_labels(records, scheme)
    if len(classes) < 2:
        raise ConfigError(f"only {len(classes)} class in the data: need at least 2")
    speakers = [r.speaker_key for r in kept]
    pool, test_idx = np.arange(len(kept)), np.zeros(0, dtype=int)
    protocol: dict[str, Any] = {"name": "all-training", "scheme": scheme}
    if folds:
        splits = speaker_kfold(
            speakers, k=int(folds), seed=options.seed, labels=list(y), strata=[r.corpus for r in kept]
        )
        if not 0 <= int(fold) < len(splits):
            raise ConfigError(f"fold={fold} is out of range: choose 0..{len(splits) - 1}")
        pool, test_idx = np.asarray(splits[fold].train_idx), np.asarray(splits[fold].test_idx)
        protocol = {"name": "speaker-kfold", "folds": int(folds), "fold": int(fold), "scheme": scheme}
    train_idx, val_idx = pool, np.zeros(0, dtype=int)
    if options.val_fraction > 0:
        inner = speaker_validation_split(speakers, pool, fraction=options.val_fraction, seed=options.seed, labels=y)
        train_idx, val_idx = np.asarray(inner.train_idx), np.asarray(inner.test_idx)
        protocol["validation_speakers"] = sorted({speakers[i] for i in val_idx})

    model, params = build_model(encoder_dir, len(classes), options)
    split, depth = model.split, model.depth
    cache = default_cache_dir() if cache_dir is None else Path(cache_dir)
    _check_same_run(
        out / "finetune.json",
        {
            "options": {k: v for k, v in options.to_dict().items() if k != "threads"},
            "encoder": encoder_id(encoder_dir),
            "classes": list(classes),
            "train": [kept[i].path for i in train_idx],
            "val": [kept[i].path for i in val_idx],
        },
    )
    paths = [kept[i].path for i in range(len(kept))]
    needed = np.concatenate([train_idx, val_idx, test_idx])
    lower = model.lower_layers
    say(f"caching frame states {[*lower, split]} (and pooled states 0..{depth}) of {len(needed)} clips")
    encoded = encode_clips(
        [paths[i] for i in needed], encoder_dir, split=split, depth=depth, lower_layers=lower, cache_dir=cache
    )
    at = {int(j): k for k, j in enumerate(needed)}
    cache_s = encoded.seconds
    tr_states = [encoded.states[at[int(i)]] for i in train_idx]
    tr_pooled = [encoded.pooled[[at[int(i)] for i in train_idx]]]
    tr_y = [y[train_idx]]
    banks: dict = {}
    for c in range(1, options.copies + 1):
        say(f"caching degraded copy {c} of {len(train_idx)} training clips")
        copy = encode_clips(
            [paths[i] for i in train_idx],
            encoder_dir,
            split=split,
            depth=depth,
            lower_layers=lower,
            cache_dir=cache,
            augment=copy_transform(c, banks),
            copy=c,
            seed=options.seed,
        )
        cache_s += copy.seconds
        tr_states += copy.states
        tr_pooled.append(copy.pooled)
        tr_y.append(y[train_idx])
    val = None
    if len(val_idx):
        val = ([encoded.states[at[int(i)]] for i in val_idx], y[val_idx])
    say(f"cache ready in {cache_s:.0f}s; training top {options.top_blocks} block(s) on {len(tr_states)} clips")
    started = time.perf_counter()
    result = finetune(
        model,
        (tr_states, np.concatenate(tr_y), np.concatenate(tr_pooled)),
        len(classes),
        options,
        out_dir=out / "train",
        val=val,
        callbacks=[*callbacks, *([_EpochLines(say)] if log is not None else [])],
        plot=plot,
    )
    train_s = time.perf_counter() - started
    ctx = init_distributed()
    if not ctx.is_writer:  # another torchrun process: rank 0 evaluates and writes
        return {"writer": False, "rank": ctx.rank, "artifact": str(out / "model"), "lines": []}

    metrics: dict[str, Any] = {"best_epoch": result.best_epoch}
    sections: dict[str, Any] = {}
    if val is not None:
        from emovox.inference.calibration import calibrate

        val_logits = predict_states(model, val[0])
        metrics["validation"] = compute_metrics(val[1], val_logits.argmax(axis=1), classes=list(classes))
        sections.update(calibrate(val_logits, val[1]).to_config())
    if len(test_idx):
        logits = predict_states(model, [encoded.states[at[int(i)]] for i in test_idx])
        metrics["test"] = compute_metrics(y[test_idx], logits.argmax(axis=1), classes=list(classes))
    metrics = json.loads(json.dumps(metrics, default=_jsonable))
    spec = TaskSpec(labels=tuple(classes), sample_rate_hz=SAMPLE_RATE_HZ, clip_s=options.crop_s)
    config = make_config(
        spec,
        "whisper-finetune",
        params,
        preprocessing=dict(PREPROCESSING),
        training={
            "recipe": "whisper-finetune",
            "options": options.to_dict(),
            "engine": train_config(options, validation=val is not None).to_dict(),
            "encoder": {**params["encoder"], "sha256": encoder_id(encoder_dir)},
            "data": data_card([kept[i] for i in train_idx], classes=classes, labels=y[train_idx]),
            "protocol": protocol,
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "degraded_copies": options.copies,
        },
        metrics=metrics,
        **sections,
    )
    half_encoders(model)  # the frozen encoder part is stored in float16 (it was read from float16)
    artifact = save_artifact(out / "model", model, config)
    epoch_s = [float(r["time_s"]) for r in result.history]
    summary = {
        "artifact": str(artifact),
        "recipe": "whisper-finetune",
        "classes": list(classes),
        "protocol": protocol,
        "metrics": metrics,
        "n_train": len(tr_states),
        "n_val": int(len(val_idx)),
        "n_test": int(len(test_idx)),
        "cache_s": round(cache_s, 2),
        "clips_encoded": encoded.n_computed,
        "epoch_s": epoch_s,
        "train_s": round(train_s, 2),
        "options": options.to_dict(),
    }
    line = (
        f"trained whisper-finetune (top {options.top_blocks} of {depth} blocks"
        + (f", LoRA rank {options.lora_rank}" if options.lora_rank else "")
        + f") on {len(tr_states)} clips, {len(result.history)} epochs"
    )
    if "test" in metrics:
        line += f"; test UAR {metrics['test']['uar']:.3f}, accuracy {metrics['test']['accuracy']:.3f}"
    summary["lines"] = [line, f"cache {cache_s:.0f}s, training {train_s:.0f}s"]
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _jsonable(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON-able")


# ---------------------------------------------------------------------------------- the registered recipe
#: The recipe's settings and their defaults. ``emovox train`` passes ``--backbone``, ``--epochs``,
#: ``--batch-size``, ``--lr``, ``--clip-s`` (the training crop), ``--folds``, ``--fold``, ``--copies``,
#: ``--seed``, ``--threads``, ``--no-progress``; ``--set KEY=VALUE`` any other :class:`FinetuneOptions`
#: field or ``cache_dir``.
SETTINGS: dict[str, Any] = {
    "backbone": None,
    "folds": None,
    "fold": None,
    "clip_s": None,
    "progress": True,
    "cache_dir": None,
    **{k: v for k, v in FinetuneOptions().to_dict().items() if k != "crop_s"},
}


def fit_recipe(records: Sequence, *, out_dir: str | os.PathLike, scheme: str, settings: dict) -> dict:
    """The ``fit`` of recipe ``whisper-finetune``: :func:`train_whisper_finetune` with the settings."""
    if not settings.get("backbone"):
        raise ConfigError(
            "--recipe whisper-finetune needs --backbone DIR (a Whisper encoder folder written by "
            "scripts/import_whisper_ct2.py)"
        )
    options = FinetuneOptions.from_settings(settings)
    folds = settings.get("folds")
    fold = settings.get("fold")
    if fold is not None and not folds:
        raise ConfigError("--fold needs --folds K (the number of speaker folds)")

    def log(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)

    return train_whisper_finetune(
        records,
        settings["backbone"],
        out_dir,
        scheme=scheme,
        folds=int(folds) if folds else None,
        fold=int(fold or 0),
        options=options,
        cache_dir=settings.get("cache_dir"),
        log=log if settings.get("progress", True) else None,
    )


def build_recipe():
    """The registered ``whisper-finetune`` recipe (its own run: :func:`fit_recipe`)."""
    from emovox.training.recipes import Recipe

    return Recipe(
        name="whisper-finetune",
        arch="whisper-finetune",
        label_scheme="native",
        trim_silence=True,
        fit=fit_recipe,
        settings=dict(SETTINGS),
        description="Whisper encoder (--backbone DIR) with its top blocks fine-tuned (or LoRA) from cached "
        "lower-block states, in the one training loop; --folds/--fold for held-out figures",
    )


def _register() -> None:
    from emovox.training.recipes import register_recipe

    register_recipe("whisper-finetune", build_recipe)


_register()
