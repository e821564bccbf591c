"""emovox: speech emotion recognition that works on real recordings.

The package is layered (imports point down only, inside functions too; see
``docs/design.md``, "Layers")::

    cli · service · batch
    recipes
    export
    training
    evaluation
    inference          (this root module's ``load_model`` sits just above it)
    models
    features · augment
    corpora
    audio
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from emovox._version import __version__
from emovox.errors import (
    AudioError,
    ConfigError,
    CorpusError,
    EmovoxError,
    FeatureError,
    ModelError,
)

if TYPE_CHECKING:
    from emovox.inference.predictor import Predictor


def load_model(
    path: str | os.PathLike | None = None,
    *,
    backend: str = "auto",
    min_confidence: float | None = None,
    num_threads: int | None = None,
    batch_size: int = 8,
    gate: bool = True,
) -> Predictor:
    """Load a model for prediction; with no ``path``, the bundled default model.

    A thin alias of :func:`emovox.inference.load_model` (see there for
    ``backend``, ``min_confidence``, ``num_threads``); imported lazily so that
    ``import emovox`` stays light and the ONNX backend never imports torch.
    """
    from emovox.inference import load_model as _load_model

    return _load_model(
        path, backend=backend, min_confidence=min_confidence, num_threads=num_threads, batch_size=batch_size, gate=gate
    )


__all__ = [
    "__version__",
    "load_model",
    "AudioError",
    "ConfigError",
    "CorpusError",
    "EmovoxError",
    "FeatureError",
    "ModelError",
]
