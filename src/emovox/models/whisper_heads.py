"""Heads over pooled Whisper hidden states beyond the linear probe, and the model that carries them.

A head reads the per-clip statistics of :func:`~emovox.models.whisper_classifier.pool_hidden_states`
(mean and std over frames of each chosen hidden state, ``(batch, n_layers_in, 2, d_model)``),
standardises them with the training rows' mean and scale and maps them to logits:

- ``kind="weighted"``: a learned softmax-weighted sum over the layers (one
  weight per hidden state, as in SUPERB-style probes), then a one-hidden-layer
  MLP on the ``2 * d_model`` result;
- ``kind="mlp"``: the same MLP on all layers' statistics concatenated
  (``n_layers_in * 2 * d_model`` inputs);
- ``kind="linear"``: one linear layer on the concatenated statistics (the
  logistic regression of :func:`emovox.training.whisper_fit.fit_linear_head`,
  loaded with :meth:`PooledHead.from_linear_fit`).

:func:`emovox.training.whisper_fit.fit_pooled_head` trains it (AdamW,
class-balanced cross-entropy, the one training loop; epochs chosen by an inner
speaker-disjoint k-fold) and returns a :class:`PooledHeadFit`.

:class:`WhisperHeadClassifier` (architecture ``"whisper-head"``) is the whole
waveform-to-logits module: Whisper log-mel, the encoder **truncated to the
deepest hidden state the head reads** (``model.layers``, ``model.depth``: a
head on states 0..4 of Whisper base runs 4 of its 6 blocks), pooling, an
optional per-speaker offset (``--adapt``, see :meth:`WhisperHeadClassifier.set_speaker_offset`)
and the head. Pure torch; exports to ONNX like ``whisper-linear``.

Speaker-adaptive normalisation
(:func:`emovox.inference.adaptation.speaker_centred` and
:func:`~emovox.inference.adaptation.speaker_offset`, the one implementation of
speaker centring): each speaker's pooled rows minus the mean of ``k`` unlabelled
clips of that speaker. A model trained on centred rows needs such an offset for
every new speaker (computed above this layer, e.g. by
:func:`emovox.recipes.whisper.adapt_to_speaker`), so it is a separate,
explicitly labelled option, never the default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from emovox.errors import ConfigError
from emovox.models.whisper_encoder import WhisperEncoder, WhisperEncoderConfig, WhisperLogMel
from emovox.models.whisper_pooling import pool_hidden_states

__all__ = [
    "HEAD_KINDS",
    "PooledHead",
    "PooledHeadFit",
    "WhisperHeadClassifier",
    "EPOCH_GRID",
]

HEAD_KINDS = ("linear", "weighted", "mlp")
#: Candidate epoch counts scored by the inner CV of :func:`emovox.training.whisper_fit.fit_pooled_head`.
EPOCH_GRID = (10, 20, 40, 80)


class _Member(nn.Module):
    """One head: optional softmax layer weights, then Linear -> GELU -> Dropout -> Linear (or one Linear)."""

    def __init__(
        self, n_layers_in: int, d_model: int, n_classes: int, *, kind: str, hidden: int, dropout: float
    ) -> None:
        super().__init__()
        self.kind = kind
        if kind == "weighted":
            self.layer_logits = nn.Parameter(torch.zeros(n_layers_in))
            n_in = 2 * d_model
        else:
            n_in = n_layers_in * 2 * d_model
        if kind == "linear":
            self.fc = nn.Linear(n_in, n_classes)
            return
        self.drop_in = nn.Dropout(dropout)
        self.fc1 = nn.Linear(n_in, hidden)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear":
            return self.fc(z.flatten(1))
        if self.kind == "weighted":
            w = torch.softmax(self.layer_logits, dim=0)
            z = (z * w[None, :, None, None]).sum(dim=1)
        return self.fc2(self.drop(F.gelu(self.fc1(self.drop_in(z.flatten(1))))))


class PooledHead(nn.Module):
    """Standardised pooled statistics ``(batch, n_layers_in, 2, d_model)`` -> logits ``(batch, n_classes)``.

    ``n_members`` independently initialised heads are averaged (logits mean).
    Buffers ``feature_mean`` / ``feature_scale`` ``(n_layers_in, 2, d_model)``
    hold the training rows' statistics.
    """

    feature_mean: torch.Tensor
    feature_scale: torch.Tensor

    def __init__(
        self,
        n_layers_in: int,
        d_model: int,
        n_classes: int,
        *,
        kind: str = "weighted",
        hidden: int = 256,
        dropout: float = 0.3,
        n_members: int = 1,
    ) -> None:
        super().__init__()
        if kind not in HEAD_KINDS:
            raise ConfigError(f"head kind {kind!r} is not one of {', '.join(HEAD_KINDS)}")
        if hidden < 1 or n_members < 1 or not 0.0 <= dropout < 1.0:
            raise ConfigError(f"head sizes hidden={hidden}, n_members={n_members}, dropout={dropout} are invalid")
        self.register_buffer("feature_mean", torch.zeros(n_layers_in, 2, d_model))
        self.register_buffer("feature_scale", torch.ones(n_layers_in, 2, d_model))
        self.members = nn.ModuleList(
            _Member(n_layers_in, d_model, n_classes, kind=kind, hidden=hidden, dropout=dropout)
            for _ in range(n_members)
        )

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        z = (pooled - self.feature_mean) / self.feature_scale
        logits = [m(z) for m in self.members]
        return logits[0] if len(logits) == 1 else torch.stack(logits).mean(dim=0)

    @classmethod
    def from_linear_fit(cls, fit, d_model: int) -> PooledHead:
        """A ``linear`` head holding a :class:`~emovox.models.whisper_classifier.HeadFit` (scaler + logistic regression)."""
        n_layers_in = len(fit.layers)
        head = cls(n_layers_in, d_model, fit.coef.shape[0], kind="linear")
        with torch.no_grad():
            head.feature_mean.copy_(torch.from_numpy(np.asarray(fit.mean, np.float32)).view(n_layers_in, 2, d_model))
            head.feature_scale.copy_(torch.from_numpy(np.asarray(fit.scale, np.float32)).view(n_layers_in, 2, d_model))
            fc = cast(nn.Linear, head.members[0].fc)  # kind="linear": one member, a single nn.Linear
            fc.weight.copy_(torch.from_numpy(np.asarray(fit.coef, np.float32)))
            fc.bias.copy_(torch.from_numpy(np.asarray(fit.intercept, np.float32)))
        return head.eval()

    def layer_weights(self) -> np.ndarray:
        """Softmax layer weights ``(n_members, n_layers_in)`` of a ``weighted`` head (empty for ``mlp``)."""
        members = cast(Sequence[_Member], self.members)  # built from _Member only
        rows = [torch.softmax(m.layer_logits.detach(), 0).numpy() for m in members if m.kind == "weighted"]
        return np.array(rows)


@dataclass
class PooledHeadFit:
    """A trained :class:`PooledHead` with its layer set, settings and inner-CV figures."""

    layers: tuple[int, ...]
    n_classes: int
    settings: dict
    state: dict = field(repr=False)
    epochs: int
    inner_uar: float
    inner_uar_by_epochs: dict
    #: Logits of each training row from the inner fold that held it out (chosen epochs), for calibration.
    oof_logits: np.ndarray | None = field(default=None, repr=False)

    def module(self) -> PooledHead:
        head = PooledHead(len(self.layers), int(self.state["feature_mean"].shape[-1]), self.n_classes, **self.settings)
        head.load_state_dict(self.state)
        return head.eval()

    def logits(self, pooled: np.ndarray, *, batch: int = 512) -> np.ndarray:
        """Logits ``(n, n_classes)`` of pooled features ``(n, n_states, 2, d_model)``."""
        head = self.module()
        rows = np.asarray(pooled)[:, list(self.layers)]
        with torch.inference_mode():
            return (
                np.concatenate(
                    [
                        head(torch.from_numpy(np.ascontiguousarray(rows[i : i + batch], np.float32))).numpy()
                        for i in range(0, len(rows), batch)
                    ]
                )
                if len(rows)
                else np.zeros((0, 0))
            )


class WhisperHeadClassifier(nn.Module):
    """Waveform ``(batch, n)`` at 16 kHz -> logits ``(batch, n_classes)`` through a truncated encoder and a pooled head.

    Parameters
    ----------
    n_classes : int
    encoder : Mapping
        The full encoder's :class:`WhisperEncoderConfig` sizes.
    layers : sequence of int
        Hidden states the head reads (0 = after the positions, ``n_layers`` =
        after the final LayerNorm). Only blocks ``1..max(layers)`` are built
        and run (``self.depth``); the final LayerNorm only when the last state is read.
    head : Mapping
        :class:`PooledHead` settings (``kind``, ``hidden``, ``dropout``, ``n_members``).

    Notes
    -----
    Buffer ``speaker_offset`` ``(len(layers), 2, d_model)`` (zeros unless set by
    :meth:`set_speaker_offset` for a model trained with ``--adapt``) is
    subtracted from the pooled statistics.
    """

    speaker_offset: torch.Tensor

    def __init__(
        self, n_classes: int, *, encoder: Mapping, layers: Sequence[int], head: Mapping, adapt: bool = False
    ) -> None:
        super().__init__()
        config = WhisperEncoderConfig.from_dict(encoder, source="architecture params 'encoder'")
        layers = tuple(int(i) for i in layers)
        if not layers or any(not 0 <= i <= config.n_layers for i in layers) or len(set(layers)) != len(layers):
            raise ConfigError(f"layers={list(layers)} must be distinct hidden-state indices in 0..{config.n_layers}")
        self.layers = layers
        self.depth = max(layers)
        self.adapt = bool(adapt)
        self.frontend = WhisperLogMel(config.n_mels)
        self.encoder = WhisperEncoder(_truncated_config(config, self.depth)).requires_grad_(False)
        if self.depth == 0:
            self.encoder.layers = nn.ModuleList()
        # the encoder's own forward is exact when it runs every block it was built with and knows
        # whether to end in the final LayerNorm; otherwise (depth 0, or an encoder module without
        # the final_layer_norm setting) the states are computed here
        self._own_forward = self.depth >= 1 and (self.depth == config.n_layers or _HAS_FINAL_NORM_FLAG)
        self.head = PooledHead(len(layers), config.d_model, n_classes, **dict(head))
        self.register_buffer("speaker_offset", torch.zeros(len(layers), 2, config.d_model))

    def hidden_states(self, mel: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Hidden states ``0..depth``, each ``(batch, frames, d_model)``, as the full encoder computes them."""
        if self._own_forward:
            return self.encoder(mel)
        enc = self.encoder
        x = F.gelu(enc.conv2(F.gelu(enc.conv1(mel)))).transpose(1, 2)
        x = x + enc.embed_positions[: x.shape[1]]
        states = [x]
        for block in enc.layers:
            x = block(x)
            states.append(x)
        return tuple(states)

    def pooled(self, y: torch.Tensor) -> torch.Tensor:
        """Pooled statistics of the head's layers: ``(batch, len(layers), 2, d_model)``."""
        if y.ndim == 1:
            y = y.unsqueeze(0)
        return pool_hidden_states(self.hidden_states(self.frontend(y)))[:, list(self.layers)]

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled(y) - self.speaker_offset)

    @torch.no_grad()
    def set_speaker_offset(self, offset: torch.Tensor | np.ndarray | None) -> None:
        """``--adapt``: set the speaker offset subtracted from the pooled statistics.

        ``offset``: ``(len(layers), 2, d_model)``, one speaker's
        :func:`emovox.inference.adaptation.speaker_offset` of the :meth:`pooled`
        rows of a few of their unlabelled clips (what
        :func:`emovox.recipes.whisper.adapt_to_speaker` computes); ``None``
        resets it to zero. Only meaningful for a model trained with ``adapt=True``.
        """
        if offset is None:
            self.speaker_offset.zero_()
            return
        value = torch.as_tensor(offset, dtype=torch.float32)
        if value.shape != self.speaker_offset.shape:
            raise ConfigError(
                f"speaker offset of shape {tuple(value.shape)}: this model needs "
                f"{tuple(self.speaker_offset.shape)} (len(layers), 2, d_model)"
            )
        self.speaker_offset.copy_(value)

    def load_encoder(self, state: Mapping[str, torch.Tensor]) -> None:
        """Copy the needed tensors of an encoder's state dict (blocks beyond ``depth`` are ignored)."""
        own = self.encoder.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise ConfigError(f"the encoder weights lack {missing[:3]} needed for hidden states {list(self.layers)}")
        self.encoder.load_state_dict({k: state[k] for k in own}, strict=True)


_HAS_FINAL_NORM_FLAG = "final_layer_norm" in {f.name for f in dataclasses.fields(WhisperEncoderConfig)}


def _truncated_config(config: WhisperEncoderConfig, depth: int) -> WhisperEncoderConfig:
    """Sizes of the first ``depth`` blocks; no final LayerNorm unless the last state of ``config`` is read."""
    if depth == config.n_layers:
        return config
    values = {**config.to_dict(), "n_layers": max(depth, 1)}
    if _HAS_FINAL_NORM_FLAG:
        values["final_layer_norm"] = False
    return WhisperEncoderConfig(**values)


def build_whisper_head(
    spec, *, encoder: Mapping, layers: Sequence[int], head: Mapping, adapt: bool = False
) -> WhisperHeadClassifier:
    """Registry builder (architecture ``"whisper-head"``)."""
    return WhisperHeadClassifier(spec.n_classes, encoder=encoder, layers=layers, head=head, adapt=adapt)


def _register() -> None:
    from emovox.models.registry import register_architecture

    register_architecture("whisper-head", build_whisper_head)


_register()
