"""Named recipes: the seed replicas (``s0`` ... ``s4``) and the flagship.

Importing this package registers the seed recipes with
:mod:`emovox.training.recipes` (so ``emovox train --recipe s3`` finds them)
and their input pipelines as feature sets ``seed-s0`` ... ``seed-s4``
(see :mod:`emovox.recipes.seeds`), and the ``flagship`` recipe
(:mod:`emovox.recipes.flagship`, which registers itself on import).
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


def _import_flagship() -> None:
    import importlib

    try:
        importlib.import_module("emovox.recipes.flagship")
    except ModuleNotFoundError as error:  # partial install: the flagship module is absent
        if error.name != "emovox.recipes.flagship":
            raise


_import_flagship()

__all__ = [
    "SEED_RECIPES",
    "SeedInput",
    "SeedRecipe",
    "SeedTrainDataset",
    "register_seed_recipes",
    "seed_recipe",
    "seed_recipe_names",
]
