"""Model artifacts: a folder with ``model.safetensors`` and ``config.json``.

``config.json`` describes the model completely, so that loading needs nothing
else and checks everything::

    {
      "format_version": "1.0",          # layout of this file (see FORMAT_VERSION)
      "package_version": "0.1.0",       # emovox that wrote it
      "task": {...},                    # TaskSpec.to_dict(): labels, sample rate, clip, input
      "architecture": {"name": "tiny-cnn", "params": {...}},
      "preprocessing": {...},           # load_audio options, crop, feature, normalisation stats
      "training": {...},                # recipe, TrainConfig, data card (corpora, speakers,
                                        #   counts, licences), protocol, best epoch
      "metrics": {...},                 # validation / test figures
      "calibration": {"temperature": null},   # filled by calibration (issue 4)
      "threshold": null,                # rejection threshold -> "unknown" (issue 4)
      "created_utc": "..."
    }

No pickle anywhere: weights are safetensors, everything else JSON.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, overload

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from emovox._version import __version__
from emovox.errors import ModelError
from emovox.fileio import as_os_error, atomic_folder, check_inside, file_mode
from emovox.models.registry import build_model
from emovox.models.spec import TaskSpec

#: (major, minor) of the artifact layout this emovox writes and reads.
#: Minor: keys added (older readers would miss information, so they refuse);
#: major: incompatible change.
FORMAT_VERSION = (1, 0)
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
REQUIRED_KEYS = ("format_version", "package_version", "task", "architecture")
OPTIONAL_DEFAULTS: dict[str, Any] = {
    "preprocessing": {},
    "training": {},
    "metrics": {},
    "calibration": {"temperature": None},
    "threshold": None,
}


def format_version_string() -> str:
    return f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}"


def make_config(spec: TaskSpec, arch: str, arch_params: Mapping[str, Any] | None = None, **sections: Any) -> dict:
    """Assemble an artifact config; ``sections`` are any of :data:`OPTIONAL_DEFAULTS`."""
    unknown = sorted(set(sections) - set(OPTIONAL_DEFAULTS))
    if unknown:
        raise ModelError(f"unknown artifact config sections {unknown}: expected {sorted(OPTIONAL_DEFAULTS)}")
    config = {"task": spec.to_dict(), "architecture": {"name": arch, "params": dict(arch_params or {})}}
    for key, default in OPTIONAL_DEFAULTS.items():
        config[key] = sections.get(key, json.loads(json.dumps(default)))
    return config


def save_artifact(directory: str | os.PathLike, model: torch.nn.Module, config: Mapping[str, Any]) -> Path:
    """Write ``model`` and ``config`` as an artifact folder, atomically.

    The folder is assembled under a temporary name next to ``directory`` and
    renamed into place, so a reader never sees half an artifact. An existing
    artifact at ``directory`` is replaced.

    Parameters
    ----------
    directory : path-like
        Destination folder.
    model : torch.nn.Module
        Built by :func:`emovox.models.registry.build_model` from the config's
        architecture and task.
    config : Mapping
        At least ``task`` (dict or :class:`TaskSpec`) and ``architecture``
        (``{"name", "params"}``); see :func:`make_config`. ``format_version``,
        ``package_version`` and ``created_utc`` are filled in.

    Returns
    -------
    Path of the artifact folder.
    """
    directory = Path(directory)
    config = _complete(config)
    text = json.dumps(config, indent=2, sort_keys=True, allow_nan=False)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    try:
        with atomic_folder(directory) as tmp:  # weights and config swapped in together
            save_file(
                tensors,
                str(tmp / WEIGHTS_NAME),
                metadata={"format": "pt", "emovox_format_version": config["format_version"]},
            )
            (tmp / CONFIG_NAME).write_text(text + "\n", encoding="utf-8")
            for name in (WEIGHTS_NAME, CONFIG_NAME):
                os.chmod(tmp / name, file_mode())  # safetensors writes 0o600: a service account could not read it
                with open(tmp / name, "rb") as handle:
                    os.fsync(handle.fileno())
    except (OSError, SafetensorError) as error:  # e.g. a full disk: one line, the old artifact stays
        reason = as_os_error(error)
        raise ModelError(
            f"cannot write the model artifact {str(directory)!r}: {reason.strerror or reason}; "
            "free some space or choose another folder"
        ) from None
    return directory


def _complete(config: Mapping[str, Any]) -> dict:
    if not isinstance(config, Mapping):
        raise ModelError(f"artifact config must be a mapping, got {type(config).__name__}")
    config = dict(config)
    task = config.get("task")
    if isinstance(task, TaskSpec):
        config["task"] = task.to_dict()
    elif task is None:
        raise ModelError("artifact config has no 'task': pass the TaskSpec the model was built from")
    else:
        TaskSpec.from_dict(task)  # validate
    arch = config.get("architecture")
    if not isinstance(arch, Mapping) or not isinstance(arch.get("name"), str):
        raise ModelError("artifact config needs 'architecture': {'name': ..., 'params': {...}}")
    config["architecture"] = {"name": arch["name"], "params": dict(arch.get("params") or {})}
    for key, default in OPTIONAL_DEFAULTS.items():
        config.setdefault(key, json.loads(json.dumps(default)))
    config["format_version"] = format_version_string()
    config["package_version"] = __version__
    config.setdefault("created_utc", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    try:
        json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ModelError(
            f"artifact config is not JSON-serialisable ({error}): use plain numbers, strings, lists and dicts (no NaN)"
        ) from None
    return config


def read_config(directory: str | os.PathLike) -> dict:
    """Read and check ``config.json`` of an artifact without building the model."""
    directory = Path(directory)
    if not os.path.exists(directory):  # Path.exists raises on names over 255 bytes
        raise ModelError(
            f"no model artifact at {str(directory)!r}: give the folder that holds "
            f"{WEIGHTS_NAME} and {CONFIG_NAME} (made by 'emovox train')"
        )
    if not directory.is_dir():
        raise ModelError(
            f"{str(directory)!r} is a file: a model artifact is a folder with {WEIGHTS_NAME} and {CONFIG_NAME}"
        )
    path = directory / CONFIG_NAME
    check_inside(path, directory)
    if not os.path.isfile(path):
        raise ModelError(
            f"model artifact {str(directory)!r} has no {CONFIG_NAME}: it is incomplete; re-export or re-train it"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelError(
            f"{str(path)!r} is not valid JSON ({error}): the artifact is corrupt; re-export or re-train it"
        ) from None
    if not isinstance(config, dict):
        raise ModelError(f"{str(path)!r} must hold a JSON object, got {type(config).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise ModelError(
            f"{str(path)!r} lacks required keys {missing}: it was not written by emovox save_artifact or is damaged"
        )
    _check_format(config, path)
    for key, default in OPTIONAL_DEFAULTS.items():
        if config.get(key) is None:
            config[key] = json.loads(json.dumps(default))
        elif isinstance(default, dict) and not isinstance(config[key], dict):
            raise ModelError(
                f"{str(path)!r}: {key!r} must be a JSON object, got {type(config[key]).__name__}: "
                "the artifact is damaged; re-export or re-train it"
            )
    threshold = config["threshold"]
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))):
        raise ModelError(f"{str(path)!r}: 'threshold' must be a number or null, got {type(threshold).__name__}")
    return config


def _check_format(config: Mapping[str, Any], path: Path) -> None:
    raw = config["format_version"]
    try:
        major, minor = (int(part) for part in str(raw).split("."))
    except ValueError:
        raise ModelError(f"{str(path)!r} has an unreadable format_version {raw!r}") from None
    made_by = config.get("package_version", "an unknown version")
    ours = format_version_string()
    if (major, minor) > FORMAT_VERSION:
        raise ModelError(
            f"model artifact was written by emovox {made_by} in format {major}.{minor}; this emovox "
            f"{__version__} reads format up to {ours}: upgrade emovox (pip install -U emovox) to load it"
        )
    if major < FORMAT_VERSION[0]:
        raise ModelError(
            f"model artifact was written by emovox {made_by} in format {major}.{minor}, which this emovox "
            f"{__version__} (format {ours}) no longer reads: re-train the model or load it with emovox {made_by}"
        )


def load_artifact(
    directory: str | os.PathLike, *, expected_spec: TaskSpec | None = None
) -> tuple[torch.nn.Module, dict]:
    """Load an artifact folder written by :func:`save_artifact`.

    Parameters
    ----------
    directory : path-like
    expected_spec : TaskSpec, optional
        Refuse the artifact unless its task spec equals this one.

    Returns
    -------
    model : torch.nn.Module
        In eval mode, weights loaded.
    config : dict
        The parsed ``config.json`` (optional sections filled with defaults).

    Raises
    ------
    ModelError
        Missing folder or file, corrupt JSON, missing keys, a newer or
        incompatible format, an invalid or unexpected task spec, an unknown
        architecture, or weights that do not fit the architecture.
    """
    directory = Path(directory)
    config = read_config(directory)
    spec = TaskSpec.from_dict(config["task"])
    if expected_spec is not None:
        try:
            expected_spec.check_compatible(spec)
        except ModelError as error:
            raise ModelError(f"model artifact {str(directory)!r} is for another task: {error}") from None
    arch = config["architecture"]
    if not isinstance(arch, Mapping) or not isinstance(arch.get("name"), str):
        raise ModelError(f"{str(directory / CONFIG_NAME)!r}: 'architecture' must be {{'name': ..., 'params': {{...}}}}")
    params = arch.get("params") or {}
    if not isinstance(params, Mapping):
        raise ModelError(f"{str(directory / CONFIG_NAME)!r}: 'architecture.params' must be a JSON object")
    weights_path = directory / WEIGHTS_NAME
    check_inside(weights_path, directory)
    if not os.path.isfile(weights_path):
        raise ModelError(
            f"model artifact {str(directory)!r} has no {WEIGHTS_NAME}: it is incomplete; re-export or re-train it"
        )
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}
            # Shapes first, on a parameter-free ("meta") build: a config declaring a huge model
            # is refused before anything of that size is allocated.
            _check_weights(_build(arch["name"], spec, params, directory, meta=True), shapes, weights_path)
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except ModelError:
        raise
    except Exception as error:  # safetensors raises private error types
        raise ModelError(
            f"{str(weights_path)!r} is not readable safetensors ({_one_line(error)}): "
            "the artifact is corrupt; re-export or re-train it"
        ) from None
    model = _build(arch["name"], spec, params, directory, meta=False)
    _check_weights(model, {k: tuple(v.shape) for k, v in tensors.items()}, weights_path)
    model.load_state_dict(tensors, strict=True)
    model.eval()
    return model, config


@overload
def _build(
    name: str, spec: TaskSpec, params: Mapping[str, Any], directory: Path, *, meta: Literal[False]
) -> torch.nn.Module: ...
@overload
def _build(
    name: str, spec: TaskSpec, params: Mapping[str, Any], directory: Path, *, meta: bool
) -> torch.nn.Module | None: ...
def _build(
    name: str, spec: TaskSpec, params: Mapping[str, Any], directory: Path, *, meta: bool
) -> torch.nn.Module | None:
    """Build the architecture a config names; :class:`ModelError` if its parameters are unusable.

    ``meta=True`` builds without allocating parameters (``None`` if the
    architecture cannot be built that way; the real build then decides).
    """
    try:
        if meta:
            with torch.device("meta"):
                return build_model(name, spec, **dict(params))
        return build_model(name, spec, **dict(params))
    except ModelError:
        if meta:
            return None
        raise
    except Exception as error:  # the builders' own checks raise many types on hostile values
        if meta and not isinstance(error, (TypeError, ValueError, OverflowError, MemoryError)):
            return None
        raise ModelError(
            f"{str(directory / CONFIG_NAME)!r}: architecture {name!r} cannot be built from its "
            f"params ({type(error).__name__}: {_one_line(error)}): the config is damaged"
        ) from None


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


def _check_weights(model: torch.nn.Module | None, shapes: Mapping[str, tuple], path: Path) -> None:
    if model is None:
        return
    expected = model.state_dict()
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    if missing or extra:
        raise ModelError(
            f"{str(path)!r} does not match its architecture: missing {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}"
        )
    for key, value in expected.items():
        if tuple(shapes[key]) != tuple(value.shape):
            raise ModelError(
                f"{str(path)!r}: weight {key!r} has shape {tuple(shapes[key])}, the architecture "
                f"expects {tuple(value.shape)}: config.json and the weights disagree"
            )
