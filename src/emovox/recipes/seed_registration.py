"""Registration of the seed recipes: feature sets ``seed-s0`` ... ``seed-s4`` and training recipes ``s0`` ... ``s4``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from emovox.recipes.seed_systems import SEED_RECIPES, seed_recipe

__all__ = ["register_seed_recipes"]


def _flat_extractor(name: str) -> Callable[..., np.ndarray]:
    def extract(y: np.ndarray, *, sample_rate_hz: int) -> np.ndarray:
        inp = seed_recipe(name).input
        if sample_rate_hz != inp.sample_rate_hz:
            from emovox.audio import resample

            y = resample(y, orig_hz=sample_rate_hz, target_hz=inp.sample_rate_hz)
        return inp.extract(inp.window(np.asarray(y, dtype=np.float32))).ravel()

    extract.__qualname__ = f"seed_{name}_features"
    return extract


def register_seed_recipes() -> None:
    """Register the seed features, and the five recipes with :mod:`emovox.training.recipes`.

    Feature sets ``seed-s0`` ... ``seed-s4`` (flattened) go to
    :mod:`emovox.features`; recipes ``s0`` ... ``s4`` to the training registry.
    Missing registries are skipped silently (partial installs).
    """
    try:
        from emovox.features.registry import FEATURE_SETS, FeatureSet, register_feature_set
    except ImportError:  # pragma: no cover
        FEATURE_SETS = None  # type: ignore[assignment]  # partial install: no feature registry
    if FEATURE_SETS is not None:
        for name in SEED_RECIPES:
            if f"seed-{name}" not in FEATURE_SETS:
                register_feature_set(
                    FeatureSet(
                        f"seed-{name}",
                        _flat_extractor(name),
                        {},
                        f"seed replica {name.upper()} input pipeline (flattened)",
                    )
                )
    try:
        from emovox.training.recipes import register_recipe
    except ImportError:  # pragma: no cover
        return
    for name in SEED_RECIPES:
        register_recipe(name, _recipe_builder(name))


def _recipe_builder(name: str):
    def build():
        return seed_recipe(name).to_training_recipe()

    build.__qualname__ = f"build_seed_recipe_{name}"
    return build
