"""Hugging Face speech encoders from a local folder: wav2vec 2.0, HuBERT, WavLM, data2vec-audio and Whisper.

:func:`load_hf_encoder` reads a model folder written by ``save_pretrained``
(or a name already in the local Hugging Face cache: nothing is ever
downloaded, every load passes ``local_files_only=True``) and returns an
:class:`HFEncoder`, a ``torch.nn.Module`` from a 16 kHz waveform to every
hidden state::

    encoder = load_hf_encoder("/models/wavlm-base-plus")
    states = encoder.hidden_states(torch.zeros(1, 32000))   # (1, 13, 99, 768)
    encoder.describe()   # model_type, name, revision, licence, n_layers, d_model, ...

Needs the optional extra ``transformers`` (``pip install "emovox[hf]"``).

Front ends (inside the module, so an exported graph takes the waveform):

- **wav2vec-style** (``wav2vec2``, ``hubert``, ``wavlm``, ``data2vec-audio``):
  the raw waveform, normalised per clip to zero mean and unit variance
  (``(y - mean) / sqrt(var + 1e-7)``, as ``Wav2Vec2FeatureExtractor``) when
  the folder's ``preprocessor_config.json`` says ``do_normalize`` (its
  default, true, when the file is absent).
- **Whisper**: the encoder only (the decoder is dropped), fed Whisper's
  log-mel (:class:`~emovox.models.whisper_encoder.WhisperLogMel`: the
  settings of ``WhisperFeatureExtractor``, ``n_fft`` 400, hop 160, with
  ``feature_size`` from ``preprocessor_config.json`` or the config's
  ``num_mel_bins``), implemented in torch so that it exports to ONNX. As in
  emovox's own Whisper encoder, a clip is encoded at its own length (the
  positional table sliced to its frames) instead of being padded to 30 s;
  the longest clip is ``2 * max_source_positions`` log-mel frames (30 s).

Hidden states (``n_layers + 1`` of them, as ``output_hidden_states`` in
``transformers`` 4.x): 0 is the input of the first transformer block (after
the positional embedding), ``i`` the output of block ``i``, and the last one
the encoder's output (after its final LayerNorm where the model has one:
Whisper, the "stable layer norm" wav2vec 2.0 variants). They are collected
with forward hooks on the blocks, which does not depend on how a
``transformers`` release assembles its ``hidden_states`` tuple.

The utterance-level feature set ``hf:PATH`` over these states is
:mod:`emovox.models.hf_features`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from emovox.errors import ConfigError, EmovoxError, FeatureError, ModelError

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "FAMILIES",
    "HF_PREFIX",
    "HFEncoder",
    "load_hf_encoder",
    "resolve_hf_folder",
    "pool_states",
    "weights_sha256",
    "read_license",
]

#: ``config.json`` ``model_type`` values this module loads, and the family names used in messages.
FAMILIES: dict[str, str] = {
    "wav2vec2": "wav2vec 2.0",
    "hubert": "HuBERT",
    "wavlm": "WavLM",
    "data2vec-audio": "data2vec-audio",
    "whisper": "Whisper",
}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(FAMILIES)
#: Prefix of the feature set (``hf:/models/wavlm-base-plus``).
HF_PREFIX = "hf:"
SAMPLE_RATE_HZ = 16000
STATS = ("mean", "std")
#: Clips longer than this are encoded in windows of it whose frames are pooled together (feature set).
WINDOW_S = 30.0
MIN_DURATION_S = 0.1
INSTALL_HINT = 'pip install "emovox[hf]" (transformers)'
UNKNOWN_LICENSE = "unknown: check the model's card"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")
# Whisper's log-mel settings that WhisperLogMel implements (WhisperFeatureExtractor's defaults).
_WHISPER_FE = {"sampling_rate": SAMPLE_RATE_HZ, "hop_length": 160, "n_fft": 400}
_NORM_EPS = 1e-7


def require_transformers(error: type[EmovoxError] = ConfigError) -> Any:
    """The ``transformers`` module, or ``error`` saying how to install it."""
    try:
        return importlib.import_module("transformers")
    except ImportError:
        raise error(f"Hugging Face encoders need the transformers package: {INSTALL_HINT}") from None


# ---------------------------------------------------------------------- finding the folder
def resolve_hf_folder(path_or_name: str | os.PathLike) -> Path:
    """The model folder of ``path_or_name``: an existing folder, or a name in the local Hugging Face cache.

    Nothing is downloaded: a name is looked up with
    ``huggingface_hub.snapshot_download(..., local_files_only=True)``.

    Raises
    ------
    ConfigError
        Neither an existing folder nor a cached model (one line: pass a folder).
    """
    text = os.fspath(path_or_name)
    if not text.strip():
        raise ConfigError("--backbone is empty: give a Hugging Face model folder (config.json + weights)")
    path = Path(text).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise ConfigError(f"{text!r} is a file: give the model's folder (config.json + weights), not a file in it")
    looks_like_name = not (text.startswith((".", "/", "~")) or os.sep in text.strip("/").replace("/", "", 1))
    if looks_like_name:
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(repo_id=text, local_files_only=True)).resolve()
        except Exception:  # not cached, not a valid repo id, huggingface_hub absent: all mean "pass a folder"
            pass
    raise ConfigError(
        f"{text!r} is neither a folder nor a model in the local Hugging Face cache (emovox never downloads): "
        "pass the model's folder (save_pretrained output or a downloaded snapshot)"
    )


def read_json_file(path: Path) -> dict:
    """A JSON object from ``path``; a :class:`ConfigError` in one line when it is unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{str(path)!r} is not readable JSON ({error}): the model folder is damaged") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{str(path)!r} holds {type(data).__name__}, expected a JSON object")
    return data


def check_model_type(model_type: object, source: str) -> str:
    """``model_type`` when it is one of :data:`FAMILIES`, else a one-line :class:`ConfigError` naming ``source``."""
    if model_type not in FAMILIES:
        raise ConfigError(
            f"{source}: model_type {model_type!r} is not a supported speech encoder; "
            f"emovox loads {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return str(model_type)


def _frontend_settings(folder: Path, model_type: str, config: Mapping[str, Any]) -> dict:
    """The front end's JSON settings from ``preprocessor_config.json`` (or the model config's defaults)."""
    path = folder / "preprocessor_config.json"
    pre = read_json_file(path) if path.is_file() else {}
    rate = pre.get("sampling_rate", SAMPLE_RATE_HZ)
    if rate != SAMPLE_RATE_HZ:
        raise ConfigError(f"{str(path)!r}: sampling_rate {rate!r}; emovox feeds these encoders 16 kHz audio only")
    if model_type == "whisper":
        for key, want in _WHISPER_FE.items():
            if key in pre and pre[key] != want:
                raise ConfigError(f"{str(path)!r}: {key} {pre[key]!r}, but Whisper's log-mel here uses {want}")
        n_mels = pre.get("feature_size", config.get("num_mel_bins", 80))
        if n_mels != config.get("num_mel_bins", n_mels):
            raise ConfigError(
                f"{str(path)!r}: feature_size {n_mels!r} differs from config.json num_mel_bins "
                f"{config.get('num_mel_bins')!r}: the folder mixes two models"
            )
        return {"kind": "whisper-log-mel", "n_mels": int(n_mels)}
    return {"kind": "waveform", "normalize": bool(pre.get("do_normalize", True))}


# ---------------------------------------------------------------------- provenance
def cache_identity(folder: Path) -> tuple[str, str] | None:
    """``(repo id, commit)`` when ``folder`` is a snapshot in the Hugging Face cache."""
    snapshots, repo = folder.parent, folder.parent.parent
    if (
        snapshots.name == "snapshots"
        and repo.name.startswith("models--")
        and re.fullmatch(r"[0-9a-f]{40}", folder.name)
    ):
        return repo.name[len("models--") :].replace("--", "/"), folder.name
    return None


def weights_sha256(folder: str | os.PathLike) -> str:
    """SHA-256 over the folder's weight files (names and bytes, sorted by name)."""
    h = hashlib.sha256()
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    if not files:
        raise ConfigError(f"{str(folder)!r} holds no weight files ({', '.join(WEIGHT_SUFFIXES)}): it is not a model")
    for path in files:
        h.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()


def read_license(folder: str | os.PathLike) -> str:
    """The ``license:`` of the model card's front matter (``README.md``), else :data:`UNKNOWN_LICENSE`."""
    path = Path(folder) / "README.md"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return UNKNOWN_LICENSE
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return UNKNOWN_LICENSE
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            break
        match = re.match(r"^licen[cs]e\s*:\s*(.*)$", line)
        if match is None:
            continue
        value = match.group(1).strip().strip("'\"")
        if value:
            return value
        items = []  # a YAML list on the following lines
        for item in lines[i + 1 :]:
            if not item.lstrip().startswith("- "):
                break
            items.append(item.strip()[2:].strip().strip("'\""))
        return ", ".join(items) or UNKNOWN_LICENSE
    return UNKNOWN_LICENSE


# ---------------------------------------------------------------------- the module
def _no_init_weights() -> contextlib.AbstractContextManager:
    """``transformers``' context that skips random weight init (the weights are loaded right after)."""
    for module in ("transformers.initialization", "transformers.modeling_utils"):
        try:
            return importlib.import_module(module).no_init_weights()
        except (ImportError, AttributeError):
            continue
    return contextlib.nullcontext()


@contextlib.contextmanager
def _quiet(transformers: Any) -> Iterator[None]:
    """Silence ``transformers``' progress bars and load reports (missing weights are checked here instead)."""
    logging = transformers.utils.logging
    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def _config_object(model_type: str, config: Mapping[str, Any], error: type[EmovoxError]) -> Any:
    transformers = require_transformers(error)
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    check_model_type(model_type, "encoder config")
    data = {k: v for k, v in config.items() if k != "model_type"}
    try:
        return CONFIG_MAPPING[model_type].from_dict(data)
    except Exception as error_:  # transformers validates configs with many exception types
        raise error(
            f"the stored {FAMILIES[model_type]} config is not usable with transformers "
            f"{transformers.__version__} ({type(error_).__name__}: {str(error_).splitlines()[0][:160]})"
        ) from None


#: The hidden states being collected by :meth:`HFEncoder.hidden_states` on this thread (``None`` when idle).
#: The hooks stay on the blocks and write here, so concurrent calls on one model (a service's
#: threads) never see each other's states.
_COLLECTING = threading.local()


def _collect(key: str, value: Any) -> None:
    current = getattr(_COLLECTING, "current", None)
    if current is not None:
        current[key].append(value)


def _first_input(module: nn.Module, args: tuple, kwargs: dict) -> None:
    _collect("states", args[0] if args else kwargs["hidden_states"])


def _block_output(module: nn.Module, args: tuple, output: Any) -> None:
    _collect("states", output[0] if isinstance(output, (tuple, list)) else output)


def _encoder_output(module: nn.Module, args: tuple, output: Any) -> None:
    _collect("final", output[0] if isinstance(output, (tuple, list)) else output.last_hidden_state)


class HFEncoder(nn.Module):
    """A frozen Hugging Face speech encoder: waveform ``(batch, samples)`` at 16 kHz -> every hidden state.

    Parameters
    ----------
    model_type : str
        One of :data:`SUPPORTED_MODEL_TYPES`.
    config : Mapping or transformers.PretrainedConfig
        The model's ``transformers`` config (its ``to_dict()``, JSON).
    frontend : Mapping
        ``{"kind": "waveform", "normalize": bool}`` or ``{"kind": "whisper-log-mel", "n_mels": int}``.
    model : torch.nn.Module, optional
        Weights already loaded (the encoder of :func:`load_hf_encoder`); else the
        architecture is built from ``config`` with uninitialised weights, to be
        loaded with ``load_state_dict``.

    Notes
    -----
    The clips of one batch must have equal length (no attention mask).
    ``info`` (set by :func:`load_hf_encoder`) is what :meth:`describe` returns.
    """

    def __init__(
        self,
        model_type: str,
        config: Mapping[str, Any] | Any,
        frontend: Mapping[str, Any],
        *,
        model: nn.Module | None = None,
        error: type[EmovoxError] = ModelError,
    ) -> None:
        super().__init__()
        self.model_type = check_model_type(model_type, "encoder")
        self.family = FAMILIES[model_type]
        if isinstance(config, Mapping):
            config = _config_object(model_type, config, error)
        self.config = config
        kind = frontend.get("kind")
        if (model_type == "whisper") != (kind == "whisper-log-mel") or kind not in ("waveform", "whisper-log-mel"):
            raise error(f"front end {dict(frontend)!r} does not fit a {self.family} encoder")
        self.frontend_settings = dict(frontend)
        self.normalize = bool(frontend.get("normalize", False))
        if model_type == "whisper":
            from emovox.models.whisper_encoder import WhisperLogMel

            self.n_layers = int(config.encoder_layers)
            self.d_model = int(config.d_model)
            self.max_samples: int | None = 2 * int(config.max_source_positions) * _WHISPER_FE["hop_length"]
            self.frontend = WhisperLogMel(int(frontend.get("n_mels", config.num_mel_bins)))
        else:
            self.n_layers = int(config.num_hidden_layers)
            self.d_model = int(config.hidden_size)
            self.max_samples = None
        self.model = model if model is not None else self._build(error)
        self.model.eval().requires_grad_(False)
        layers = self._blocks()
        if len(layers) != self.n_layers:
            raise error(f"the {self.family} encoder has {len(layers)} blocks, its config says {self.n_layers}")
        # transformers 4.x Whisper blocks take (hidden, mask, layer_head_mask); 5.x (hidden, mask)
        self._head_mask_arg = "layer_head_mask" in inspect.signature(layers[0].forward).parameters
        if model_type != "whisper":
            self._add_hooks()
        self.info: dict[str, Any] = {}

    def _build(self, error: type[EmovoxError]) -> nn.Module:
        transformers = require_transformers(error)
        with _no_init_weights():
            if self.model_type == "whisper":
                from transformers.models.whisper.modeling_whisper import WhisperEncoder

                return WhisperEncoder(self.config)
            return transformers.AutoModel.from_config(self.config)

    def train(self, mode: bool = True) -> HFEncoder:
        """The front end follows ``mode``; the frozen encoder stays in eval mode (no dropout, no SpecAugment)."""
        super().train(mode)
        self.model.eval()
        return self

    def _blocks(self) -> nn.ModuleList:
        model: Any = self.model  # a transformers model: its submodules are not typed
        return model.layers if self.model_type == "whisper" else model.encoder.layers

    def to_params(self) -> dict:
        """JSON description that rebuilds this encoder (without weights): ``model_type``, ``config``, ``frontend``."""
        data = json.loads(self.config.to_json_string(use_diff=False))
        data.pop("_name_or_path", None)  # where it was loaded from: provenance lives in describe()
        return {"model_type": self.model_type, "config": data, "frontend": dict(self.frontend_settings)}

    @property
    def n_states(self) -> int:
        return self.n_layers + 1

    def describe(self) -> dict:
        """``model_type``, ``family``, ``name``, ``path``, ``revision``, ``license``, ``n_layers``, ``d_model``, ..."""
        return {
            "model_type": self.model_type,
            "family": self.family,
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            "n_states": self.n_states,
            "frontend": dict(self.frontend_settings),
            **self.info,
        }

    def hidden_states(self, waveform: torch.Tensor) -> torch.Tensor:
        """Every hidden state of a batch of clips.

        Parameters
        ----------
        waveform : torch.Tensor [shape=(batch, samples)] or [shape=(samples,)]
            float32 at 16 kHz, equal-length clips; a Whisper encoder reads at most
            ``max_samples`` (30 s; anything beyond is cut off).

        Returns
        -------
        torch.Tensor [shape=(batch, n_layers + 1, frames, d_model)], float32
            50 frames per second for the usual models (wav2vec-style: the conv
            stack's stride; Whisper: 100 log-mel frames per second halved).
        """
        if waveform.ndim == 1:
            waveform = waveform.unsqueeze(0)
        if waveform.ndim != 2:
            raise FeatureError(f"expected a waveform (batch, samples), got shape {tuple(waveform.shape)}")
        waveform = waveform.float()
        if self.model_type == "whisper":
            return self._whisper_states(waveform)
        if self.normalize:
            mean = waveform.mean(dim=-1, keepdim=True)
            var = waveform.var(dim=-1, unbiased=False, keepdim=True)
            waveform = (waveform - mean) / torch.sqrt(var + _NORM_EPS)
        return self._hooked_states(waveform)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.hidden_states(waveform)

    def _hooked_states(self, x: torch.Tensor) -> torch.Tensor:
        previous = getattr(_COLLECTING, "current", None)
        collected: dict[str, list[torch.Tensor]] = {"states": [], "final": []}
        _COLLECTING.current = collected
        try:
            self.model(x)
        finally:
            _COLLECTING.current = previous
        states, final = collected["states"], collected["final"]
        if len(states) != self.n_states or len(final) != 1:
            raise FeatureError(f"the {self.family} encoder ran {len(states) - 1} of its {self.n_layers} blocks")
        states[-1] = final[0]  # the encoder's output: after its final LayerNorm where it has one
        return torch.stack(states, dim=1)

    def _add_hooks(self) -> None:
        """Hooks that hand each block's input/output to the collecting call (:data:`_COLLECTING`) of this thread."""
        blocks = self._blocks()
        model: Any = self.model
        blocks[0].register_forward_pre_hook(_first_input, with_kwargs=True)
        for block in blocks:
            block.register_forward_hook(_block_output)
        model.encoder.register_forward_hook(_encoder_output)

    def _whisper_states(self, y: torch.Tensor) -> torch.Tensor:
        if self.max_samples is not None and y.shape[-1] > self.max_samples:
            y = y[:, : self.max_samples]
        if y.shape[-1] <= _WHISPER_FE["n_fft"] // 2:
            raise FeatureError(f"a Whisper encoder needs more than {_WHISPER_FE['n_fft'] // 2} samples")
        m: Any = self.model
        x = F.gelu(m.conv1(self.frontend(y)))
        x = F.gelu(m.conv2(x)).transpose(1, 2)
        x = x + m.embed_positions.weight[: x.shape[1]]  # the clip's own frames, no padding to 30 s
        states = [x]
        for block in m.layers:
            out = block(x, None, layer_head_mask=None) if self._head_mask_arg else block(x, None)
            x = out[0] if isinstance(out, (tuple, list)) else out
            states.append(x)
        states[-1] = m.layer_norm(x)
        return torch.stack(states, dim=1)


def pool_states(states: torch.Tensor) -> torch.Tensor:
    """``(batch, n_states, frames, d)`` -> mean and population std over frames ``(batch, n_states, 2, d)``."""
    return torch.stack([states.mean(dim=2), states.std(dim=2, unbiased=False)], dim=2)


def load_hf_encoder(path_or_name: str | os.PathLike) -> HFEncoder:
    """Load a supported encoder from a folder (or the local Hugging Face cache), frozen, float32, eval mode.

    Raises
    ------
    ConfigError
        transformers missing, no such folder or cached model, an unsupported
        ``model_type`` (naming the supported ones), unreadable files.
    """
    transformers = require_transformers()
    folder = resolve_hf_folder(path_or_name)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{str(folder)!r} has no config.json: it is not a Hugging Face model folder")
    raw = read_json_file(folder / "config.json")
    model_type = check_model_type(raw.get("model_type"), str(folder / "config.json"))
    try:
        with _quiet(transformers):
            config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
            loader = transformers.WhisperModel if model_type == "whisper" else transformers.AutoModel
            model, loading = loader.from_pretrained(str(folder), local_files_only=True, output_loading_info=True)
    except Exception as error:  # transformers raises OSError, ValueError, its own types
        raise ConfigError(
            f"cannot load the {FAMILIES[model_type]} model in {str(folder)!r} with transformers "
            f"{transformers.__version__}: {str(error).strip().splitlines()[0][:200]}"
        ) from None
    missing = sorted(
        k
        for k in loading.get("missing_keys", ())
        if (k.startswith("encoder.") if model_type == "whisper" else "masked_spec_embed" not in k)
    )
    if missing:
        raise ConfigError(
            f"the weights in {str(folder)!r} lack {len(missing)} tensors of the {FAMILIES[model_type]} encoder "
            f"(e.g. {missing[0]!r}): the folder holds another or an incomplete model"
        )
    if model_type == "whisper":
        model = model.get_encoder()  # the decoder is not used
    encoder = HFEncoder(
        model_type, config, _frontend_settings(folder, model_type, raw), model=model.float(), error=ConfigError
    )
    cached = cache_identity(folder)
    encoder.info = {
        "name": cached[0] if cached else os.fspath(path_or_name),
        "path": str(folder),
        "revision": cached[1] if cached else weights_sha256(folder),
        "revision_kind": "hf-cache-commit" if cached else "sha256-of-weight-files",
        "license": read_license(folder),
        "transformers_version": transformers.__version__,
    }
    return encoder
