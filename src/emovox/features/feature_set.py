"""What a feature set is: a named utterance-level extractor with fixed parameters.

:class:`FeatureSet` is the value every feature set is (the built-in ones in
:data:`~emovox.features.registry.FEATURE_SETS`, a user's ``file:PATH`` set in
:mod:`emovox.features.imported`); :data:`FEATURES_VERSION` is part of every
set's :meth:`~FeatureSet.config`, which feature caches and model artifacts key on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emovox.errors import ConfigError, FeatureError
from emovox.features.checks import check_finite
from emovox.features.functionals import check_stats

__all__ = ["FEATURES_VERSION", "Extractor", "FeatureSet"]

#: Bump when a change to feature code changes any feature value: caches keyed
#: on the old version are then ignored.
FEATURES_VERSION = "1"

#: ``extractor(y (n,), *, sample_rate_hz, **params) -> (d,)``.
Extractor = Callable[..., np.ndarray]


@dataclass(frozen=True)
class FeatureSet:
    """A named utterance-level feature extractor with fixed parameters.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"classic"``.
    extractor : callable
        ``extractor(y, *, sample_rate_hz, **params) -> np.ndarray (d,)``.
    params : mapping
        Keyword arguments passed to the extractor (JSON-able values).
    description : str
        One line for listings.
    versions : callable
        Returns the library versions the values depend on (part of :meth:`config`).
    """

    name: str
    extractor: Extractor = field(repr=False, compare=False)
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    versions: Callable[[], dict[str, str]] = field(default=dict, repr=False, compare=False)

    def __call__(self, y: np.ndarray, *, sample_rate_hz: int) -> np.ndarray:
        """Compute the ``(d,)`` float32 feature vector of one mono clip."""
        out = np.asarray(self.extractor(y, sample_rate_hz=sample_rate_hz, **self.params), dtype=np.float32)
        if out.ndim != 1:
            raise FeatureError(f"feature set {self.name!r} returned shape {out.shape}, expected (d,)")
        return check_finite(out, f"feature set {self.name!r}")

    def with_params(self, **changes: Any) -> FeatureSet:
        """A copy with some parameters changed; unknown names raise :class:`ConfigError`."""
        unknown = sorted(set(changes) - set(self.params))
        if unknown:
            raise ConfigError(
                f"feature set {self.name!r} has no parameter(s) {unknown}; its parameters are {sorted(self.params)}"
            )
        if "stats" in changes:
            changes["stats"] = check_stats(changes["stats"])
        return FeatureSet(self.name, self.extractor, {**self.params, **changes}, self.description, self.versions)

    def config(self) -> dict:
        """Everything the values depend on, JSON-able: name, params, feature and library versions."""
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(self.params.items())}
        return {"name": self.name, "params": params, "features_version": FEATURES_VERSION, "libraries": self.versions()}
