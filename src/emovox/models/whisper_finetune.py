"""A Whisper encoder whose top blocks are fine-tuned for emotion (architecture ``"whisper-finetune"``).

:class:`WhisperFinetuneClassifier` is one ``torch.nn.Module`` from waveform to
logits, saved as an ordinary emovox artifact and loaded by
:class:`emovox.inference.Predictor` (variable length up to 30 s,
``preprocessing.crop = "none"``)::

    waveform -> Whisper log-mel -> conv + positions -> blocks 1..L (frozen)          [frontend, encoder]
             -> blocks L+1..K (trained, or frozen with LoRA adapters on q/v)          [top.blocks]
             -> final LayerNorm when K is the encoder's last block                     [top.layer_norm]
             -> mean and std over frames of the hidden states in ``layers`` (0..K)    [pooling]
             -> standardised with the training clips' statistics                      [top.feature_*]
             -> concatenated, or a learned softmax weighting of the states            [top.layer_logits]
             -> dropout -> linear head                                                [top.head]

``K`` is ``depth`` (default: every block of the encoder; the shipped default
model reads states ``0..4`` of Whisper base, so its recipe uses ``depth=4``)
and ``L = K - top_blocks``. Hidden-state indices follow
:class:`~emovox.models.whisper_encoder.WhisperEncoder`: ``0`` after the
positions, ``i`` after block ``i``. ``layers`` (default all of ``0..K``, as the
shipped linear probe) may include states of the frozen blocks: they are
pooled as they are.

Two entry points: ``model(y)`` on waveforms, and :meth:`~WhisperFinetuneClassifier.forward_states`
on frame states ``(batch, frames, n_in * d_model)``: the states of the frozen
blocks that are pooled (``model.lower_layers``, in order) and the states of
block ``L`` last, concatenated along channels (``n_in = len(lower_layers) + 1``;
just ``(batch, frames, d_model)``, the states of block ``L``, when ``layers``
are all in ``L..K``). That is what the training runs on: the frozen blocks'
states are computed once and cached (:mod:`emovox.recipes.whisper_finetune`),
and a crop of frames of them is a crop of the clip for the top blocks and
the pooling alike. The trainable part is the submodule ``model.top``
(:class:`FinetuneTop`): it takes those states, it is what the training
engine trains and checkpoints, and its :meth:`~FinetuneTop.optimizer_groups`
gives the layer-wise learning rates (:func:`emovox.training.optim.make_optimizer`
uses them).

Options: ``lora_rank`` > 0 freezes the top blocks and adds low-rank adapters
(``W x + (alpha / r) B A x``, ``B`` initialised to zero, so an untrained
adapter changes nothing) on their query and value projections;
``checkpointing`` recomputes each top block in the backward pass
(:func:`torch.utils.checkpoint.checkpoint`, ``use_reentrant=False``) instead
of keeping its activations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from emovox.errors import ConfigError, FeatureError
from emovox.models.whisper_encoder import (
    HOP_LENGTH,
    SAMPLE_RATE_HZ,
    EncoderBlock,
    WhisperEncoder,
    WhisperEncoderConfig,
    WhisperLogMel,
)
from emovox.models.whisper_pooling import pool_hidden_states

__all__ = [
    "ARCHITECTURE",
    "POOLINGS",
    "FinetuneTop",
    "LoRALinear",
    "WhisperFinetuneClassifier",
    "build_whisper_finetune",
    "finetune_params",
]

ARCHITECTURE = "whisper-finetune"
POOLINGS = ("concat", "weighted")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update: ``base(x) + (alpha / rank) * x A^T B^T``.

    ``lora_a`` ``(rank, in)`` is initialised as ``nn.Linear`` weights are,
    ``lora_b`` ``(out, rank)`` to zero.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.rank = int(rank)
        self.scaling = float(alpha) / self.rank
        self.lora_a = nn.Parameter(torch.empty(self.rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, self.rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(x, self.lora_a), self.lora_b) * self.scaling


class FinetuneTop(nn.Module):
    """Frame states ``(batch, frames, n_in * d_model)`` -> logits ``(batch, n_classes)``.

    The trainable part of :class:`WhisperFinetuneClassifier` (see the module
    docstring): the input holds the pooled frozen states ``lower_layers`` and
    the states of block ``split`` (last). ``blocks[j]`` is encoder block ``split + 1 + j``.
    """

    feature_mean: torch.Tensor
    feature_scale: torch.Tensor

    def __init__(
        self,
        config: WhisperEncoderConfig,
        n_classes: int,
        *,
        split: int,
        depth: int,
        layers: Sequence[int],
        pooling: str,
        lora_rank: int,
        lora_alpha: float,
        dropout: float,
        checkpointing: bool,
    ) -> None:
        super().__init__()
        self.split = split
        self.depth = depth
        self.layers = tuple(layers)
        self.lower_layers = tuple(i for i in self.layers if i < split)
        self.d_model = config.d_model
        self.pooling = pooling
        self.checkpointing = bool(checkpointing)
        self.blocks = nn.ModuleList(EncoderBlock(config.d_model, config.n_heads) for _ in range(depth - split))
        self.final_norm = depth == config.n_layers and config.final_layer_norm
        if self.final_norm:
            self.layer_norm = nn.LayerNorm(config.d_model)
        self.lora_rank = int(lora_rank)
        if self.lora_rank:
            self.requires_grad_(False)  # the blocks (and the final norm) stay as they are; adapters learn
            for block in self.blocks:
                attn = cast(Any, block).self_attn
                attn.q_proj = LoRALinear(attn.q_proj, self.lora_rank, lora_alpha)
                attn.v_proj = LoRALinear(attn.v_proj, self.lora_rank, lora_alpha)
        n_in = len(self.layers)
        self.register_buffer("feature_mean", torch.zeros(n_in, 2, config.d_model))
        self.register_buffer("feature_scale", torch.ones(n_in, 2, config.d_model))
        if pooling == "weighted":
            self.layer_logits = nn.Parameter(torch.zeros(n_in))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear((1 if pooling == "weighted" else n_in) * 2 * config.d_model, n_classes)

    def hidden_states(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Hidden states by index: ``lower_layers`` as given, ``split..depth`` computed from the states of block ``split``."""
        n_in = len(self.lower_layers) + 1
        if x.ndim != 3 or x.shape[-1] != n_in * self.d_model:
            raise FeatureError(
                f"expected frame states (batch, frames, {n_in} * {self.d_model}) of hidden states "
                f"{[*self.lower_layers, self.split]}, got {tuple(x.shape)}"
            )
        parts = x.split(self.d_model, dim=-1)
        states = dict(zip(self.lower_layers, parts[:-1]))
        h = states[self.split] = parts[-1]
        grad = self.checkpointing and self.training and torch.is_grad_enabled()
        for j, block in enumerate(self.blocks):
            h = checkpoint(block, h, use_reentrant=False) if grad else block(h)
            states[self.split + 1 + j] = h
        if self.final_norm:
            states[self.depth] = self.layer_norm(h)
        return states

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """The head's input ``(batch, n_features)``: standardised pooled statistics, concatenated or weighted."""
        states = self.hidden_states(x)
        z = (pool_hidden_states([states[i] for i in self.layers]) - self.feature_mean) / self.feature_scale
        if self.pooling == "weighted":
            z = (z * torch.softmax(self.layer_logits, dim=0)[None, :, None, None]).sum(dim=1)
        return z.flatten(1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.embedding(h)))

    def optimizer_groups(self, lr: float, *, encoder_lr_scale: float = 1.0, layer_decay: float = 1.0) -> list[dict]:
        """Parameter groups: the head (and layer weights) at ``lr``, block ``i`` at ``lr * encoder_lr_scale * layer_decay ** (depth - i)``.

        The final LayerNorm goes with block ``depth``. Only trainable
        parameters are listed (with LoRA: the adapters and the head); groups
        without any are left out. Each group has a ``name`` (``"head"``,
        ``"block3"``, ...).
        """
        head = [p for name, p in self.named_parameters() if not name.startswith(("blocks.", "layer_norm."))]
        groups = [{"name": "head", "params": [p for p in head if p.requires_grad], "lr": float(lr)}]
        for j, block in enumerate(self.blocks):
            index = self.split + 1 + j
            params = list(block.parameters())
            if index == self.depth and self.final_norm:
                params += list(self.layer_norm.parameters())
            groups.append(
                {
                    "name": f"block{index}",
                    "params": [p for p in params if p.requires_grad],
                    "lr": float(lr) * encoder_lr_scale * layer_decay ** (self.depth - index),
                }
            )
        return [g for g in groups if g["params"]]


class WhisperFinetuneClassifier(nn.Module):
    """Waveform ``(batch, n)`` at 16 kHz -> logits ``(batch, n_classes)``, Whisper's top blocks fine-tuned.

    Parameters
    ----------
    n_classes : int
    encoder : Mapping
        The whole encoder's :class:`WhisperEncoderConfig` sizes.
    depth : int, optional
        Blocks run (``K``); default every block of ``encoder``.
    top_blocks : int
        Blocks trained (``K - L``), ``1..depth``.
    layers : sequence of int, optional
        Hidden states pooled, in ``0..K``; default all of them.
    pooling : {"concat", "weighted"}
        Concatenate the states' statistics, or learn a softmax weighting of them.
    lora_rank : int
        0: the top blocks are trained; ``r > 0``: they stay frozen and LoRA
        adapters of rank ``r`` (scale ``lora_alpha / r``) on their q/v projections learn.
    lora_alpha : float
    dropout : float
        Dropout on the head's input.
    checkpointing : bool
        Gradient checkpointing of the top blocks in training.

    Notes
    -----
    The clips of one batch must have equal length (no mask); up to 30 s.
    """

    def __init__(
        self,
        n_classes: int,
        *,
        encoder: Mapping,
        depth: int | None = None,
        top_blocks: int = 1,
        layers: Sequence[int] | None = None,
        pooling: str = "concat",
        lora_rank: int = 0,
        lora_alpha: float = 16.0,
        dropout: float = 0.0,
        checkpointing: bool = False,
    ) -> None:
        super().__init__()
        config = WhisperEncoderConfig.from_dict(encoder, source="architecture params 'encoder'")
        depth = config.n_layers if depth is None else depth
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= config.n_layers:
            raise ConfigError(f"depth={depth!r} must be a number of blocks in 1..{config.n_layers}")
        if isinstance(top_blocks, bool) or not isinstance(top_blocks, int) or not 1 <= top_blocks <= depth:
            raise ConfigError(f"top_blocks={top_blocks!r} must be in 1..depth={depth}")
        split = depth - top_blocks
        layers = tuple(range(depth + 1)) if layers is None else tuple(int(i) for i in layers)
        if not layers or len(set(layers)) != len(layers) or any(not 0 <= i <= depth for i in layers):
            raise ConfigError(f"layers={list(layers)} must be distinct hidden-state indices in 0..{depth}")
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling={pooling!r} is not one of {', '.join(POOLINGS)}")
        if isinstance(lora_rank, bool) or not isinstance(lora_rank, int) or lora_rank < 0:
            raise ConfigError(f"lora_rank={lora_rank!r} must be 0 (train the blocks) or a positive rank")
        if not (isinstance(lora_alpha, (int, float)) and lora_alpha > 0) or not 0.0 <= dropout < 1.0:
            raise ConfigError(f"lora_alpha={lora_alpha!r} must be positive and dropout={dropout!r} in [0, 1)")
        self.config = config
        self.depth = depth
        self.split = split
        self.layers = layers
        self.lower_layers = tuple(i for i in layers if i < split)
        self.frontend = WhisperLogMel(config.n_mels)
        lower = WhisperEncoderConfig(**{**config.to_dict(), "n_layers": max(split, 1), "final_layer_norm": False})
        self.encoder = WhisperEncoder(lower).requires_grad_(False)
        if split == 0:
            self.encoder.layers = nn.ModuleList()
        self.top = FinetuneTop(
            config,
            n_classes,
            split=split,
            depth=depth,
            layers=layers,
            pooling=pooling,
            lora_rank=lora_rank,
            lora_alpha=float(lora_alpha),
            dropout=float(dropout),
            checkpointing=checkpointing,
        )

    # ------------------------------------------------------------------ forward
    def lower_states(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``(batch, n_mels, frames)`` -> what :meth:`forward_states` takes, ``(batch, ceil(frames / 2), n_in * d_model)``.

        The states ``lower_layers`` and those of block ``split``, concatenated along channels.
        """
        enc = self.encoder
        if mel.ndim != 3 or mel.shape[1] != self.config.n_mels or not 1 <= mel.shape[2] <= 2 * self.config.n_ctx:
            raise FeatureError(
                f"expected a log-mel (batch, {self.config.n_mels}, 1..{2 * self.config.n_ctx}), got {tuple(mel.shape)}: "
                f"clips must be at most {2 * self.config.n_ctx * HOP_LENGTH / SAMPLE_RATE_HZ:g} s"
            )
        x = F.gelu(enc.conv2(F.gelu(enc.conv1(mel)))).transpose(1, 2)
        x = x + enc.embed_positions[: x.shape[1]]
        kept = [x] if 0 in self.lower_layers else []
        for i, block in enumerate(enc.layers, start=1):
            x = block(x)
            if i in self.lower_layers:
                kept.append(x)
        return torch.cat([*kept, x], dim=-1) if kept else x

    def frame_states(self, y: torch.Tensor) -> torch.Tensor:
        """Waveform ``(batch, n)`` or ``(n,)`` -> the states :meth:`forward_states` takes."""
        if y.ndim == 1:
            y = y.unsqueeze(0)
        return self.lower_states(self.frontend(y))

    def forward_states(self, h: torch.Tensor) -> torch.Tensor:
        """Frame states ``(batch, frames, n_in * d_model)`` (:meth:`lower_states`) -> logits (the cached-training path)."""
        return self.top(h)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.top(self.frame_states(y))

    # ------------------------------------------------------------------ building
    def load_encoder(self, state: Mapping[str, torch.Tensor]) -> None:
        """Copy a whole encoder's weights: its first ``split`` blocks into ``encoder``, the next ones into ``top``.

        ``state`` is a :class:`WhisperEncoder` state dict (blocks beyond
        ``depth`` are ignored). LoRA adapters keep their initialisation.
        """
        own = self.encoder.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise ConfigError(f"the encoder weights lack {missing[:3]}")
        self.encoder.load_state_dict({k: state[k] for k in own}, strict=True)
        with torch.no_grad():
            for j, block in enumerate(self.top.blocks):
                prefix = f"layers.{self.split + j}."
                for name, tensor in block.state_dict().items():
                    source = prefix + name.replace(".base.", ".")
                    if source not in state:
                        if ".lora_" in name:
                            continue
                        raise ConfigError(f"the encoder weights lack {source!r} for block {self.split + 1 + j}")
                    tensor.copy_(state[source])
            if self.top.final_norm:
                self.top.layer_norm.weight.copy_(state["layer_norm.weight"])
                self.top.layer_norm.bias.copy_(state["layer_norm.bias"])

    @torch.no_grad()
    def set_standardiser(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        """Set the pooled statistics' mean and scale ``(len(layers), 2, d_model)`` (scales under 1e-8 become 1)."""
        mean = torch.as_tensor(mean, dtype=torch.float32)
        scale = torch.as_tensor(scale, dtype=torch.float32).clone()
        if mean.shape != self.top.feature_mean.shape or scale.shape != self.top.feature_scale.shape:
            raise ConfigError(
                f"standardiser shapes {tuple(mean.shape)}, {tuple(scale.shape)}: expected "
                f"{tuple(self.top.feature_mean.shape)}"
            )
        scale[scale < 1e-8] = 1.0
        self.top.feature_mean.copy_(mean)
        self.top.feature_scale.copy_(scale)


def finetune_params(
    encoder: Mapping,
    *,
    depth: int | None = None,
    top_blocks: int = 1,
    layers: Sequence[int] | None = None,
    pooling: str = "concat",
    lora_rank: int = 0,
    lora_alpha: float = 16.0,
    dropout: float = 0.0,
    checkpointing: bool = False,
) -> dict[str, Any]:
    """The artifact's ``architecture.params`` of a model (JSON-able, ``depth`` and ``layers`` resolved)."""
    config = WhisperEncoderConfig.from_dict(encoder, source="encoder")
    depth = config.n_layers if depth is None else int(depth)
    return {
        "encoder": config.to_dict(),
        "depth": depth,
        "top_blocks": int(top_blocks),
        "layers": list(range(depth + 1)) if layers is None else [int(i) for i in layers],
        "pooling": pooling,
        "lora_rank": int(lora_rank),
        "lora_alpha": float(lora_alpha),
        "dropout": float(dropout),
        "checkpointing": bool(checkpointing),
    }


def build_whisper_finetune(
    spec,
    *,
    encoder: Mapping,
    depth: int | None = None,
    top_blocks: int = 1,
    layers: Sequence[int] | None = None,
    pooling: str = "concat",
    lora_rank: int = 0,
    lora_alpha: float = 16.0,
    dropout: float = 0.0,
    checkpointing: bool = False,
) -> WhisperFinetuneClassifier:
    """Registry builder (architecture ``"whisper-finetune"``)."""
    return WhisperFinetuneClassifier(
        spec.n_classes,
        encoder=encoder,
        depth=depth,
        top_blocks=top_blocks,
        layers=layers,
        pooling=pooling,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        dropout=dropout,
        checkpointing=checkpointing,
    )


def _register() -> None:
    from emovox.models.registry import register_architecture

    register_architecture(ARCHITECTURE, build_whisper_finetune)


_register()
