"""Training on several processes: ``torchrun`` + DistributedDataParallel (gloo, CPU).

The engine (:func:`emovox.training.engine.train_model`) calls
:func:`init_distributed` first. Outside ``torchrun`` (no ``WORLD_SIZE`` in the
environment, or ``WORLD_SIZE=1``) it returns a single-process
:class:`DistContext` and nothing changes. Under ``torchrun
--nproc_per_node=N`` it joins a gloo process group from torchrun's variables
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``) and the engine then follows these rules:

- **Global batch unchanged.** Every optimiser step consumes one global batch
  of ``TrainConfig.batch_size`` examples, split into ``batch_size / N`` per
  process, so the learning rate and the schedule mean the same thing on 1 or
  N processes (``batch_size`` must be a multiple of ``N``).
- **Sharded, seeded sampling** (:class:`ShardedBatchSampler`): every process
  draws the same global order from the same seeded generator (the order a
  single process would draw, balanced sampling included), pads it with its
  first items to a multiple of ``N`` and takes its slice of each global batch.
  Each example is seen once per epoch across the processes; the padded
  repeats carry zero loss weight.
- **Exact loss.** The loss is the class-weighted mean over the global batch
  (:func:`all_reduce_sum` of the weight sums), so the averaged DDP gradient
  equals the single-process gradient of the same batch.
- **Validation sharded, decided identically.** Each process predicts a slice
  of the validation set; the logits are gathered (:func:`gather_rows`) so
  every process computes the same metrics and takes the same best-epoch,
  scheduler and early-stopping decisions.
- **One writer** (:attr:`DistContext.is_writer`, rank 0) writes checkpoints,
  logs, curves, the artifact and the summary; the others never write.
- **Threads**: ``TrainConfig.threads`` is the budget of one machine, shared by
  its processes (:func:`threads_per_process`): 2 threads on 2 processes is 1
  thread each.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Sampler

from emovox.errors import ConfigError

BACKEND = "gloo"


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly one-process) training run.

    Attributes
    ----------
    rank : int
        0 .. world_size - 1; rank 0 is the writer.
    world_size : int
        Number of training processes (1 outside torchrun).
    local_rank, local_world_size : int
        Rank and number of processes on this machine.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        """True when training runs on more than one process."""
        return self.world_size > 1

    @property
    def is_writer(self) -> bool:
        """The one process that writes files (rank 0)."""
        return self.rank == 0


SINGLE = DistContext()


def context_from_env(environ: dict | None = None) -> DistContext:
    """The :class:`DistContext` that torchrun's environment variables describe.

    No ``WORLD_SIZE`` means a single process. Raises :class:`ConfigError` on
    values torchrun would never set (a rank outside the world, a missing
    rendezvous address).
    """
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return SINGLE
    try:
        world = int(env["WORLD_SIZE"])
        rank = int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", str(rank)))
        local_world = int(env.get("LOCAL_WORLD_SIZE", str(world)))
    except ValueError:
        raise ConfigError(
            "RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE must be integers: start distributed training with torchrun"
        ) from None
    if world < 1 or not 0 <= rank < world or not 0 <= local_rank < local_world:
        raise ConfigError(
            f"RANK={rank} WORLD_SIZE={world} LOCAL_RANK={local_rank} LOCAL_WORLD_SIZE={local_world} "
            "are inconsistent: start distributed training with torchrun"
        )
    if world > 1:
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not env.get(k)]
        if missing:
            raise ConfigError(
                f"WORLD_SIZE={world} but {', '.join(missing)} unset: start distributed training "
                "with torchrun (e.g. torchrun --standalone --nproc_per_node=2 ...)"
            )
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, local_world_size=local_world)


def init_distributed() -> DistContext:
    """Join torchrun's gloo process group (once per process) and return this process's context.

    A no-op returning a single-process context outside torchrun. Under
    torchrun, each worker also asks Linux to kill it when its torchrun agent
    dies (``PR_SET_PDEATHSIG``), so a ``kill -9`` of torchrun leaves no
    orphan training (and writing) on.
    """
    import torch.distributed as dist

    ctx = context_from_env()
    if not ctx.enabled:
        return ctx
    if not dist.is_initialized():
        _die_with_parent()
        dist.init_process_group(backend=BACKEND)
        atexit.register(_shutdown)
    if dist.get_rank() != ctx.rank or dist.get_world_size() != ctx.world_size:
        raise ConfigError(
            f"the process group (rank {dist.get_rank()} of {dist.get_world_size()}) does not match "
            f"RANK={ctx.rank} WORLD_SIZE={ctx.world_size}"
        )
    return ctx


def current_context() -> DistContext:
    """The context of an initialised process group, else a single process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return context_from_env()
    return SINGLE


#: At exit, how long a process waits for the others (rank 0 may still be writing the artifact).
EXIT_BARRIER_S = 600.0


def _shutdown() -> None:
    """Leave the process group together: wait for every rank, then destroy it.

    Without the wait, a rank that left early (only rank 0 evaluates and writes
    at the end) tore down its gloo pairs while the other was still connected,
    and one process now and then aborted in C++ ("terminate called without an
    active exception", exit -6). A rank that died makes the wait fail at once
    or time out; either way this process still exits.
    """
    import datetime

    import torch.distributed as dist

    if not dist.is_initialized():
        return
    try:
        dist.monitored_barrier(timeout=datetime.timedelta(seconds=EXIT_BARRIER_S))
    except Exception:  # noqa: BLE001 - a peer is gone: nothing to wait for
        pass
    dist.destroy_process_group()


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent (the torchrun agent) dies."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no prctl: torchrun's own teardown still applies
        return
    if os.getppid() == 1:  # the agent died before prctl took effect
        os._exit(1)


def threads_per_process(threads: int, ctx: DistContext) -> int:
    """Torch threads for this process: ``threads`` shared by the processes of one machine (at least 1)."""
    if not ctx.enabled:
        return int(threads)
    return max(1, int(threads) // ctx.local_world_size)


def per_rank_batch_size(batch_size: int, ctx: DistContext) -> int:
    """``batch_size / world_size``; :class:`ConfigError` unless it divides evenly."""
    if batch_size % ctx.world_size:
        raise ConfigError(
            f"batch_size={batch_size} is not a multiple of the {ctx.world_size} training processes: "
            f"choose a multiple (e.g. {ctx.world_size * max(1, round(batch_size / ctx.world_size))}) so the "
            "global batch, and with it the learning-rate rule, stays the same"
        )
    return batch_size // ctx.world_size


def rank_seed(seed: int, ctx: DistContext) -> int:
    """A per-process seed derived from ``seed`` (``seed`` itself on one process).

    Used for dropout, augmentation and mixup draws, which should differ
    between processes; the sampler keeps ``seed`` on every process.
    """
    if not ctx.enabled:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), ctx.rank]).generate_state(1, dtype=np.uint32)[0])


# --------------------------------------------------------------------------- sampling
def pad_key(index: int) -> int:
    """Key of a padded repeat of ``index`` in a shard (``~index``, always negative)."""
    return ~int(index)


def split_key(key: int) -> tuple[int, bool]:
    """``(index, is_real)`` of a shard key (see :func:`pad_key`)."""
    key = int(key)
    return (key, True) if key >= 0 else (~key, False)


class SizedIndexSampler(Protocol):
    """A sampler of dataset indices that knows its length (``RandomSampler``, ``BalancedSampler``)."""

    def __iter__(self) -> Iterator[int]: ...

    def __len__(self) -> int: ...


class ShardedBatchSampler(Sampler[list[int]]):
    """This process's slice of every global batch of an epoch.

    Parameters
    ----------
    sampler : Sampler[int]
        The single-process sampler (``RandomSampler`` or
        :class:`~emovox.training.data.BalancedSampler`) driven by a generator
        seeded identically on every process, so every process draws the same
        global order.
    batch_size : int
        Global batch size (a multiple of ``world_size``).
    rank, world_size : int

    Notes
    -----
    The epoch's order is padded with its own first items to a multiple of
    ``world_size``, cut into global batches of ``batch_size`` (the last one
    shorter, still a multiple of ``world_size``) and each global batch into
    ``world_size`` contiguous equal slices. Padded repeats are yielded as
    :func:`pad_key` keys (negative) so the engine gives them zero weight.
    Every process yields the same number of batches, each non-empty.
    """

    def __init__(self, sampler: SizedIndexSampler, *, batch_size: int, rank: int, world_size: int) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"rank={rank} must be in 0..world_size-1 (world_size={world_size})")
        if batch_size < world_size or batch_size % world_size:
            raise ConfigError(f"batch_size={batch_size} must be a positive multiple of world_size={world_size}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.rank = int(rank)
        self.world_size = int(world_size)

    def _padded_length(self) -> int:
        n = len(self.sampler)
        return -(-n // self.world_size) * self.world_size

    def __len__(self) -> int:
        return -(-self._padded_length() // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = [int(i) for i in self.sampler]
        if not order:
            return
        missing = -len(order) % self.world_size
        keys = order + [pad_key(order[j % len(order)]) for j in range(missing)]
        for start in range(0, len(keys), self.batch_size):
            chunk = keys[start : start + self.batch_size]
            share = len(chunk) // self.world_size
            yield chunk[self.rank * share : (self.rank + 1) * share]


class PaddedView(torch.utils.data.Dataset):
    """Wraps a dataset so shard keys (see :func:`pad_key`) give ``(x, label, is_real)``."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: int) -> tuple[np.ndarray, int, bool]:
        index, real = split_key(key)
        x, y = self.data[index]
        return x, y, real


def collate_with_mask(items: Sequence[tuple[np.ndarray, int, bool]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x [batch, ...], y [batch], real [batch] bool)``."""
    xs = np.stack([x for x, _, _ in items]).astype(np.float32, copy=False)
    ys = np.asarray([y for _, y, _ in items], dtype=np.int64)
    real = np.asarray([r for _, _, r in items], dtype=bool)
    return torch.from_numpy(xs), torch.from_numpy(ys), torch.from_numpy(real)


def global_batch_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    real: torch.Tensor,
    *,
    ctx: DistContext,
    weights: torch.Tensor | None,
    label_smoothing: float,
    perm: torch.Tensor | None = None,
    lam: float = 1.0,
) -> tuple[torch.Tensor, float, float]:
    """This process's part of the global batch's class-weighted (mixed-up) mean cross-entropy.

    Parameters
    ----------
    logits : torch.Tensor [shape=(b, n_classes)]
        This process's slice of the global batch.
    y : torch.Tensor [shape=(b,)] int64
    real : torch.Tensor [shape=(b,)] bool
        False for padded repeats (zero weight).
    weights : torch.Tensor [shape=(n_classes,)] or None
        Class weights, as in ``F.cross_entropy``.
    perm, lam : mixup pairing within the slice and its weight (``perm=None``: no mixup).

    Returns
    -------
    loss : torch.Tensor
        Scaled by the number of processes, so that DDP's gradient average
        equals the gradient of the global batch mean (``F.cross_entropy``'s
        weighted mean: per-example losses over the sum of the targets' weights).
    share : float
        This process's unscaled part of that mean (the parts add up to it).
    n_real : float
        Examples in the global batch, padded repeats excluded.
    """
    mask = real.to(logits.dtype)

    def target_weight(target: torch.Tensor) -> torch.Tensor:
        return mask if weights is None else weights[target] * mask

    def numerator(target: torch.Tensor) -> torch.Tensor:
        per_example = F.cross_entropy(logits, target, weight=weights, label_smoothing=label_smoothing, reduction="none")
        return (per_example * mask).sum()

    y_mix = y[perm] if perm is not None else y
    local = [float(target_weight(y).sum()), float(target_weight(y_mix).sum()), float(mask.sum())]
    denom, denom_mix, n_real = all_reduce_sum(local).tolist()  # one small all-reduce per step
    part = numerator(y) / denom
    if perm is not None:
        part = lam * part + (1.0 - lam) * numerator(y_mix) / denom_mix
    return part * ctx.world_size, float(part.detach()), n_real


def shard_range(n: int, ctx: DistContext) -> range:
    """Contiguous slice of ``range(n)`` for this process (sizes differ by at most ``ceil``)."""
    per = -(-n // ctx.world_size)
    return range(min(n, ctx.rank * per), min(n, (ctx.rank + 1) * per))


# --------------------------------------------------------------------------- collectives
def all_reduce_sum(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Element-wise sum over all processes (float64); the input itself on one process."""
    import torch.distributed as dist

    tensor = torch.as_tensor(np.asarray(values, dtype=np.float64))
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.numpy()


def gather_rows(local: torch.Tensor, *, n_total: int, n_cols: int, ctx: DistContext) -> torch.Tensor:
    """Concatenate every process's :func:`shard_range` rows, in rank order.

    Parameters
    ----------
    local : torch.Tensor [shape=(n_local, n_cols)]
        This process's rows (``n_local`` may be 0).
    n_total : int
        Rows over all processes.

    Returns
    -------
    torch.Tensor [shape=(n_total, n_cols)] float32, the same on every process.
    """
    import torch.distributed as dist

    if not ctx.enabled:
        return local
    per = -(-n_total // ctx.world_size)
    padded = torch.zeros((per, n_cols), dtype=torch.float32)
    if len(local):
        padded[: len(local)] = local.float()
    parts = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(parts, padded)
    rows = []
    for rank, part in enumerate(parts):
        rows.append(part[: len(shard_range(n_total, DistContext(rank=rank, world_size=ctx.world_size)))])
    return torch.cat(rows)


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Copy rank 0's buffers (e.g. BatchNorm running statistics) into every process's ``module``."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every process (identity on one process)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any) -> list:
    """Every process's ``obj``, in rank order (``[obj]`` on one process). In-memory only."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
