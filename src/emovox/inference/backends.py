"""Backends: the one thing a :class:`~emovox.inference.Predictor` asks of a model.

A backend maps a waveform batch ``(batch, n)`` float32 at the model's sample
rate to logits ``(batch, n_classes)`` (the neural model input contract in
``docs/CONTRACTS.md``: the front end is inside the model). Two are provided:

- :class:`TorchBackend` over a ``torch.nn.Module`` (the artifact's
  ``model.safetensors`` loaded by :mod:`emovox.models.artifact`);
- :class:`OnnxBackend` over ``model.onnx`` with onnxruntime; importing or
  using it never imports torch.

:class:`ModelInfo` reads what the predictor needs from an artifact's
``config.json`` (labels, rate, clip length, temperature, threshold) with plain
JSON, so the ONNX path needs nothing else.

A backend may also offer ``embeddings(waveforms) -> (batch, n_features)``, the
head's input of a Whisper-backed model (the ONNX graph's ``embedding``
output), which speaker adaptation needs; ``has_embeddings`` says whether it can.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from emovox.errors import ConfigError, ModelError
from emovox.fileio import check_inside

if TYPE_CHECKING:
    import torch

__all__ = [
    "Backend",
    "ModelInfo",
    "TorchBackend",
    "OnnxBackend",
    "read_config",
    "model_version",
    "BACKENDS",
    "ONNX_FILE",
    "WEIGHTS_FILE",
    "CONFIG_FILE",
]

BACKENDS = ("auto", "torch", "onnx")
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"


class Backend(Protocol):
    """Waveforms ``(batch, n)`` float32 -> logits ``(batch, n_classes)`` float32."""

    name: str

    def logits(self, waveforms: np.ndarray) -> np.ndarray: ...


class EmbeddingBackend(Backend, Protocol):
    """A backend that also gives the model's embeddings ``(batch, n_features)`` (Whisper-backed models)."""

    @property
    def has_embeddings(self) -> bool: ...

    def embeddings(self, waveforms: np.ndarray) -> np.ndarray: ...


#: Name of the ONNX graph's second output (see :mod:`emovox.export.onnx`).
EMBEDDING_OUTPUT = "embedding"


def read_config(model_dir: str | os.PathLike) -> dict:
    """The parsed ``config.json`` of an artifact directory (:class:`ModelError` if unreadable)."""
    path = Path(model_dir) / CONFIG_FILE
    if not os.path.isdir(model_dir):  # Path.is_dir raises on names over 255 bytes
        raise ModelError(f"model directory {str(model_dir)!r} does not exist: pass a model artifact folder")
    check_inside(path, model_dir)
    try:
        with open(path, encoding="utf-8") as fh:
            config = json.load(fh)
    except FileNotFoundError:
        raise ModelError(f"{str(model_dir)!r} has no {CONFIG_FILE}: it is not an emovox model artifact") from None
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read {path}: {error}") from None
    if not isinstance(config, dict):
        raise ModelError(f"{path} must hold a JSON object")
    return config


def _spec_of(config: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in ("spec", "task", "task_spec"):
        if isinstance(config.get(key), Mapping):
            return config[key]
    if "labels" in config:
        return config
    raise ModelError("the model config has no task spec ('spec' with 'labels'): re-save the artifact")


@dataclass(frozen=True)
class ModelInfo:
    """What inference needs to know about a model, read from its config.

    Attributes
    ----------
    labels : tuple[str, ...]
        Classes in model order.
    sample_rate_hz : int
        Rate the model expects.
    clip_s : float
        Input length the model was trained on; inputs are centre-cropped or
        centre-padded to it (as in training evaluation).
    temperature : float
        Calibration temperature (1.0 when uncalibrated).
    threshold : float
        Calibrated confidence under which a prediction is ``"unknown"``.
    crop : str
        ``"center"`` (default): inputs are centre-cropped/padded to ``clip_s``
        (engine-trained models). ``"none"``: the model pools over time and
        takes any length; clips are fed at their own length (the flagship).
    trim_silence : bool
        Trim leading/trailing silence of a clip before predicting (as in training).
    normalize : str or None
        ``None``, ``"peak"`` or ``"loudness"``, as in training.
    band_limit_hz : int or None
        Every input is passed through a channel of this sample rate first
        (8000: nothing above 4 kHz reaches the model), as in training.
    name : str or None
        The model's name in every answer (``model``): a shipped model's name
        (``"default"``, ``"cnn"``) or the artifact folder's name, set by
        :func:`~emovox.inference.load_model`; ``None`` falls back to the
        architecture's name (:attr:`model_name`).
    config : dict
        The full config, for provenance.
    """

    labels: tuple[str, ...]
    sample_rate_hz: int = 16000
    clip_s: float = 3.0
    temperature: float = 1.0
    threshold: float = 0.0
    crop: str = "center"
    trim_silence: bool = False
    normalize: str | None = None
    band_limit_hz: int | None = None
    name: str | None = None
    config: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_samples(self) -> int:
        return int(round(self.clip_s * self.sample_rate_hz))

    @property
    def fixed_length(self) -> bool:
        """Whether inputs must be exactly :attr:`n_samples` long."""
        return self.crop != "none"

    @property
    def model_name(self) -> str:
        """What answers call the model (``model``): :attr:`name`, else the architecture's name."""
        return self.name or str((self.config.get("architecture") or {}).get("name") or "model")

    @functools.cached_property
    def model_version(self) -> str:
        """What answers give as the model's version (``model_version``): :func:`model_version` of the config."""
        return model_version(self.config)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ModelInfo:
        """Read and check the fields inference needs (:class:`ModelError` naming the bad one)."""
        spec = _spec_of(config)
        kind = spec.get("input_kind", "waveform")
        if kind != "waveform":
            raise ModelError(
                f"this model takes input_kind={kind!r}: only waveform models (e.g. the flagship) "
                "can predict from audio; research models over features are for evaluation"
            )
        labels = spec.get("labels") or ()
        if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) and x for x in labels):
            raise ModelError(f"the model config lists labels {_short(labels)}: expected a list of names")
        labels = tuple(labels)
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ModelError(f"the model config lists labels {list(labels)!r}: expected at least two distinct")
        calibration = _section(config, "calibration")
        temperature = _number(calibration.get("temperature"), "calibration.temperature", 1.0)
        threshold = _number(config.get("threshold"), "threshold", 0.0)
        if not temperature > 0:
            raise ModelError(f"calibration.temperature={temperature!r} must be a positive number")
        if not 0.0 <= threshold <= 1.0:
            raise ModelError(f"threshold={threshold!r} must lie in [0, 1]")
        rate = _number(spec.get("sample_rate_hz"), "task.sample_rate_hz", 16000)
        if rate != int(rate) or not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
            raise ModelError(
                f"task.sample_rate_hz={rate!r} must be a whole number of Hz in [{MIN_RATE_HZ}, {MAX_RATE_HZ}]"
            )
        clip_s = _number(spec.get("clip_s"), "task.clip_s", 3.0)
        if not 0 < clip_s <= MAX_CLIP_S:
            raise ModelError(f"task.clip_s={clip_s!r} must lie in (0, {MAX_CLIP_S:g}] seconds")
        pre = _section(config, "preprocessing")
        crop = pre.get("crop") or "center"
        if crop not in ("center", "start", "none"):
            raise ModelError(f"preprocessing.crop={_short(crop)} is unknown: expected 'center', 'start' or 'none'")
        normalize = pre.get("normalize")
        if normalize not in (None, "peak", "loudness"):
            raise ModelError(f"preprocessing.normalize={_short(normalize)}: expected null, 'peak' or 'loudness'")
        trim = pre.get("trim_silence", False)
        if not isinstance(trim, bool):
            raise ModelError(f"preprocessing.trim_silence={_short(trim)}: expected true or false")
        band = pre.get("band_limit_hz")
        if band is not None and (isinstance(band, bool) or not isinstance(band, int) or not 1000 <= band < rate):
            raise ModelError(
                f"preprocessing.band_limit_hz={_short(band)}: expected null or a whole number of Hz "
                f"in [1000, {int(rate)})"
            )
        return cls(
            labels=labels,
            sample_rate_hz=int(rate),
            clip_s=clip_s,
            temperature=temperature,
            threshold=threshold,
            crop=crop,
            trim_silence=trim,
            normalize=normalize,
            band_limit_hz=band,
            config=dict(config),
        )


def model_version(config: Mapping[str, Any]) -> str:
    """A model's version: the day it was built and a fingerprint of its config, ``"2026-12-03+1a2b3c4d"``.

    The fingerprint is the first 8 hex digits of the SHA-256 of the config as
    canonical JSON (sorted keys), so any change that alters answers (weights
    rebuilt, recalibrated, a new threshold or adaptation head, all of which
    rewrite ``config.json``) gives a new version, while the same artifact
    gives the same version on every machine. Without ``created_utc`` only
    the fingerprint.
    """
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8]
    created = config.get("created_utc")
    day = created[:10] if isinstance(created, str) and len(created) >= 10 else ""
    return f"{day}+{digest}" if day else digest


#: Bounds on what a model config may declare (a config is untrusted input).
MIN_RATE_HZ, MAX_RATE_HZ = 1000, 384000
MAX_CLIP_S = 600.0


def _short(value: Any) -> str:
    """``repr`` of a config value, cut to one short line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _section(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = config.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ModelError(f"the model config's {key!r} must be a JSON object, got {_short(value)}")
    return value


def _number(value: Any, key: str, default: float) -> float:
    """A finite JSON number (``null`` -> ``default``)."""
    if value is None:
        return float(default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ModelError(f"the model config's {key}={_short(value)} must be a finite number")
    return float(value)


class TorchBackend:
    """A ``torch.nn.Module`` in eval mode under ``torch.inference_mode``.

    Parameters
    ----------
    module : torch.nn.Module
        Waveform ``(batch, n)`` -> logits ``(batch, n_classes)``.
    num_threads : int or None
        If given, ``torch.set_num_threads(num_threads)`` (process-wide).
    """

    name = "torch"

    def __init__(self, module: torch.nn.Module, *, num_threads: int | None = None) -> None:
        import torch

        if num_threads:
            torch.set_num_threads(int(num_threads))
        self._torch = torch
        self.module = module.eval()

    def logits(self, waveforms: np.ndarray) -> np.ndarray:
        x = self._torch.from_numpy(np.ascontiguousarray(waveforms, dtype=np.float32))
        with self._torch.inference_mode():
            return self.module(x).float().numpy()

    @property
    def has_embeddings(self) -> bool:
        return callable(getattr(self.module, "embedding", None))

    def embeddings(self, waveforms: np.ndarray) -> np.ndarray:
        """The head's input ``(batch, n_features)`` (models with an ``embedding`` method only)."""
        if not self.has_embeddings:
            raise ModelError("this model has no embedding output (only Whisper-backed models have one)")
        # has_embeddings checked that the module's embedding is callable (torch types it as Tensor | Module)
        embedding = cast("Callable[[torch.Tensor], torch.Tensor]", self.module.embedding)
        x = self._torch.from_numpy(np.ascontiguousarray(waveforms, dtype=np.float32))
        with self._torch.inference_mode():
            return embedding(x).float().numpy()

    @classmethod
    def from_artifact(cls, model_dir: str | os.PathLike, *, num_threads: int | None = None) -> TorchBackend:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ModelError(
                "the torch backend needs PyTorch: pip install 'emovox[torch]', or use --backend onnx"
            ) from None
        try:
            from emovox.models.artifact import load_artifact
        except ImportError as error:
            raise ModelError(f"cannot load torch artifacts: {error}") from None
        loaded = load_artifact(model_dir)
        module = loaded[0] if isinstance(loaded, tuple) else getattr(loaded, "model", loaded)
        return cls(module, num_threads=num_threads)


class OnnxBackend:
    """An ONNX model run with onnxruntime on the CPU; never imports torch.

    Parameters
    ----------
    path : str or PathLike
        ``model.onnx`` (or an artifact directory holding it).
    num_threads : int or None
        Intra-op threads (onnxruntime's default when ``None``).
    """

    name = "onnx"

    def __init__(self, path: str | os.PathLike, *, num_threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError("the onnx backend needs onnxruntime: pip install 'emovox[onnx]'") from None
        path = Path(path)
        if path.is_dir():
            path = path / ONNX_FILE
        check_inside(path, path.parent)
        if not path.is_file():
            raise ModelError(
                f"{str(path)!r} does not exist: export it with "
                f"`emovox export {path.parent} --format onnx --out {path.parent}`"
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # the CPU arena never shrinks: after a burst of streams or uploads the process would keep its peak
        # (docs/service.md); without it a 3 s clip costs the same
        options.enable_cpu_mem_arena = False
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
            options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types
            raise ModelError(f"cannot load {path}: {str(error).splitlines()[0]}") from None
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]
        self.path = path

    def logits(self, waveforms: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(waveforms, dtype=np.float32)
        return np.asarray(self._session.run(self._outputs[:1], {self._input: x})[0], dtype=np.float32)

    @property
    def has_embeddings(self) -> bool:
        return EMBEDDING_OUTPUT in self._outputs

    def embeddings(self, waveforms: np.ndarray) -> np.ndarray:
        """The graph's ``embedding`` output ``(batch, n_features)`` (Whisper-backed exports only)."""
        if not self.has_embeddings:
            raise ModelError(
                f"{self.path} has no {EMBEDDING_OUTPUT!r} output: re-export the model with "
                "`emovox export` to use speaker adaptation"
            )
        x = np.ascontiguousarray(waveforms, dtype=np.float32)
        return np.asarray(self._session.run([EMBEDDING_OUTPUT], {self._input: x})[0], dtype=np.float32)


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise ConfigError(f"backend={name!r} is unknown: expected one of {', '.join(BACKENDS)}")
    return name
