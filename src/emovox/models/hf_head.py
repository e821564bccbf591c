"""Emotion heads on a frozen Hugging Face speech encoder: architecture ``"hf-head"``.

:class:`HFHeadClassifier` is one ``torch.nn.Module`` from a 16 kHz waveform
``(batch, samples)`` to logits ``(batch, n_classes)``, so it saves as an
ordinary emovox artifact (``model.safetensors`` + ``config.json``) and
predicts through :class:`emovox.inference.Predictor` everywhere a model is
loaded (``emovox predict``, ``emovox serve``, streaming, ``emovox batch``).
The artifact stores the encoder's ``transformers`` config in its
architecture parameters and the encoder's weights with the head's, so loading
it needs ``transformers`` but not the original model folder.

Per clip:

1. :class:`~emovox.models.hf_encoder.HFEncoder`: every hidden state
   ``(batch, n_layers + 1, frames, d_model)``;
2. the hidden states listed in ``layers`` are combined (``weighting``):

   - ``"concat"``: each is pooled on its own and the results concatenated
     (``len(layers) * 2 * d_model`` values; what the closed-form recipe
     ``hf-linear`` fits a logistic regression on);
   - ``"softmax"``: a learned softmax-weighted sum of the states (one weight
     per state, as in SUPERB probes), then pooled (``2 * d_model`` values);

3. pooling over frames (``pooling``): ``"mean-std"`` (mean and population
   standard deviation) or ``"attentive"`` (attentive statistics pooling: a
   small scorer's softmax over frames weights the mean and standard deviation;
   with ``weighting="softmax"`` only);
4. standardisation with the training rows' mean and scale (buffers), then the
   head (``head["kind"]``): ``"linear"`` or ``"mlp"`` (Linear, GELU, Dropout,
   Linear; ``head["hidden"]`` units).

:meth:`HFHeadClassifier.embedding` is step 1-3 (the head's input before
standardisation; the ONNX graph's ``embedding`` output, which speaker
adaptation reads) and :meth:`HFHeadClassifier.classify` step 4.

ONNX: the whole module exports with :func:`emovox.export.onnx.export_onnx`
(the encoder's blocks are traced; Whisper's log-mel switches to its conv1d
DFT). Checked for all five families with ``transformers`` 5 and torch 2.13.
A family listed in :data:`ONNX_UNSUPPORTED`, an encoder whose weights exceed
ONNX's 2 GB single-file limit, or a trace that fails inside ``transformers``
stops the export with one line naming the family and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from emovox.errors import ConfigError, ModelError
from emovox.models.hf_encoder import FAMILIES, HFEncoder, pool_states

__all__ = [
    "HFHeadClassifier",
    "AttentivePooling",
    "WEIGHTINGS",
    "POOLINGS",
    "HEAD_KINDS",
    "ONNX_UNSUPPORTED",
    "ONNX_MAX_BYTES",
    "build_hf_head",
]

WEIGHTINGS = ("concat", "softmax")
POOLINGS = ("mean-std", "attentive")
HEAD_KINDS = ("linear", "mlp")
#: model_type -> why it cannot be exported to ONNX (empty: all five families export with
#: transformers 5 / torch 2.13; an entry makes the export stop with that reason).
ONNX_UNSUPPORTED: dict[str, str] = {}
#: ONNX keeps a graph and its weights in one protobuf of at most 2 GiB (float32 weights here).
ONNX_MAX_BYTES = 2**31 - 2**26


class AttentivePooling(nn.Module):
    """Attentive statistics pooling: ``(batch, frames, d)`` -> weighted mean and std ``(batch, 2 * d)``.

    A scorer ``Linear(d, hidden) -> tanh -> Linear(hidden, 1)`` gives each frame a
    weight (softmax over frames); the mean and the standard deviation are taken
    under those weights.
    """

    def __init__(self, d_model: int, hidden: int = 128) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(d_model, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.score(h), dim=1)  # (batch, frames, 1)
        mean = (w * h).sum(dim=1)
        var = (w * (h - mean[:, None]) ** 2).sum(dim=1)
        return torch.cat([mean, torch.sqrt(var + 1e-8)], dim=-1)


def _check_choice(name: str, value: object, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(allowed)}")
    return str(value)


class HFHeadClassifier(nn.Module):
    """Waveform ``(batch, samples)`` at 16 kHz -> logits ``(batch, n_classes)``.

    Parameters
    ----------
    n_classes : int
    encoder : Mapping
        :meth:`HFEncoder.to_params`: ``model_type``, ``config`` (the
        ``transformers`` config as JSON), ``frontend``.
    layers : sequence of int
        Hidden states the head reads (0 = the first block's input,
        ``n_layers`` = the encoder's output), distinct.
    weighting : {"concat", "softmax"}
    pooling : {"mean-std", "attentive"}
    head : Mapping, optional
        ``{"kind": "linear"}`` (default) or ``{"kind": "mlp", "hidden": 256, "dropout": 0.2}``.

    Notes
    -----
    The clips of one batch must have equal length (no mask); at least 0.1 s.
    """

    feature_mean: torch.Tensor
    feature_scale: torch.Tensor

    def __init__(
        self,
        n_classes: int,
        *,
        encoder: Mapping[str, Any],
        layers: Sequence[int],
        weighting: str = "concat",
        pooling: str = "mean-std",
        head: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, Mapping) or not {"model_type", "config", "frontend"} <= set(encoder):
            raise ConfigError("encoder must hold model_type, config and frontend (HFEncoder.to_params())")
        self.weighting = _check_choice("weighting", weighting, WEIGHTINGS)
        self.pooling = _check_choice("pooling", pooling, POOLINGS)
        if self.pooling == "attentive" and self.weighting != "softmax":
            raise ConfigError("attentive pooling reads one weighted sequence: use weighting='softmax' with it")
        settings = {"kind": "linear", **dict(head or {})}
        kind = _check_choice("head kind", settings.pop("kind"), HEAD_KINDS)
        hidden, dropout = int(settings.pop("hidden", 256)), float(settings.pop("dropout", 0.2))
        if settings:
            raise ConfigError(f"head settings {sorted(settings)} are unknown: expected kind, hidden, dropout")
        if hidden < 1 or not 0.0 <= dropout < 1.0:
            raise ConfigError(f"head hidden={hidden}, dropout={dropout}: expected hidden >= 1 and 0 <= dropout < 1")
        self.encoder = HFEncoder(encoder["model_type"], encoder["config"], encoder["frontend"])
        n_states = self.encoder.n_states
        chosen = tuple(int(i) for i in layers)
        if not chosen or any(not 0 <= i < n_states for i in chosen) or len(set(chosen)) != len(chosen):
            raise ConfigError(f"layers={list(chosen)} must be distinct hidden-state indices in 0..{n_states - 1}")
        self.layers = chosen
        self.head_kind = kind
        d = self.encoder.d_model
        if self.weighting == "softmax":
            self.layer_logits = nn.Parameter(torch.zeros(len(chosen)))
            n_features = 2 * d
        else:
            n_features = len(chosen) * 2 * d
        if self.pooling == "attentive":
            self.attention = AttentivePooling(d)
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_scale", torch.ones(n_features))
        if kind == "linear":
            self.head: nn.Module = nn.Linear(n_features, n_classes)
        else:
            self.head = nn.Sequential(
                nn.Linear(n_features, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes)
            )

    @property
    def model_type(self) -> str:
        return self.encoder.model_type

    def layer_weights(self) -> torch.Tensor:
        """Weights of the chosen states ``(len(layers),)``: the learned softmax, or ones for ``concat``."""
        if self.weighting == "softmax":
            return torch.softmax(self.layer_logits, dim=0)
        return torch.ones(len(self.layers))

    def embedding(self, y: torch.Tensor) -> torch.Tensor:
        """Waveform ``(batch, samples)`` -> the head's input before standardisation ``(batch, n_features)``."""
        if y.ndim == 1:
            y = y.unsqueeze(0)
        if torch.onnx.is_in_onnx_export():
            self._check_export()
            try:
                states = self.encoder.hidden_states(y)
            except Exception as error:  # a trace that fails inside transformers: say which family
                raise ModelError(
                    f"hf-head with a {self._family()} encoder cannot be exported to ONNX with this transformers "
                    f"({type(error).__name__}: {str(error).strip().splitlines()[0][:160]}); predict with the torch backend"
                ) from None
        else:
            states = self.encoder.hidden_states(y)
        states = states[:, list(self.layers)]  # (batch, k, frames, d)
        if self.weighting == "concat":
            return pool_states(states).flatten(1)
        h = (states * torch.softmax(self.layer_logits, dim=0)[None, :, None, None]).sum(dim=1)
        if self.pooling == "attentive":
            return self.attention(h)
        return torch.cat([h.mean(dim=1), h.std(dim=1, unbiased=False)], dim=-1)

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        """:meth:`embedding` ``(batch, n_features)`` -> logits ``(batch, n_classes)``."""
        return self.head((embedding - self.feature_mean) / self.feature_scale)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embedding(y))

    def set_linear_head(self, fit: Any) -> None:
        """Load a fitted scaler and logistic regression (``mean``, ``scale`` ``(d,)``, ``coef`` ``(k, d)``, ``intercept``)."""
        if self.head_kind != "linear" or self.weighting != "concat":
            raise ConfigError("a fitted logistic regression goes on a linear head over concatenated states")
        if tuple(getattr(fit, "layers", self.layers)) != self.layers:
            raise ConfigError(f"head was fitted on layers {list(fit.layers)}, the model uses {list(self.layers)}")
        assert isinstance(self.head, nn.Linear)
        with torch.no_grad():
            self.feature_mean.copy_(torch.as_tensor(fit.mean, dtype=torch.float32))
            self.feature_scale.copy_(torch.as_tensor(fit.scale, dtype=torch.float32))
            self.head.weight.copy_(torch.as_tensor(fit.coef, dtype=torch.float32))
            self.head.bias.copy_(torch.as_tensor(fit.intercept, dtype=torch.float32))

    def _family(self) -> str:
        return f"{FAMILIES[self.model_type]} ({self.model_type})"

    def _check_export(self) -> None:
        """During an ONNX export: stop with one line where this family cannot be exported."""
        family = self._family()
        if self.model_type in ONNX_UNSUPPORTED:
            raise ModelError(
                f"hf-head with a {family} encoder cannot be exported to ONNX: "
                f"{ONNX_UNSUPPORTED[self.model_type]}; predict with the torch backend"
            )
        size = sum(p.numel() * 4 for p in self.parameters()) + sum(b.numel() * 4 for b in self.buffers())
        if size > ONNX_MAX_BYTES:
            raise ModelError(
                f"hf-head with a {family} encoder cannot be exported to ONNX: its {size / 2**30:.1f} GiB of "
                "float32 weights exceed ONNX's 2 GiB single-file limit; predict with the torch backend"
            )


def build_hf_head(
    spec,
    *,
    encoder: Mapping[str, Any],
    layers: Sequence[int],
    weighting: str = "concat",
    pooling: str = "mean-std",
    head: Mapping[str, Any] | None = None,
) -> HFHeadClassifier:
    """Registry builder (architecture ``"hf-head"``)."""
    return HFHeadClassifier(
        spec.n_classes, encoder=encoder, layers=layers, weighting=weighting, pooling=pooling, head=head
    )


def _register() -> None:
    from emovox.models.registry import register_architecture

    register_architecture("hf-head", build_hf_head)


_register()
