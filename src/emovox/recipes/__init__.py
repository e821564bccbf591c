"""Named recipes: the seed replicas (``s0`` ... ``s4``), the flagship and the Whisper heads.

Importing this package registers the seed recipes with
:mod:`emovox.training.recipes` (so ``emovox train --recipe s3`` finds them)
and their input pipelines as feature sets ``seed-s0`` ... ``seed-s4``
(see :mod:`emovox.recipes.seeds`), the ``flagship`` recipe
(:mod:`emovox.recipes.flagship`), and the closed-form heads on a frozen
Whisper encoder: ``default`` (the shipped encoder, your data:
:mod:`emovox.recipes.default_head`) and ``whisper-linear`` (an encoder folder
given by ``--backbone``: :mod:`emovox.recipes.whisper`); ``hf-linear`` (any
Hugging Face speech encoder folder: :mod:`emovox.recipes.hf`); and the builds
of the shipped models, ``shipped-default`` (:mod:`emovox.recipes.build_default`)
and ``shipped-cnn`` (:mod:`emovox.recipes.build_cnn`); ``whisper-finetune`` (the top
encoder blocks trained in the engine: :mod:`emovox.recipes.whisper_finetune`).
Each registers itself on import.
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


def _import_recipes() -> None:
    import importlib

    for name in (
        "emovox.recipes.flagship",
        "emovox.recipes.default_head",
        "emovox.recipes.whisper",
        "emovox.recipes.build_cnn",
        "emovox.recipes.build_default",
        "emovox.recipes.hf",
        "emovox.recipes.whisper_finetune",
    ):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:  # partial install: the module is absent
            if error.name != name:
                raise


_import_recipes()

__all__ = [
    "SEED_RECIPES",
    "SeedInput",
    "SeedRecipe",
    "SeedTrainDataset",
    "register_seed_recipes",
    "seed_recipe",
    "seed_recipe_names",
]
