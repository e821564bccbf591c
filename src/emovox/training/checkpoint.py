"""Atomic, pickle-free checkpoints: safetensors for tensors, JSON for the rest.

A checkpoint is ONE ``.safetensors`` file. Its tensors hold the model, the
best model so far, the optimizer's moment buffers and the random states that
are tensors (torch's global generator, the sampler's generator); the
safetensors header's metadata holds one JSON document with everything else
(epoch, best metric, early-stop counter, history, optimizer hyper-parameters,
scheduler state, NumPy and Python random states). One file means one
``os.replace``: a process killed at any instant leaves either the previous
checkpoint or the new one, never a mixture.

Nested state dicts (an optimizer's ``state_dict()``) are stored with
:func:`tree_to_json`: every tensor becomes ``{"__tensor__": key}`` in the
JSON and a named tensor in the file; dicts with non-string keys keep their key
types; tuples stay tuples.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save as st_save

from emovox.errors import ModelError
from emovox.fileio import atomic_write_bytes, atomic_write_text, fsync_dir  # noqa: F401  (re-exported)

#: Key of the JSON document inside the safetensors metadata.
META_KEY = "emovox_checkpoint"
#: Bumped when the layout of a checkpoint changes incompatibly.
CHECKPOINT_VERSION = 1


# --------------------------------------------------------------------------- state trees
def tree_to_json(obj: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """Turn a nested state (dicts, lists, tensors, scalars) into JSON + tensors.

    Parameters
    ----------
    obj : Any
        E.g. ``optimizer.state_dict()``.
    tensors : dict[str, torch.Tensor]
        Receives every tensor found, under a key starting with ``prefix``.
    prefix : str
        Namespace of the tensor keys, e.g. ``"optimizer"``.

    Returns
    -------
    JSON-able object; :func:`tree_from_json` inverts it.
    """
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}"
        if key in tensors:
            raise ModelError(f"duplicate tensor key {key!r} while flattening a checkpoint")
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, Mapping):
        items = list(obj.items())
        if all(isinstance(k, str) for k, _ in items) and "__tensor__" not in obj:
            return {k: tree_to_json(v, tensors, f"{prefix}.{k}") for k, v in items}
        return {"__items__": [[_key_to_json(k), tree_to_json(v, tensors, f"{prefix}.{k}")] for k, v in items]}
    if isinstance(obj, tuple):
        return {"__tuple__": [tree_to_json(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [tree_to_json(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ModelError(
        f"cannot store a {type(obj).__name__} in a checkpoint: only tensors, numbers, "
        "strings, lists, tuples and dicts are allowed (no pickle)"
    )


def _key_to_json(key: Any) -> Any:
    if isinstance(key, bool) or not isinstance(key, (int, str)):
        raise ModelError(f"cannot store dict key {key!r} in a checkpoint: use str or int keys")
    return key


def tree_from_json(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Invert :func:`tree_to_json`."""
    if isinstance(obj, dict):
        if "__tensor__" in obj and len(obj) == 1:
            try:
                return tensors[obj["__tensor__"]]
            except KeyError:
                raise ModelError(f"checkpoint is corrupt: tensor {obj['__tensor__']!r} is missing") from None
        if "__items__" in obj and len(obj) == 1:
            return {k: tree_from_json(v, tensors) for k, v in obj["__items__"]}
        if "__tuple__" in obj and len(obj) == 1:
            return tuple(tree_from_json(v, tensors) for v in obj["__tuple__"])
        return {k: tree_from_json(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [tree_from_json(v, tensors) for v in obj]
    return obj


# --------------------------------------------------------------------------- random states
def capture_rng_state(
    *,
    numpy_generator: np.random.Generator | None,
    sampler_generator: torch.Generator | None,
    tensors: dict[str, torch.Tensor],
) -> dict:
    """Snapshot every random state that influences training.

    torch's global generator (dropout, initialisation) and the sampler's
    ``torch.Generator`` go into ``tensors``; the NumPy generator (augmentation,
    mixup) and Python's ``random`` into the returned JSON dict.
    """
    tensors["rng.torch"] = torch.get_rng_state()
    state: dict[str, Any] = {"python": _python_state_to_json(random.getstate())}
    if sampler_generator is not None:
        tensors["rng.sampler"] = sampler_generator.get_state()
    if numpy_generator is not None:
        state["numpy"] = numpy_generator.bit_generator.state
    return state


def restore_rng_state(
    state: Mapping,
    tensors: Mapping[str, torch.Tensor],
    *,
    numpy_generator: np.random.Generator | None,
    sampler_generator: torch.Generator | None,
) -> None:
    """Invert :func:`capture_rng_state` in place."""
    torch.set_rng_state(tensors["rng.torch"])
    random.setstate(_python_state_from_json(state["python"]))
    if sampler_generator is not None:
        sampler_generator.set_state(tensors["rng.sampler"])
    if numpy_generator is not None:
        numpy_generator.bit_generator.state = state["numpy"]


def capture_process_rng_state(numpy_generator: np.random.Generator) -> dict:
    """This process's own random states: torch's global generator, Python's ``random``, NumPy.

    Under torchrun these differ between processes (the sampler's generator
    does not); the writer gathers every process's copy into its checkpoint.
    Restore with :func:`restore_process_rng_state`.
    """
    return {
        "torch": torch.get_rng_state(),
        "python": _python_state_to_json(random.getstate()),
        "numpy": numpy_generator.bit_generator.state,
    }


def restore_process_rng_state(
    state: Mapping, torch_state: torch.Tensor, *, numpy_generator: np.random.Generator
) -> None:
    """Invert :func:`capture_process_rng_state` (its ``"torch"`` entry given as ``torch_state``)."""
    torch.set_rng_state(torch_state)
    random.setstate(_python_state_from_json(state["python"]))
    numpy_generator.bit_generator.state = state["numpy"]


def _python_state_to_json(state: tuple) -> list:
    version, internal, gauss_next = state
    return [version, list(internal), gauss_next]


def _python_state_from_json(state: list) -> tuple:
    version, internal, gauss_next = state
    return (version, tuple(internal), gauss_next)


# --------------------------------------------------------------------------- file I/O
def save_checkpoint(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], meta: Mapping) -> Path:
    """Write one checkpoint file atomically.

    Parameters
    ----------
    path : path-like
        Destination, conventionally ``<run>/checkpoint.safetensors``.
    tensors : Mapping[str, torch.Tensor]
        Named tensors (any dtype safetensors supports).
    meta : Mapping
        JSON-able state; stored in the header together with
        :data:`CHECKPOINT_VERSION`.
    """
    document = json.dumps({"checkpoint_version": CHECKPOINT_VERSION, **meta}, sort_keys=True)
    payload = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    data = st_save(payload, metadata={META_KEY: document})
    return atomic_write_bytes(path, data)


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    tensors : dict[str, torch.Tensor]
    meta : dict

    Raises
    ------
    ModelError
        If the file is missing, not a checkpoint, or from a newer layout.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no checkpoint at {str(path)!r}: train without --resume to start a new run")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:  # safetensors raises several private types
        raise ModelError(f"checkpoint {str(path)!r} is unreadable ({error}); delete it to restart the run") from None
    if META_KEY not in header:
        raise ModelError(f"{str(path)!r} is a safetensors file but not an emovox checkpoint")
    try:
        meta = json.loads(header[META_KEY])
    except json.JSONDecodeError as error:
        raise ModelError(f"checkpoint {str(path)!r} has corrupt metadata ({error})") from None
    version = meta.get("checkpoint_version")
    if version != CHECKPOINT_VERSION:
        raise ModelError(
            f"checkpoint {str(path)!r} has layout version {version!r}, this emovox reads "
            f"{CHECKPOINT_VERSION}: resume it with the emovox that wrote it, or start a new run"
        )
    return tensors, meta
