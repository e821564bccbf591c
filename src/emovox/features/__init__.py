"""Features: arrays in, arrays out (no file I/O except :func:`featurize_records`).

- :mod:`~emovox.features.classic` — librosa reference frame features (MFCC ± deltas,
  ZCR, RMS, log-mel, chroma, spectral contrast);
- :mod:`~emovox.features.functionals` — utterance statistics over frames;
- :mod:`~emovox.features.registry` — named feature sets, :func:`extract_features`;
- :mod:`~emovox.features.scaling` — :class:`StandardScaler` (JSON, no pickle);
- :mod:`~emovox.features.egemaps` — openSMILE eGeMAPS (optional extra);
- :mod:`~emovox.features.spectral`, :mod:`~emovox.features.frontend`,
  :mod:`~emovox.features.numpy_frontend` — fast batched log-mel / MFCC (torch / NumPy)
  that match librosa; :mod:`~emovox.features.batched` runs them over many files
  on several cores;
- :mod:`~emovox.features.cache`, :mod:`~emovox.features.records` — cached
  :func:`featurize_records` over corpus records.

``LogMelFrontend``, ``MfccFrontend`` and ``frontend_features`` need torch and
are imported on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emovox.features.functionals import DEFAULT_STATS, functional_names, functionals
from emovox.features.records import features_config, featurize_records
from emovox.features.registry import (
    FEATURE_SETS,
    FEATURES_VERSION,
    FeatureSet,
    extract_features,
    feature_set_names,
    get_feature_set,
    register_feature_set,
)
from emovox.features.scaling import StandardScaler
from emovox.features.spectral import LogMelConfig

if TYPE_CHECKING:  # imported on first use by __getattr__ (they need PyTorch)
    from emovox.features.batched import frontend_features
    from emovox.features.frontend import LogMelFrontend, MfccFrontend

_TORCH_NAMES = {"LogMelFrontend": "frontend", "MfccFrontend": "frontend", "frontend_features": "batched"}


def __getattr__(name: str) -> object:
    if name in _TORCH_NAMES:
        import importlib

        try:
            module = importlib.import_module(f"emovox.features.{_TORCH_NAMES[name]}")
        except ImportError as exc:  # torch missing
            from emovox.errors import FeatureError

            raise FeatureError(
                f'{name} needs PyTorch; install it with: pip install "torch==2.13.*" (see the README)'
            ) from exc
        return getattr(module, name)
    raise AttributeError(f"module 'emovox.features' has no attribute {name!r}")


__all__ = [
    "DEFAULT_STATS",
    "FEATURE_SETS",
    "FEATURES_VERSION",
    "FeatureSet",
    "LogMelConfig",
    "LogMelFrontend",
    "MfccFrontend",
    "StandardScaler",
    "extract_features",
    "frontend_features",
    "feature_set_names",
    "features_config",
    "featurize_records",
    "functional_names",
    "functionals",
    "get_feature_set",
    "register_feature_set",
]
