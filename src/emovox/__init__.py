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

__all__ = [
    "__version__",
    "AudioError",
    "ConfigError",
    "CorpusError",
    "EmovoxError",
    "FeatureError",
    "ModelError",
]
