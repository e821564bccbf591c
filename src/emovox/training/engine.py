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
  as fixed DSP: no gradient flows through this hook;
- ``batch_augment(inputs, rng) -> x``: builds the batch ``(batch, ...)`` from
  the examples' own inputs, which may differ in length (a
  :class:`~emovox.training.data.RaggedDataset` of cached log-mel, cropped and
  augmented by :class:`emovox.augment.logmel.LogMelAugment`).

The per-step options that the flagship and the Whisper heads need are
:class:`~emovox.training.config.TrainConfig` fields: ``scheduler="onecycle"``
or ``"cosine_steps"`` (:mod:`emovox.training.schedules`), ``shuffle="numpy"``
and ``last_batch``; without validation data (``val_data=None``) the loop
trains a fixed number of epochs and keeps the last (averaged) weights.

A trainer fitted in closed form (a logistic-regression head) runs through
:func:`~emovox.training.closed_form.fit_closed_form` (re-exported here): one
step that the same callbacks see as one epoch. The checkpoint written after
every epoch and the resumption from it are :mod:`emovox.training.engine_state`.

The loop's parts live beside it, one concept each: :mod:`~emovox.training.batches`
(sampler, batch order, collation), :mod:`~emovox.training.epoch` (one epoch:
forward pass, augmentation hooks, loss, steps), :mod:`~emovox.training.optim`
(class weights, optimiser), :mod:`~emovox.training.validation` (logits, UAR and
accuracy of a model on a dataset) and :mod:`~emovox.training.runtime` (seeds,
threads). Their public names are importable from here too.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
import torch.nn.functional as F

from emovox.errors import ConfigError, ModelError
from emovox.training.batches import BatchAugment, make_train_loader
from emovox.training.callbacks import Callback, TqdmProgress
from emovox.training.checkpoint import capture_process_rng_state
from emovox.training.closed_form import fit_closed_form
from emovox.training.config import TrainConfig
from emovox.training.curves import plot_curves, write_logs
from emovox.training.data import ArrayDataset, RaggedDataset, collate
from emovox.training.distributed import (
    DistContext,
    broadcast_buffers,
    broadcast_object,
    gather_objects,
    init_distributed,
    per_rank_batch_size,
    rank_seed,
    threads_per_process,
)
from emovox.training.ema import WeightAverage
from emovox.training.engine_state import RUNTIME_ONLY, resume_state, save_state, start_mode
from emovox.training.epoch import Augment, TrainForward, train_epoch
from emovox.training.optim import class_weights, make_optimizer
from emovox.training.runtime import seed_everything, set_threads
from emovox.training.schedules import PER_STEP, cosine_factor, make_scheduler
from emovox.training.validation import predict_logits, uar_accuracy, validation_logits

__all__ = [
    "TrainResult",
    "cosine_factor",
    "fit_closed_form",
    "predict_logits",
    "seed_everything",
    "set_threads",
    "train_model",
    "uar_accuracy",
    "RUNTIME_ONLY",
]

CHECKPOINT_NAME = "checkpoint.safetensors"


class _LoopState(TypedDict):
    """The loop's counters, checkpointed as the ``state`` entry of the metadata."""

    epoch: int
    best_metric: float
    best_epoch: int
    bad_epochs: int
    stopped_early: bool
    finished: bool
    history: list[dict]


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


def train_model(
    model: torch.nn.Module,
    train_data: ArrayDataset | RaggedDataset,
    val_data: ArrayDataset | None,
    config: TrainConfig,
    *,
    out_dir: str | Path,
    n_classes: int | None = None,
    wave_augment: Augment | None = None,
    spec_augment: Augment | None = None,
    augment: Augment | None = None,
    batch_augment: BatchAugment | None = None,
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
        ``config.seed``. ``val_data=None`` trains ``config.epochs`` epochs
        without validation (no plateau schedule, no early stopping) and keeps
        the last weights (the averaged ones with EMA); its records' ``val_*``
        entries are ``None``.
    config : TrainConfig
    out_dir : path-like
        Receives ``checkpoint.safetensors``, ``log.json``, ``log.csv`` and
        ``curves.png``.
    n_classes : int, optional
        Number of classes (defaults to the model's output size on one batch).
    wave_augment, spec_augment : callable, optional
        Augmentation hooks (see the module docstring). ``augment`` is an alias
        of ``wave_augment``.
    batch_augment : callable, optional
        ``(inputs, rng) -> x``: builds each training batch from the examples'
        inputs (a list of arrays, lengths may differ); one process only.
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
    _check_options(config, val_data, batch_augment, ctx)
    out_dir = Path(out_dir)
    if ctx.is_writer:
        out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / CHECKPOINT_NAME
    # The writer looks at the folder; every process follows its decision.
    resume, problem = broadcast_object(start_mode(ckpt_path, resume))
    if problem:
        raise ConfigError(problem)
    per_rank_batch_size(config.batch_size, ctx)  # the global batch must split evenly
    set_threads(threads_per_process(config.threads, ctx))
    n_classes = int(n_classes or _infer_n_classes(model, train_data))
    train_labels = np.asarray(train_data.labels)
    top = (
        int(np.max(train_labels)) if val_data is None else max(int(np.max(train_labels)), int(np.max(val_data.labels)))
    )
    if top >= n_classes:
        raise ConfigError(f"labels go beyond the model's {n_classes} classes")

    # Random state: everything derives from config.seed (dropout, augmentation and
    # mixup per process under torchrun; the sampler's order is shared by all processes).
    seed = rank_seed(config.seed, ctx)
    torch.manual_seed(seed)  # (re-)seed so the loop does not depend on model building
    random.seed(seed)
    rng = np.random.default_rng(seed)
    sampler_gen = torch.Generator().manual_seed(config.seed)
    train_data.seed = config.seed

    loader = make_train_loader(train_data, train_labels, config, ctx, rng, sampler_gen, batch_augment)
    if len(loader) == 0:
        raise ConfigError(f"{len(train_labels)} training examples make no batch of {config.batch_size}")
    weights = class_weights(config, train_labels, n_classes)
    optimizer = make_optimizer(config, model)
    scheduler = make_scheduler(config, optimizer, steps_per_epoch=len(loader))
    step_scheduler = scheduler if config.scheduler in PER_STEP else None
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
        best_state = resume_state(ckpt_path, config, model, ema, optimizer, scheduler, state, rng, sampler_gen, ctx=ctx)
    evaluated = ema.model if ema is not None else model  # what is validated, kept as best and returned
    forward: torch.nn.Module = TrainForward(model, spec_augment, rng)
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
        train_loss, train_acc = train_epoch(
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
            ema,
            ctx,
            step_scheduler=step_scheduler,
        )
        if ctx.enabled:  # BatchNorm statistics: rank 0's on every rank, for validation and the checkpoint
            broadcast_buffers(model)
            if ema is not None:
                broadcast_buffers(ema.model)
        lr = float(optimizer.param_groups[0]["lr"])
        val_loss: float | None = None
        val_uar: float | None = None
        val_acc: float | None = None
        if val_data is None:  # no validation: the last weights are the ones kept
            metric = math.nan
            improved = True
        else:
            val_logits = validation_logits(evaluated, val_data, config, ctx, n_classes)
            val_labels = np.asarray(val_data.labels, dtype=np.int64)
            val_loss = float(F.cross_entropy(torch.from_numpy(val_logits), torch.from_numpy(val_labels)).item())
            val_uar, val_acc = uar_accuracy(val_labels, val_logits.argmax(axis=1))
            metric = {"val_uar": val_uar, "val_accuracy": val_acc, "val_loss": val_loss}[config.monitor]
            improved = (metric > state["best_metric"]) if maximize else (metric < state["best_metric"])
        if improved:
            state.update({"best_metric": metric, "best_epoch": epoch + 1, "bad_epochs": 0})
            best_state = {k: v.detach().clone() for k, v in evaluated.state_dict().items()}
        else:
            state["bad_epochs"] += 1
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(metric)
        elif scheduler is not None and step_scheduler is None:
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
        save_state(
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


def _check_options(
    config: TrainConfig, val_data: ArrayDataset | None, batch_augment: BatchAugment | None, ctx: DistContext
) -> None:
    """Refuse option combinations the loop cannot honour, in one line each."""
    if val_data is None and (config.scheduler == "plateau" or config.early_stop_patience is not None):
        raise ConfigError(
            "training without validation data needs scheduler other than 'plateau' and early_stop_patience=None"
        )
    if ctx.enabled and (batch_augment is not None or config.shuffle == "numpy" or config.last_batch != "keep"):
        raise ConfigError("batch_augment, shuffle='numpy' and last_batch run on one process: drop --nproc")


def _infer_n_classes(model: torch.nn.Module, data: ArrayDataset | RaggedDataset) -> int:
    x, _ = collate([data[0]])
    with torch.no_grad():
        was = model.training
        model.eval()
        out = model(x)
        model.train(was)
    if out.ndim != 2:
        raise ModelError(f"the model returned shape {tuple(out.shape)}: expected (batch, n_classes) logits")
    return int(out.shape[1])
