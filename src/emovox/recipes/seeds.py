"""The five seed systems as named recipes ("seed replicas"): s0, s1, s2, s3, s4.

Each :class:`SeedRecipe` bundles what one seed system did, so a user of that
system can switch to emovox and compare on the same data:

- its input pipeline (:class:`SeedInput`, :mod:`emovox.recipes.seed_inputs`):
  which window of the file is read, at which rate, and the exact feature
  computation (librosa, same parameters);
- its scaling (none, a StandardScaler fitted on the training rows, or the
  per-array mean/std normalisation of S4);
- its augmentation, as *on-the-fly* emovox transforms applied to training
  draws inside a fold only (:class:`SeedTrainDataset`);
- its network (:mod:`emovox.models.seeds`), optimiser, schedule and early
  stopping (:class:`~emovox.training.config.TrainConfig`), label scheme and
  the kind of split it reported on, with the figure it reported.

Derivations
-----------
S1's 4,536 and S3's 2,376 inputs are frame-level features flattened, computed
on ``librosa.load(path, duration=2.5, offset=0.6)`` (22,050 Hz) with
``frame_length=2048, hop_length=512`` (librosa's defaults, ``center=True``):
2.5 s x 22,050 Hz = 55,125 samples -> ``1 + 55125 // 512 = 108`` frames.
Per frame: ZCR (1) + RMS (1) + MFCC (``n_mfcc``), the MFCC matrix flattened
frame-major (``np.ravel(mfcc.T)``) after the ZCR and RMS rows:

- S3: ``108 * (1 + 1 + 20) = 2,376`` -> librosa's default 20 MFCC;
- S1: ``108 * (1 + 1 + 40) = 4,536`` -> 40 MFCC. (No other single frame grid
  fits: 4,536 / 22 is not an integer.)

Clips shorter than 3.1 s give fewer frames; as in the seeds (``fillna(0)`` on a
ragged table) the concatenated vector is zero-padded at its end.

Deviations from the seeds (on purpose)
--------------------------------------
- S1 wrote four feature rows per file (original, noise, pitch, noise+pitch)
  *before* splitting, so copies of one clip sat on both sides of its split
  (its 99.7 %). Here each training draw is, with equal chance, one of those
  four variants, made on the fly from training clips only; test clips are
  never augmented. The same holds for S2, S3 and S4.
- Validation for early stopping is carved out of the training part (the seeds
  used their test set as validation); test figures are on unseen clips.
- Corpora not available on this machine (TESS, SAVEE, CREMA-D, full RAVDESS
  song) are skipped by the benchmark; the recipe still names them.

Modules
-------
One concept each; every name stays importable from here:
:mod:`~emovox.recipes.seed_inputs` (input pipelines, feature functions),
:mod:`~emovox.recipes.seed_recipe` (:class:`SeedRecipe` and its training
pipeline), :mod:`~emovox.recipes.seed_data` (:class:`SeedTrainDataset`),
:mod:`~emovox.recipes.seed_systems` (the five definitions) and
:mod:`~emovox.recipes.seed_registration` (feature sets and training recipes).
"""

from __future__ import annotations

from emovox.recipes.seed_data import SeedTrainDataset
from emovox.recipes.seed_inputs import (
    SCALINGS,
    SeedInput,
    frame_features,
    mel_db,
    mfcc_means,
    normalize_array,
    resize_array,
    two_channel,
)
from emovox.recipes.seed_recipe import SeedRecipe
from emovox.recipes.seed_registration import register_seed_recipes
from emovox.recipes.seed_systems import SEED_RECIPES, seed_recipe, seed_recipe_names

__all__ = [
    "SCALINGS",
    "SeedInput",
    "SeedRecipe",
    "SeedTrainDataset",
    "SEED_RECIPES",
    "seed_recipe",
    "seed_recipe_names",
    "register_seed_recipes",
    "mfcc_means",
    "frame_features",
    "mel_db",
    "two_channel",
    "resize_array",
    "normalize_array",
]
