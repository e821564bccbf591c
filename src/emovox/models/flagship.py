"""The emovox flagship: a small waveform-to-logits speech-emotion network.

The model follows the neural model input contract (``docs/CONTRACTS.md``): it
takes a waveform batch ``(batch, n)`` float32 at 16 kHz and returns logits
``(batch, n_classes)``. Its first submodule is the front end:

1. :class:`emovox.features.frontend.LogMelFrontend` -- a log-mel spectrogram
   computed with a fixed conv1d-DFT (so ONNX export needs no STFT operator),
   25 ms Hann window, 10 ms hop, 64 mel bands from 20 Hz to 8 kHz, natural
   log of the mel power (see :func:`make_frontend`);
2. :class:`UtteranceNorm` -- per-utterance mean/variance normalisation of each
   mel band over time (removes channel and speaker offsets, gain invariant).

The body (:class:`FlagshipNet`) is a compact 2-D residual CNN over the
normalised log-mel image that reduces frequency to a few bins, then a
1-D projection, attentive statistics pooling over time and a linear head.
Everything is fixed-size except time, so any clip length of at least one
window works; the pooling makes the output independent of length.

Training code may feed cached log-mel frames straight into
:meth:`FlagshipNet.forward_logmel` (the front end is deterministic) and still
ship the exact same module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from emovox.errors import ConfigError
from emovox.features.frontend import LogMelFrontend

__all__ = [
    "FlagshipConfig",
    "make_frontend",
    "UtteranceNorm",
    "FlagshipNet",
    "build_flagship",
]


@dataclass(frozen=True)
class FlagshipConfig:
    """Hyper-parameters of :class:`FlagshipNet`.

    Attributes
    ----------
    n_classes : int
        Output classes.
    sample_rate_hz : int
        Input rate; the front end is built for it.
    n_mels : int
        Mel bands.
    win_s, hop_s : float
        Analysis window and hop, seconds.
    fmin_hz, fmax_hz : float
        Mel filterbank range.
    stem_channels : int
        Channels of the stem conv (3x3, stride 2 in frequency).
    stem_time_stride : int
        Time stride of the stem (2: 20 ms per stem frame).
    channels : tuple[int, ...]
        Channels of the residual stages; each stage halves frequency, and all
        but the last also halve time.
    embed_dim : int
        Width of the 1-D projection before pooling.
    dropout : float
        Dropout before the classifier.
    norm : {"utterance", "none"}
        Per-utterance mean/variance normalisation of the log-mel, or none.
    """

    n_classes: int = 8
    sample_rate_hz: int = 16000
    n_mels: int = 64
    win_s: float = 0.025
    hop_s: float = 0.010
    fmin_hz: float = 20.0
    fmax_hz: float = 8000.0
    stem_channels: int = 16
    stem_time_stride: int = 2
    channels: tuple[int, ...] = (16, 32, 64, 128)
    embed_dim: int = 128
    dropout: float = 0.3
    norm: str = "utterance"  # "utterance" | "none"

    def __post_init__(self) -> None:
        if self.n_classes < 2:
            raise ConfigError(f"n_classes={self.n_classes}: need at least 2 classes")
        if self.norm not in ("utterance", "none"):
            raise ConfigError(f"norm={self.norm!r}: expected 'utterance' or 'none'")
        if self.n_mels % (2 ** (len(self.channels) + 1)) != 0:
            raise ConfigError(
                f"n_mels={self.n_mels} must be divisible by 2**(len(channels)+1)="
                f"{2 ** (len(self.channels) + 1)}: change n_mels or the number of stages"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FlagshipConfig:
        d = dict(d)
        if "channels" in d:
            d["channels"] = tuple(d["channels"])
        return cls(**d)


def make_frontend(cfg: FlagshipConfig) -> LogMelFrontend:
    """The log-mel front end of ``cfg``: natural log of mel power, no ``top_db``.

    Conv1d-DFT STFT (ONNX exports it as a plain ``Conv``), ``n_fft`` = window.
    Output ``(batch, n_mels, frames)`` with ``frames = 1 + n // hop``.
    """
    win = int(round(cfg.win_s * cfg.sample_rate_hz))
    hop = int(round(cfg.hop_s * cfg.sample_rate_hz))
    return LogMelFrontend(
        cfg.sample_rate_hz,
        n_fft=win,
        hop_length=hop,
        n_mels=cfg.n_mels,
        f_min_hz=cfg.fmin_hz,
        f_max_hz=cfg.fmax_hz,
        log="log",
        top_db=None,
        amin=1e-6,
        stft="conv",
    )


class UtteranceNorm(nn.Module):
    """Per-utterance, per-band mean/variance normalisation over time."""

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, F, T)
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps)


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip = None
        if c_in != c_out or stride != (1, 1):
            self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.skip is None else self.skip(x)
        return F.relu(y + s)


class AttentiveStatsPool(nn.Module):
    """Attentive statistics pooling: ``(B, C, T)`` -> ``(B, 2C)``."""

    def __init__(self, channels: int, hidden: int = 64) -> None:
        super().__init__()
        self.att = nn.Sequential(nn.Conv1d(channels, hidden, 1), nn.Tanh(), nn.Conv1d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.att(x), dim=-1)
        mu = (x * w).sum(dim=-1)
        var = (x * x * w).sum(dim=-1) - mu * mu
        return torch.cat([mu, torch.sqrt(var.clamp(min=1e-5))], dim=1)


class FlagshipNet(nn.Module):
    """Waveform ``(batch, n)`` float32 @ 16 kHz -> logits ``(batch, n_classes)``.

    Submodules in order: ``frontend`` (:func:`make_frontend`), ``norm``
    (:class:`UtteranceNorm` or identity), ``stem`` + ``stages`` (2-D residual
    CNN), ``proj`` (1-D), ``pool`` (:class:`AttentiveStatsPool`), ``head``.
    """

    def __init__(self, config: FlagshipConfig | None = None) -> None:
        super().__init__()
        cfg = config or FlagshipConfig()
        self.config = cfg
        self.frontend = make_frontend(cfg)
        self.norm = UtteranceNorm() if cfg.norm == "utterance" else nn.Identity()
        self.input_bn = nn.BatchNorm2d(1)
        self.stem = nn.Sequential(
            nn.Conv2d(1, cfg.stem_channels, 3, stride=(2, cfg.stem_time_stride), padding=1, bias=False),
            nn.BatchNorm2d(cfg.stem_channels),
            nn.ReLU(),
        )
        stages = []
        c = cfg.stem_channels
        for i, c_out in enumerate(cfg.channels):
            stride = (2, 2) if i < len(cfg.channels) - 1 else (2, 1)
            stages.append(_ResBlock(c, c_out, stride))
            c = c_out
        self.stages = nn.Sequential(*stages)
        f_out = cfg.n_mels // (2 ** (len(cfg.channels) + 1))
        self.proj = nn.Sequential(
            nn.Conv1d(c * f_out, cfg.embed_dim, 1, bias=False),
            nn.BatchNorm1d(cfg.embed_dim),
            nn.ReLU(),
        )
        self.pool = AttentiveStatsPool(cfg.embed_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(2 * cfg.embed_dim, cfg.n_classes)

    def forward_logmel(self, logmel: torch.Tensor) -> torch.Tensor:
        """Logits from un-normalised log-mel ``(batch, n_mels, frames)``."""
        return self.forward_normalized(self.norm(logmel))

    def forward_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from normalised log-mel ``(batch, n_mels, frames)`` (after ``self.norm``)."""
        x = self.input_bn(x.unsqueeze(1))
        x = self.stages(self.stem(x))  # (B, C, F', T')
        b, c, f, t = x.shape
        x = self.proj(x.reshape(b, c * f, t))
        return self.head(self.drop(self.pool(x)))

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel ``(batch, n_mels, frames)`` (the training engine's spec hook point)."""
        return self.norm(self.frontend(wave))

    def classify(self, feats: torch.Tensor) -> torch.Tensor:
        """Logits from :meth:`features` output."""
        return self.forward_normalized(feats)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.forward_logmel(self.frontend(wave))


def build_flagship(n_classes: int = 8, **overrides) -> FlagshipNet:
    """Build a :class:`FlagshipNet` for ``n_classes`` with config overrides."""
    return FlagshipNet(FlagshipConfig(n_classes=n_classes, **overrides))


def flagship_from_spec(spec, **params) -> FlagshipNet:
    """Registry builder: a :class:`FlagshipNet` sized for a ``TaskSpec``.

    ``params`` are :class:`FlagshipConfig` fields (``channels``, ``embed_dim``, ...).
    """
    if getattr(spec, "input_kind", "waveform") != "waveform":
        raise ConfigError(f"the flagship takes waveforms; got a TaskSpec with input_kind={spec.input_kind!r}")
    return FlagshipNet(FlagshipConfig(n_classes=len(spec.labels), sample_rate_hz=spec.sample_rate_hz, **params))


from emovox.models.registry import register_architecture  # noqa: E402

register_architecture("flagship", flagship_from_spec)
