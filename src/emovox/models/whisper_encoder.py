"""A frozen OpenAI Whisper encoder (MIT) as a speech-feature backbone.

Two modules and their file format:

- :class:`WhisperLogMel`: waveform ``(batch, n)`` at 16 kHz -> Whisper's
  normalised log-mel ``(batch, n_mels, n // 160)``, built on
  :class:`emovox.features.frontend.LogMelFrontend`;
- :class:`WhisperEncoder`: log-mel -> every hidden state, a tuple of
  ``n_layers + 1`` tensors ``(batch, ceil(frames / 2), d_model)``, one per
  20 ms (as ``output_hidden_states`` in Hugging Face ``transformers``: the
  input of block 1 after the positions, then each block's output, the last one
  after the final LayerNorm);
- :func:`load_whisper_encoder` / :func:`save_whisper_encoder`: a folder with
  ``model.safetensors`` + ``config.json`` (``scripts/import_whisper_ct2.py``
  writes one from a CTranslate2 Whisper model);
- :func:`truncate_encoder`: the first ``k`` blocks only, for a head that reads
  hidden states ``0..k`` (the shipped model runs no block it does not use).

Whisper pads every input to 30 s (1500 encoder frames). Here a clip is encoded
at its own length: the positional table is sliced to the clip's frame count,
so attention and pooling see only the clip (Whisper base on a 2 s clip, one
CPU thread: 60 ms instead of 1.2 s); the hidden states therefore differ from
those of a padded run. Clips must be at most 30 s. A batch holds clips of one
length (there is no mask).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from emovox.errors import FeatureError, ModelError
from emovox.features.frontend import LogMelFrontend
from emovox.fileio import atomic_write_bytes, atomic_write_text

__all__ = [
    "WhisperEncoderConfig",
    "WhisperLogMel",
    "WhisperEncoder",
    "EncoderBlock",
    "sinusoids",
    "truncate_encoder",
    "half_encoders",
    "load_whisper_encoder",
    "save_whisper_encoder",
    "WEIGHTS_NAME",
    "CONFIG_NAME",
]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
SAMPLE_RATE_HZ = 16000
HOP_LENGTH = 160  # 10 ms per log-mel frame; the encoder halves the frame rate
IMPORT_HINT = "write it with scripts/import_whisper_ct2.py SRC_DIR OUT_DIR"


@dataclass(frozen=True)
class WhisperEncoderConfig:
    """Sizes of a Whisper encoder (``config.json``). base: 80, 512, 8, 6, 1500; tiny: 80, 384, 6, 4, 1500.

    ``final_layer_norm`` is False only for a truncated encoder
    (:func:`truncate_encoder`): its last hidden state is then the raw output
    of its last block, as in the full encoder.
    """

    n_mels: int = 80
    d_model: int = 512
    n_heads: int = 8
    n_layers: int = 6
    n_ctx: int = 1500  # encoder frames of 30 s
    final_layer_norm: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.final_layer_norm, bool):
            raise ModelError(f"Whisper encoder setting final_layer_norm={self.final_layer_norm!r} is not true/false")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "final_layer_norm":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ModelError(f"Whisper encoder setting {f.name}={value!r} is not a positive integer")
        if self.d_model % self.n_heads:
            raise ModelError(f"d_model={self.d_model} is not a multiple of n_heads={self.n_heads}")

    @classmethod
    def from_dict(cls, data: Mapping, *, source: str = "config") -> WhisperEncoderConfig:
        """Read the five sizes (and ``final_layer_norm``, default true) from ``data``; other keys are ignored."""
        missing = [f.name for f in fields(cls) if f.name not in data and f.name != "final_layer_norm"]
        if missing:
            raise ModelError(f"{source} lacks {missing}: it is not a Whisper encoder config; {IMPORT_HINT}")
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def to_dict(self) -> dict:
        return asdict(self)


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """Whisper's positional table ``(length, channels)``: sines then cosines of ``channels // 2`` timescales."""
    inv = torch.exp(-math.log(max_timescale) / (channels // 2 - 1) * torch.arange(channels // 2, dtype=torch.float64))
    angle = torch.arange(length, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cat([angle.sin(), angle.cos()], dim=1).float()


class WhisperLogMel(nn.Module):
    """Whisper's log-mel front end.

    Power STFT (400-sample periodic Hann window, hop 160, reflect padding),
    80 Slaney mel bands (``librosa.filters.mel(sr=16000, n_fft=400)``), the
    last STFT frame dropped, then ``x = log10(max(mel, 1e-10))``,
    ``x = max(x, x.max() - 8)`` (per clip) and ``(x + 4) / 4``.

    Shapes
    ------
    input ``y``: float ``(batch, n)`` or ``(n,)`` at 16 kHz, ``n > 200``.
    output: float32 ``(batch, n_mels, n // 160)`` (or ``(n_mels, n // 160)``).
    """

    def __init__(self, n_mels: int = 80) -> None:
        super().__init__()
        # dB with no top_db clip is 10 * log10(max(mel, 1e-10)): Whisper's log10 times 10
        self.logmel = LogMelFrontend(
            SAMPLE_RATE_HZ,
            n_fft=400,
            hop_length=HOP_LENGTH,
            n_mels=n_mels,
            log="db",
            top_db=None,
            amin=1e-10,
            pad_mode="reflect",
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = self.logmel(y)[..., :-1] / 10.0
        x = torch.maximum(x, x.amax(dim=(-2, -1), keepdim=True) - 8.0)
        return (x + 4.0) / 4.0


class _SelfAttention(nn.Module):
    """Multi-head self-attention; the key projection has no bias (as in Whisper)."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (p(x).view(b, t, self.n_heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        return self.out_proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d))


class EncoderBlock(nn.Module):
    """Pre-LayerNorm residual block: self-attention, then a GELU MLP of width ``4 * d_model``."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.self_attn_layer_norm = nn.LayerNorm(d_model)
        self.self_attn = _SelfAttention(d_model, n_heads)
        self.final_layer_norm = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, 4 * d_model)
        self.fc2 = nn.Linear(4 * d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x))
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder returning all hidden states.

    conv1 (k=3) + GELU, conv2 (k=3, stride 2) + GELU, sinusoidal positions,
    ``n_layers`` pre-LN residual attention blocks, final LayerNorm (absent in
    a truncated encoder, ``config.final_layer_norm = False``). Parameter
    names follow Hugging Face ``WhisperEncoder`` (``embed_positions`` is a
    buffer here).

    Shapes
    ------
    input ``mel``: float ``(batch, n_mels, frames)``, 100 frames per second,
    ``1 <= frames <= 2 * n_ctx`` (30 s).
    output: tuple of ``n_layers + 1`` float tensors ``(batch, ceil(frames / 2), d_model)``.
    """

    embed_positions: torch.Tensor

    def __init__(self, config: WhisperEncoderConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.conv1 = nn.Conv1d(config.n_mels, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        self.register_buffer("embed_positions", sinusoids(config.n_ctx, d))
        self.layers = nn.ModuleList(EncoderBlock(d, config.n_heads) for _ in range(config.n_layers))
        if config.final_layer_norm:
            self.layer_norm = nn.LayerNorm(d)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, ...]:
        c = self.config
        if not isinstance(mel, torch.Tensor) or mel.ndim != 3 or mel.shape[1] != c.n_mels:
            shape = tuple(mel.shape) if isinstance(mel, torch.Tensor) else type(mel).__name__
            raise FeatureError(
                f"expected a log-mel tensor (batch, {c.n_mels}, frames), got {shape}; compute it with WhisperLogMel"
            )
        if not 1 <= mel.shape[2] <= 2 * c.n_ctx:
            raise FeatureError(
                f"log-mel has {mel.shape[2]} frames, the encoder takes 1..{2 * c.n_ctx} "
                f"({2 * c.n_ctx * HOP_LENGTH / SAMPLE_RATE_HZ:g} s); split longer audio"
            )
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        x = x + self.embed_positions[: x.shape[1]]  # no padding to 30 s: positions of the clip's own frames
        states = [x]
        for layer in self.layers:
            x = layer(x)
            states.append(x)
        if self.config.final_layer_norm:
            states[-1] = self.layer_norm(x)
        return tuple(states)


def truncate_encoder(encoder: WhisperEncoder, n_layers: int) -> WhisperEncoder:
    """The first ``n_layers`` blocks of ``encoder``, sharing nothing with it.

    Hidden states ``0..n_layers`` of the result equal those of ``encoder``
    (the full encoder's LayerNorm applies only to its own last state, so a
    truncated encoder has none). ``n_layers`` equal to the encoder's keeps it
    whole (a copy).

    Raises
    ------
    ModelError
        ``n_layers`` outside ``1..encoder.config.n_layers``.
    """
    c = encoder.config
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or not 1 <= n_layers <= c.n_layers:
        raise ModelError(f"cannot keep {n_layers!r} blocks of an encoder with {c.n_layers}: expected 1..{c.n_layers}")
    whole = n_layers == c.n_layers
    config = WhisperEncoderConfig(
        n_mels=c.n_mels,
        d_model=c.d_model,
        n_heads=c.n_heads,
        n_layers=n_layers,
        n_ctx=c.n_ctx,
        final_layer_norm=c.final_layer_norm and whole,
    )
    out = WhisperEncoder(config)
    wanted = out.state_dict()
    out.load_state_dict({k: v.detach().clone() for k, v in encoder.state_dict().items() if k in wanted}, strict=True)
    return out.eval().requires_grad_(False)


def _read_config(directory: Path) -> WhisperEncoderConfig:
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise ModelError(f"{str(path)!r} is missing: {str(directory)!r} is not a Whisper encoder folder; {IMPORT_HINT}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{str(path)!r} is not valid JSON ({error}); {IMPORT_HINT}") from None
    if not isinstance(data, dict):
        raise ModelError(f"{str(path)!r} holds {type(data).__name__}, expected an object; {IMPORT_HINT}")
    return WhisperEncoderConfig.from_dict(data, source=repr(str(path)))


def load_whisper_encoder(path: str | os.PathLike) -> WhisperEncoder:
    """Load a frozen :class:`WhisperEncoder` from ``path/model.safetensors`` + ``path/config.json``.

    Weights stored as float16 are cast to float32. The result is in eval
    mode with ``requires_grad=False``.

    Raises
    ------
    ModelError
        Missing folder or file, unreadable JSON or safetensors, missing config
        keys, or tensors whose names or shapes do not match the config.
    """
    from safetensors import safe_open

    directory = Path(path)
    if not directory.is_dir():
        raise ModelError(f"Whisper encoder folder {str(directory)!r} does not exist; {IMPORT_HINT}")
    config = _read_config(directory)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelError(f"{str(weights)!r} is missing: the Whisper encoder folder is incomplete; {IMPORT_HINT}")
    try:
        with safe_open(str(weights), framework="pt") as handle:
            tensors = {k: handle.get_tensor(k).float() for k in handle.keys()}
    except Exception as error:  # safetensors raises private error types
        raise ModelError(f"{str(weights)!r} is not readable safetensors ({error}); {IMPORT_HINT}") from None
    model = WhisperEncoder(config)
    expected = model.state_dict()
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ModelError(
            f"{str(weights)!r} does not match config.json: missing {missing[:3]}, unexpected {extra[:3]}; {IMPORT_HINT}"
        )
    for key, value in expected.items():
        if tensors[key].shape != value.shape:
            raise ModelError(
                f"{str(weights)!r}: tensor {key!r} has shape {tuple(tensors[key].shape)} but "
                f"config.json {config.to_dict()} expects {tuple(value.shape)}; {IMPORT_HINT}"
            )
    model.load_state_dict(tensors, strict=True)
    return model.eval().requires_grad_(False)


def save_whisper_encoder(
    directory: str | os.PathLike,
    state_dict: Mapping[str, torch.Tensor],
    config: WhisperEncoderConfig,
    *,
    metadata: Mapping | None = None,
    dtype: torch.dtype = torch.float16,
) -> Path:
    """Write ``model.safetensors`` (tensors cast to ``dtype``) and ``config.json`` atomically.

    ``state_dict`` must have exactly the names and shapes of ``WhisperEncoder(config)``;
    ``metadata`` (e.g. provenance) is stored in ``config.json`` beside the sizes.
    Each file is written atomically (:mod:`emovox.fileio`).
    """
    from safetensors.torch import save

    directory = Path(directory)
    expected = WhisperEncoder(config).state_dict()
    bad = sorted(
        k
        for k in set(expected) | set(state_dict)
        if k not in expected or k not in state_dict or tuple(state_dict[k].shape) != tuple(expected[k].shape)
    )
    if bad:
        raise ModelError(f"tensors {bad[:3]} are missing, unexpected or mis-shaped for {config.to_dict()}")
    tensors = {k: torch.as_tensor(v).to(dtype).contiguous() for k, v in state_dict.items()}
    text = json.dumps(
        {**config.to_dict(), "weights_dtype": str(dtype).removeprefix("torch."), **dict(metadata or {})}, indent=2
    )
    atomic_write_bytes(directory / WEIGHTS_NAME, save(tensors))
    atomic_write_text(directory / CONFIG_NAME, text + "\n")
    return directory


def half_encoders(module: nn.Module) -> nn.Module:
    """Cast every :class:`WhisperEncoder` inside ``module`` to float16, in place, for storage.

    An artifact saved from the result stores the encoder weights in half the
    space; :func:`emovox.models.artifact.load_artifact` copies them back into
    the float32 model it builds, so inference runs in float32 on the
    float16-rounded weights. Everything else (front end, scaler, head) stays
    float32. Returns ``module``.
    """
    for sub in module.modules():
        if isinstance(sub, WhisperEncoder):
            sub.half()
    return module
