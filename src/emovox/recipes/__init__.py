"""Named recipes: the seed replicas (``s0`` ... ``s4``).

Importing this package registers the seed recipes with
:mod:`emovox.training.recipes` (so ``emovox train --recipe s3`` finds them)
and their input pipelines as feature sets ``seed-s0`` ... ``seed-s4``.
See :mod:`emovox.recipes.seeds`.
"""

from __future__ import annotations

from emovox.recipes.seeds import (
    SEED_RECIPES,
    SeedInput,
    SeedRecipe,
    SeedTrainDataset,
    register_seed_recipes,
    seed_recipe,
    seed_recipe_names,
)

register_seed_recipes()

__all__ = [
    "SEED_RECIPES",
    "SeedInput",
    "SeedRecipe",
    "SeedTrainDataset",
    "register_seed_recipes",
    "seed_recipe",
    "seed_recipe_names",
]
