"""emovox: speech emotion recognition that works on real recordings.

The package is layered (imports point down only)::

    cli · service · batch
    inference
    models · training · evaluation
    features · augment
    audio · corpora
"""

from __future__ import annotations

__version__ = "0.1.0"

from emovox.errors import (  # noqa: E402
    AudioError,
    ConfigError,
    CorpusError,
    EmovoxError,
    FeatureError,
    ModelError,
)


def load_model(path=None, **options):
    """Load a model for prediction; with no ``path``, the bundled default model.

    A thin alias of :func:`emovox.inference.load_model` (see there for
    ``backend``, ``min_confidence``, ``num_threads``); imported lazily so that
    ``import emovox`` stays light and the ONNX backend never imports torch.
    """
    from emovox.inference import load_model as _load_model

    return _load_model(path, **options)


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
