"""The task specification: the written contract between data and model.

A :class:`TaskSpec` says what a model is asked to do: which classes, in which
order; what it receives (a waveform at a sample rate and length, or a feature
array of given dimensions). Architectures size their input and output layers
from it, every artifact stores it, and loading an artifact checks it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emovox.errors import ConfigError, ModelError

INPUT_KINDS = ("waveform", "features")


@dataclass(frozen=True)
class TaskSpec:
    """What a classifier receives and returns.

    Attributes
    ----------
    labels : tuple[str, ...]
        Output classes in model order (index = class id); the model's logits
        have shape ``(batch, len(labels))``.
    sample_rate_hz : int
        Sample rate of the audio the input was made from.
    clip_s : float
        Length of the input clip in seconds (inputs are cropped/padded to it).
    input_kind : str
        ``"waveform"``: the model receives ``(batch, n_samples)`` float32 audio.
        ``"features"``: the model receives ``(batch, *feature_dims)`` float32.
    feature : str or None
        Name of the feature extractor for ``"features"`` inputs (e.g.
        ``"mfcc-functionals"``); ``None`` for waveforms.
    feature_dims : tuple[int, ...] or None
        Shape of one feature input without the batch axis; ``None`` for waveforms.
    """

    labels: tuple[str, ...]
    sample_rate_hz: int = 16000
    clip_s: float = 3.0
    input_kind: str = "waveform"
    feature: str | None = None
    feature_dims: tuple[int, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        labels = tuple(self.labels)
        object.__setattr__(self, "labels", labels)
        if len(labels) < 2 or len(set(labels)) != len(labels) or not all(isinstance(x, str) and x for x in labels):
            raise ConfigError(f"task labels {list(labels)!r} are invalid: give at least two distinct non-empty names")
        if (
            isinstance(self.sample_rate_hz, bool)
            or not isinstance(self.sample_rate_hz, int)
            or (self.sample_rate_hz <= 0)
        ):
            raise ConfigError(f"sample_rate_hz={self.sample_rate_hz!r} must be a positive integer")
        if not isinstance(self.clip_s, (int, float)) or not math.isfinite(self.clip_s) or self.clip_s <= 0:
            raise ConfigError(f"clip_s={self.clip_s!r} must be a positive number of seconds")
        object.__setattr__(self, "clip_s", float(self.clip_s))
        if self.input_kind not in INPUT_KINDS:
            raise ConfigError(f"input_kind={self.input_kind!r} is unknown: expected one of {', '.join(INPUT_KINDS)}")
        if self.input_kind == "features":
            if not self.feature or not self.feature_dims:
                raise ConfigError(
                    "a 'features' task needs feature (extractor name) and feature_dims (shape of one input)"
                )
            dims = tuple(int(d) for d in self.feature_dims)
            if any(d <= 0 for d in dims):
                raise ConfigError(f"feature_dims={list(dims)} must be positive")
            object.__setattr__(self, "feature_dims", dims)
        elif self.feature_dims is not None:
            object.__setattr__(self, "feature_dims", tuple(int(d) for d in self.feature_dims))

    # ------------------------------------------------------------------ derived
    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def n_samples(self) -> int:
        """Samples per input clip: ``round(clip_s * sample_rate_hz)``."""
        return int(round(self.clip_s * self.sample_rate_hz))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one model input, without the batch axis."""
        if self.input_kind == "waveform":
            return (self.n_samples,)
        return tuple(self.feature_dims or ())

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        return {
            "labels": list(self.labels),
            "sample_rate_hz": self.sample_rate_hz,
            "clip_s": self.clip_s,
            "input_kind": self.input_kind,
            "feature": self.feature,
            "feature_dims": None if self.feature_dims is None else list(self.feature_dims),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskSpec:
        """Build from :meth:`to_dict` output; errors are :class:`ModelError` naming the key."""
        if not isinstance(data, Mapping):
            raise ModelError(f"task spec must be a JSON object, got {type(data).__name__}")
        known = {"labels", "sample_rate_hz", "clip_s", "input_kind", "feature", "feature_dims"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"task spec has unknown keys {unknown}: expected {sorted(known)}")
        if "labels" not in data:
            raise ModelError("task spec has no 'labels': the artifact does not say which classes it predicts")
        try:
            kwargs: dict[str, Any] = {
                k: (tuple(v) if k in ("labels", "feature_dims") and v is not None else v) for k, v in data.items()
            }
            return cls(**kwargs)
        except ConfigError as error:
            raise ModelError(f"invalid task spec: {error}") from None
        except TypeError as error:
            raise ModelError(f"invalid task spec: {error}") from None

    def check_compatible(self, other: TaskSpec) -> None:
        """Raise :class:`ModelError` unless ``other`` describes the same task."""
        if self != other:
            diffs = [
                f"{k}: {a!r} != {b!r}"
                for k, a, b in ((k, getattr(self, k), getattr(other, k)) for k in self.to_dict())
                if a != b
            ]
            raise ModelError(f"task spec mismatch ({'; '.join(diffs)})")
