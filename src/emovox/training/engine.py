"""The one training loop for every neural model in emovox.

:func:`train_model` takes a model (``(batch, *input) -> (batch, n_classes)``
logits), a training and a validation :class:`~emovox.training.data.ArrayDataset`
(the validation set made of training speakers only), and a
:class:`~emovox.training.config.TrainConfig`. It trains with Adam/AdamW,
class weights, label smoothing, optional mixup, balanced sampling and
on-the-fly augmentation; schedules the learning rate (plateau or cosine with
warm-up); optionally averages the weights (EMA, :mod:`emovox.training.ema`);
keeps the best weights by the monitored validation metric; stops
early; and after every epoch writes, atomically, one checkpoint holding
everything needed to continue: weights, averaged and best weights, optimizer,
scheduler, counters, history and every random state. A run killed at any moment and
resumed (``resume=True``) ends bit-identical to an uninterrupted run.

Under ``torchrun`` the same loop trains on several processes with
DistributedDataParallel (gloo, CPU): sharded sampling, the same global batch,
sharded validation, one writer (rank 0). :mod:`emovox.training.distributed`
states the rules; outside torchrun nothing changes.

Augmentation hooks receive and return NumPy arrays and draw randomness only
from the generator they are given (checkpointed by the engine):

- ``wave_augment(x, rng) -> x``: ``x`` is the model input batch
  ``(batch, ...)`` float32 (waveforms for waveform models);
- ``spec_augment(f, rng) -> f``: applied between ``model.features`` and
  ``model.classify``, which the model must then define. Frontends are treated
  as fixed DSP: no gradient flows through this hook.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypedDict, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset

from emovox.errors import ConfigError, ModelError
from emovox.training.callbacks import Callback, TqdmProgress
from emovox.training.checkpoint import (
    capture_process_rng_state,
    capture_rng_state,
    load_checkpoint,
    restore_process_rng_state,
    restore_rng_state,
    save_checkpoint,
    tree_from_json,
    tree_to_json,
)
from emovox.training.config import TrainConfig
from emovox.training.curves import plot_curves, write_logs
from emovox.training.data import ArrayDataset, BalancedSampler, balanced_class_weights, collate
from emovox.training.distributed import (
    DistContext,
    PaddedView,
    ShardedBatchSampler,
    all_reduce_sum,
    broadcast_buffers,
    broadcast_object,
    collate_with_mask,
    gather_objects,
    gather_rows,
    global_batch_loss,
    init_distributed,
    per_rank_batch_size,
    rank_seed,
    shard_range,
    threads_per_process,
)
from emovox.training.ema import WeightAverage

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]
CHECKPOINT_NAME = "checkpoint.safetensors"
#: Options that may differ between a run and its resumption (they do not change the result).
RUNTIME_ONLY = ("progress",)


class _LoopState(TypedDict):
    """The loop's counters, checkpointed as the ``state`` entry of the metadata."""

    epoch: int
    best_metric: float
    best_epoch: int
    bad_epochs: int
    stopped_early: bool
    finished: bool
    history: list[dict]


class _SplitModel(Protocol):
    """A model that ``spec_augment`` can cut in two: ``classify(features(x))`` gives the logits."""

    def features(self, x: torch.Tensor) -> torch.Tensor: ...

    def classify(self, feats: torch.Tensor) -> torch.Tensor: ...


@dataclass
class TrainResult:
    """What a finished run returns.

    Attributes
    ----------
    history : list[dict]
        One record per epoch (also in ``log.json`` / ``log.csv``).
    best_epoch : int
        1-based epoch of the best weights.
    best_metric : float
        Value of ``monitor`` at ``best_epoch``.
    monitor : str
    stopped_early : bool
    best_state : dict[str, torch.Tensor]
        Best weights (already loaded into the model passed to :func:`train_model`).
    out_dir : Path
    """

    history: list[dict]
    best_epoch: int
    best_metric: float
    monitor: str
    stopped_early: bool
    best_state: dict[str, torch.Tensor] = field(repr=False)
    out_dir: Path | None = None

    @property
    def best_record(self) -> dict:
        return self.history[self.best_epoch - 1]


def seed_everything(seed: int, *, threads: int | None = None) -> None:
    """Seed torch, Python ``random`` (and set torch's thread count).

    Call it before building a model so the initial weights are reproducible.
    NumPy randomness in emovox always goes through explicit generators.
    """
    if threads is not None:
        set_threads(threads)
    torch.manual_seed(seed)
    random.seed(seed)


def set_threads(threads: int) -> None:
    """``torch.set_num_threads`` (inter-op threads too, where still allowed)."""
    torch.set_num_threads(int(threads))
    try:
        torch.set_num_interop_threads(int(threads))
    except RuntimeError:  # already set once in this process
        pass


# --------------------------------------------------------------------------- metrics
def uar_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """(unweighted average recall over classes present in ``y_true``, accuracy)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if len(y_true) == 0:
        return float("nan"), float("nan")
    recalls = [float(np.mean(y_pred[y_true == c] == c)) for c in np.unique(y_true)]
    return float(np.mean(recalls)), float(np.mean(y_pred == y_true))


@torch.no_grad()
def predict_logits(model: torch.nn.Module, data: Dataset | np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Logits of ``model`` on a dataset (or an input array), ``(n, n_classes)`` float32."""
    was_training = model.training
    model.eval()
    outputs = []
    try:
        if isinstance(data, np.ndarray):
            for start in range(0, len(data), batch_size):
                outputs.append(
                    model(torch.from_numpy(np.ascontiguousarray(data[start : start + batch_size], dtype=np.float32)))
                )
        else:
            loader = DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate)
            for x, _ in loader:
                outputs.append(model(x))
    finally:
        model.train(was_training)
    if not outputs:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(outputs).float().numpy()


# --------------------------------------------------------------------------- the loop
def train_model(
    model: torch.nn.Module,
    train_data: ArrayDataset,
    val_data: ArrayDataset,
    config: TrainConfig,
    *,
    out_dir: str | Path,
    n_classes: int | None = None,
    wave_augment: Augment | None = None,
    spec_augment: Augment | None = None,
    augment: Augment | None = None,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
    plot: bool = True,
) -> TrainResult:
    """Train ``model`` in place and return the run's :class:`TrainResult`.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(batch, *input_shape)`` float32 to ``(batch, n_classes)`` logits.
    train_data, val_data : ArrayDataset
        Training examples (random crops) and validation examples (from
        training speakers only; centre crops). Any dataset with ``labels``
        (int array), ``__len__``, ``__getitem__ -> (x, label)`` works;
        ``set_epoch(epoch)`` is called if present and ``seed`` is set to
        ``config.seed``.
    config : TrainConfig
    out_dir : path-like
        Receives ``checkpoint.safetensors``, ``log.json``, ``log.csv`` and
        ``curves.png``.
    n_classes : int, optional
        Number of classes (defaults to the model's output size on one batch).
    wave_augment, spec_augment : callable, optional
        Augmentation hooks (see the module docstring). ``augment`` is an alias
        of ``wave_augment``.
    callbacks : sequence of Callback
        Progress hooks; a tqdm bar is added when ``config.progress``. Under
        torchrun they are called on the writer process (rank 0) only.
    resume : bool
        Continue from ``out_dir/checkpoint.safetensors`` (start afresh if the
        run was killed before writing one); raises :class:`ConfigError` if the
        checkpoint comes from different training options.
    plot : bool
        Write ``curves.png`` at the end.

    Notes
    -----
    Under ``torchrun --nproc_per_node=N`` (see :mod:`emovox.training.distributed`)
    every process calls this with the same arguments; each gets the same
    :class:`TrainResult`, and only rank 0 writes to ``out_dir``. A run resumes
    only on the number of processes that wrote its checkpoint.
    """
    if augment is not None:
        if wave_augment is not None:
            raise ConfigError("give either augment or wave_augment, not both")
        wave_augment = augment
    if spec_augment is not None and not (hasattr(model, "features") and hasattr(model, "classify")):
        raise ConfigError(
            f"spec_augment needs a model with features(x) and classify(f) methods; {type(model).__name__} has not"
        )
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"config must be a TrainConfig, got {type(config).__name__}")
    ctx = init_distributed()  # a single-process context outside torchrun
    out_dir = Path(out_dir)
    if ctx.is_writer:
        out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / CHECKPOINT_NAME
    # The writer looks at the folder; every process follows its decision.
    resume, problem = broadcast_object(_start_mode(ckpt_path, resume))
    if problem:
        raise ConfigError(problem)
    per_rank_batch_size(config.batch_size, ctx)  # the global batch must split evenly
    set_threads(threads_per_process(config.threads, ctx))
    n_classes = int(n_classes or _infer_n_classes(model, train_data))
    if int(np.max(train_data.labels)) >= n_classes or int(np.max(val_data.labels)) >= n_classes:
        raise ConfigError(f"labels go beyond the model's {n_classes} classes")

    # Random state: everything derives from config.seed (dropout, augmentation and
    # mixup per process under torchrun; the sampler's order is shared by all processes).
    seed = rank_seed(config.seed, ctx)
    torch.manual_seed(seed)  # (re-)seed so the loop does not depend on model building
    random.seed(seed)
    rng = np.random.default_rng(seed)
    sampler_gen = torch.Generator().manual_seed(config.seed)
    train_data.seed = config.seed

    sampler: BalancedSampler | RandomSampler
    if config.balanced_sampling:
        sampler = BalancedSampler(np.asarray(train_data.labels), generator=sampler_gen)
    else:
        sampler = RandomSampler(train_data, generator=sampler_gen)
    if ctx.enabled:
        shards = ShardedBatchSampler(sampler, batch_size=config.batch_size, rank=ctx.rank, world_size=ctx.world_size)
        loader = DataLoader(
            PaddedView(train_data),
            batch_sampler=shards,
            collate_fn=collate_with_mask,
            num_workers=0,
            generator=sampler_gen,
        )
    else:
        loader = DataLoader(
            train_data,
            batch_size=config.batch_size,
            sampler=sampler,
            collate_fn=collate,
            num_workers=0,
            generator=sampler_gen,
            drop_last=False,
        )

    weights = _class_weights(config, np.asarray(train_data.labels), n_classes)
    optimizer = _make_optimizer(config, model)
    scheduler = _make_scheduler(config, optimizer)
    maximize = config.monitor != "val_loss"

    state: _LoopState = {
        "epoch": 0,
        "best_metric": -math.inf if maximize else math.inf,
        "best_epoch": 0,
        "bad_epochs": 0,
        "stopped_early": False,
        "finished": False,
        "history": [],
    }
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    ema = WeightAverage(model, config.ema_decay) if config.ema_decay > 0 else None
    if resume:
        best_state = _resume(ckpt_path, config, model, ema, optimizer, scheduler, state, rng, sampler_gen, ctx=ctx)
    evaluated = ema.model if ema is not None else model  # what is validated, kept as best and returned
    forward: torch.nn.Module = _TrainForward(model, spec_augment, rng)
    if ctx.enabled:  # after a resume: DDP starts every process from rank 0's (= the loaded) weights
        from torch.nn.parallel import DistributedDataParallel

        # With spec_augment, parameters before the hook (if any) get no gradient; the graph is
        # the same every step, which static_graph lets DDP learn once. Buffers are not broadcast
        # before every forward (one collective less per step): rank 0's BatchNorm statistics only
        # ever see rank 0's slices either way, and they are copied to every rank after each epoch.
        forward = DistributedDataParallel(forward, static_graph=spec_augment is not None, broadcast_buffers=False)

    callbacks = list(callbacks) if ctx.is_writer else []
    if config.progress and ctx.is_writer:
        callbacks.append(TqdmProgress())
    for cb in callbacks:
        cb.on_train_start(start_epoch=state["epoch"], epochs=config.epochs)

    while not state["finished"]:
        epoch = state["epoch"]
        started = time.perf_counter()
        if hasattr(train_data, "set_epoch"):
            train_data.set_epoch(epoch)
        for cb in callbacks:
            cb.on_epoch_start(epoch, n_batches=len(loader))
        train_loss, train_acc = _train_epoch(
            model, forward, loader, optimizer, config, weights, rng, wave_augment, callbacks, epoch, ema, ctx
        )
        if ctx.enabled:  # BatchNorm statistics: rank 0's on every rank, for validation and the checkpoint
            broadcast_buffers(model)
            if ema is not None:
                broadcast_buffers(ema.model)
        val_logits = _validation_logits(evaluated, val_data, config, ctx, n_classes)
        val_labels = np.asarray(val_data.labels, dtype=np.int64)
        val_loss = float(F.cross_entropy(torch.from_numpy(val_logits), torch.from_numpy(val_labels)).item())
        val_uar, val_acc = uar_accuracy(val_labels, val_logits.argmax(axis=1))
        metric = {"val_uar": val_uar, "val_accuracy": val_acc, "val_loss": val_loss}[config.monitor]
        lr = float(optimizer.param_groups[0]["lr"])
        improved = (metric > state["best_metric"]) if maximize else (metric < state["best_metric"])
        if improved:
            state.update({"best_metric": metric, "best_epoch": epoch + 1, "bad_epochs": 0})
            best_state = {k: v.detach().clone() for k, v in evaluated.state_dict().items()}
        else:
            state["bad_epochs"] += 1
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(metric)
        elif scheduler is not None:
            scheduler.step()
        record = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "val_uar": val_uar,
            "lr": lr,
            "best": bool(improved),
            "time_s": round(time.perf_counter() - started, 3),
        }
        state["history"].append(record)
        state["epoch"] = epoch + 1
        patience = config.early_stop_patience
        if patience is not None and state["bad_epochs"] >= patience:
            state["stopped_early"] = True
        state["finished"] = state["stopped_early"] or state["epoch"] >= config.epochs
        rank_states = gather_objects(capture_process_rng_state(rng)) if ctx.enabled else None
        if not ctx.is_writer:
            continue
        for cb in callbacks:
            cb.on_epoch_end(epoch, record)
        write_logs(state["history"], out_dir)
        _save(
            ckpt_path,
            config,
            model,
            ema,
            best_state,
            optimizer,
            scheduler,
            state,
            rng,
            sampler_gen,
            rank_states=rank_states,
        )
        for cb in callbacks:
            cb.on_checkpoint(epoch, ckpt_path)

    if ctx.is_writer:
        write_logs(state["history"], out_dir)
        if plot and state["history"]:
            plot_curves(state["history"], out_dir / "curves.png")
    model.load_state_dict(best_state)
    result = TrainResult(
        history=state["history"],
        best_epoch=state["best_epoch"],
        best_metric=state["best_metric"],
        monitor=config.monitor,
        stopped_early=state["stopped_early"],
        best_state=best_state,
        out_dir=out_dir,
    )
    for cb in callbacks:
        cb.on_train_end(result)
    return result


class _TrainForward(torch.nn.Module):
    """The training forward pass: ``model(x)``, or features -> ``spec_augment`` -> classify.

    One module so that DistributedDataParallel wraps the whole pass.
    """

    def __init__(self, model: torch.nn.Module, spec_augment: Augment | None, rng: np.random.Generator) -> None:
        super().__init__()
        self.model = model
        self.spec_augment = spec_augment
        self.rng = rng

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec_augment is None:
            return self.model(x)
        split = cast(_SplitModel, self.model)  # train_model checked it has features and classify
        with torch.no_grad():
            feats = split.features(x)
        feats = _as_tensor(self.spec_augment(feats.numpy(), self.rng), "spec_augment", feats.shape)
        return split.classify(feats)


def _train_epoch(
    model,
    forward,
    loader,
    optimizer,
    config,
    weights,
    rng,
    wave_augment,
    callbacks,
    epoch,
    ema: WeightAverage | None = None,
    ctx: DistContext | None = None,
) -> tuple[float, float]:
    distributed = ctx is not None and ctx.enabled
    model.train()
    total_loss = 0.0
    correct = 0
    seen = 0
    for batch_index, batch in enumerate(loader):
        x, y = batch[0], batch[1]
        if wave_augment is not None:
            x = _as_tensor(wave_augment(x.numpy(), rng), "wave_augment", x.shape)
        perm, lam = None, 1.0
        if config.mixup_alpha > 0:
            lam = float(rng.beta(config.mixup_alpha, config.mixup_alpha))
            perm = torch.from_numpy(rng.permutation(len(y)))
            x = lam * x + (1.0 - lam) * x[perm]
        logits = forward(x)
        if distributed:
            assert ctx is not None  # distributed implies a context
            loss, share, n_real = global_batch_loss(
                logits,
                y,
                batch[2],
                ctx=ctx,
                weights=weights,
                label_smoothing=config.label_smoothing,
                perm=perm,
                lam=lam,
            )
        else:
            loss = F.cross_entropy(logits, y, weight=weights, label_smoothing=config.label_smoothing)
            if perm is not None:
                loss = lam * loss + (1.0 - lam) * F.cross_entropy(
                    logits, y[perm], weight=weights, label_smoothing=config.label_smoothing
                )
        if not torch.isfinite(loss):
            raise ModelError(f"training diverged at epoch {epoch + 1} (loss {loss.item()}): lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if ema is not None:
            ema.update(model)
        value = float(loss.item())
        if distributed:  # sums of this process's share; added up over processes below
            real = batch[2]
            total_loss += share * n_real
            correct += int(((logits.argmax(dim=1) == y) & real).sum())
            seen += int(real.sum())
        else:
            total_loss += value * len(y)
            correct += int((logits.argmax(dim=1) == y).sum())
            seen += len(y)
        for cb in callbacks:
            cb.on_batch_end(epoch, batch_index, loss=value)
    if distributed:
        total_loss, correct, seen = all_reduce_sum([total_loss, correct, seen]).tolist()
    return total_loss / max(seen, 1), correct / max(seen, 1)


def _validation_logits(model, val_data, config, ctx: DistContext, n_classes: int) -> np.ndarray:
    """Validation logits ``(n_val, n_classes)``: one pass, or a slice per process gathered on all."""
    if not ctx.enabled:
        return predict_logits(model, val_data, batch_size=config.eval_batch_size)
    rows = shard_range(len(val_data), ctx)
    local = np.zeros((0, n_classes), dtype=np.float32)
    if len(rows):
        local = predict_logits(model, Subset(val_data, list(rows)), batch_size=config.eval_batch_size)
    return gather_rows(torch.from_numpy(local), n_total=len(val_data), n_cols=n_classes, ctx=ctx).numpy()


def _as_tensor(array, hook: str, shape) -> torch.Tensor:
    if isinstance(array, torch.Tensor):
        array = array.detach().numpy()
    array = np.asarray(array)
    if array.shape != tuple(shape):
        raise ConfigError(f"{hook} returned shape {array.shape}, expected {tuple(shape)}: keep the batch shape")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _infer_n_classes(model: torch.nn.Module, data: ArrayDataset) -> int:
    x, _ = collate([data[0]])
    with torch.no_grad():
        was = model.training
        model.eval()
        out = model(x)
        model.train(was)
    if out.ndim != 2:
        raise ModelError(f"the model returned shape {tuple(out.shape)}: expected (batch, n_classes) logits")
    return int(out.shape[1])


def _class_weights(config: TrainConfig, labels: np.ndarray, n_classes: int) -> torch.Tensor | None:
    if config.class_weights == "none":
        return None
    if config.class_weights == "balanced":
        return torch.from_numpy(balanced_class_weights(labels, n_classes))
    weights = list(config.class_weights)
    if len(weights) != n_classes:
        raise ConfigError(f"class_weights has {len(weights)} values for {n_classes} classes")
    return torch.tensor(weights, dtype=torch.float32)


def _make_optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ModelError(f"{type(model).__name__} has no trainable parameters")
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def _make_scheduler(config: TrainConfig, optimizer):
    if config.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min" if config.monitor == "val_loss" else "max",
            factor=config.plateau_factor,
            patience=config.plateau_patience,
            min_lr=config.min_lr,
        )
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_factor(config))
    return None


def cosine_factor(config: TrainConfig) -> Callable[[int], float]:
    """LR multiplier per epoch: linear warm-up, then cosine decay to ``min_lr``."""
    floor = min(config.min_lr / config.lr, 1.0)
    warm = config.warmup_epochs
    span = max(config.epochs - warm, 1)

    def factor(epoch: int) -> float:
        if epoch < warm:
            return (epoch + 1) / (warm + 1)
        progress = min((epoch - warm) / span, 1.0)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


# --------------------------------------------------------------------------- checkpoints
def _start_mode(ckpt_path: Path, resume: bool) -> tuple[bool, str | None]:
    """``(resume, problem)``: whether to continue ``ckpt_path``, or why the run cannot start."""
    if resume and not ckpt_path.exists():
        return False, None  # killed before its first checkpoint: nothing to continue, start over
    if not resume and ckpt_path.exists():
        return False, (
            f"{str(ckpt_path.parent)!r} already holds a run: pass resume=True (--resume) to "
            "continue it, or choose another output folder"
        )
    return resume, None


def _save(
    path,
    config,
    model,
    ema,
    best_state,
    optimizer,
    scheduler,
    state,
    rng,
    sampler_gen,
    *,
    rank_states: list | None = None,
) -> None:
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = v
    for k, v in best_state.items():
        tensors[f"best.{k}"] = v
    if ema is not None:
        for k, v in ema.model.state_dict().items():
            tensors[f"ema.{k}"] = v
    meta = {
        "state": state,
        "ema_steps": None if ema is None else ema.steps,
        "config": config.to_dict(),
        "optimizer": tree_to_json(optimizer.state_dict(), tensors, "optimizer"),
        "scheduler": None if scheduler is None else tree_to_json(scheduler.state_dict(), tensors, "scheduler"),
        "rng": capture_rng_state(numpy_generator=rng, sampler_generator=sampler_gen, tensors=tensors),
    }
    if rank_states is not None:  # several processes: the others' own random states
        meta["world_size"] = len(rank_states)
        meta["rank_rng"] = []
        for rank, own in enumerate(rank_states[1:], start=1):
            tensors[f"rng.rank{rank}.torch"] = own["torch"]
            meta["rank_rng"].append({"python": own["python"], "numpy": own["numpy"]})
    save_checkpoint(path, tensors, meta)


def _resume(
    path, config, model, ema, optimizer, scheduler, state, rng, sampler_gen, *, ctx: DistContext | None = None
) -> dict:
    tensors, meta = load_checkpoint(path)
    world = 1 if ctx is None else ctx.world_size
    saved_world = int(meta.get("world_size", 1))
    if saved_world != world:
        raise ConfigError(
            f"cannot resume {str(path)!r}: it was written by a run on {saved_world} process(es), this one has "
            f"{world}; resume with the same number (emovox train --nproc {saved_world}, or "
            f"torchrun --nproc_per_node={saved_world}), or start a new run in another folder"
        )
    defaults = TrainConfig().to_dict()  # options added since the checkpoint was written take their defaults
    saved = {k: v for k, v in {**defaults, **meta["config"]}.items() if k not in RUNTIME_ONLY}
    current = {k: v for k, v in config.to_dict().items() if k not in RUNTIME_ONLY}
    if saved != current:
        diffs = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        raise ConfigError(
            f"cannot resume {str(path)!r}: training options {diffs} differ from the interrupted run; "
            "use the same options or start a new run in another folder"
        )
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    best_state = {k[len("best.") :]: v for k, v in tensors.items() if k.startswith("best.")}
    try:
        model.load_state_dict(model_state)
        if ema is not None:
            ema.model.load_state_dict({k[len("ema.") :]: v for k, v in tensors.items() if k.startswith("ema.")})
            ema.steps = int(meta["ema_steps"])
    except RuntimeError as error:
        raise ModelError(f"checkpoint {str(path)!r} does not fit this model: {str(error).splitlines()[0]}") from None
    optimizer.load_state_dict(tree_from_json(meta["optimizer"], tensors))
    if scheduler is not None and meta["scheduler"] is not None:
        scheduler.load_state_dict(tree_from_json(meta["scheduler"], tensors))
    restore_rng_state(meta["rng"], tensors, numpy_generator=rng, sampler_generator=sampler_gen)
    if ctx is not None and ctx.rank > 0:  # this process's own states (the sampler's is shared)
        restore_process_rng_state(
            meta["rank_rng"][ctx.rank - 1], tensors[f"rng.rank{ctx.rank}.torch"], numpy_generator=rng
        )
    state.update(meta["state"])
    return best_state
