"""The training loop's checkpoint: what it writes after every epoch and how a run resumes from it.

One ``checkpoint.safetensors`` per run folder holds the weights, the
averaged (EMA) and best weights, the optimiser and scheduler states, the
loop's counters and history, every random state (per process under
torchrun) and the training options; :func:`resume_state` refuses a
checkpoint written with other options or another number of processes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from emovox.errors import ConfigError, ModelError
from emovox.training.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_process_rng_state,
    restore_rng_state,
    save_checkpoint,
    tree_from_json,
    tree_to_json,
)
from emovox.training.config import TrainConfig
from emovox.training.distributed import DistContext

#: Options that may differ between a run and its resumption (they do not change the result).
RUNTIME_ONLY = ("progress",)


def start_mode(ckpt_path: Path, resume: bool) -> tuple[bool, str | None]:
    """``(resume, problem)``: whether to continue ``ckpt_path``, or why the run cannot start."""
    if resume and not ckpt_path.exists():
        return False, None  # killed before its first checkpoint: nothing to continue, start over
    if not resume and ckpt_path.exists():
        return False, (
            f"{str(ckpt_path.parent)!r} already holds a run: pass resume=True (--resume) to "
            "continue it, or choose another output folder"
        )
    return resume, None


def save_state(
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


def resume_state(
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
