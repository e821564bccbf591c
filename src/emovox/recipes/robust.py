"""The channel-robust recipe: Whisper embeddings of clean and degraded copies -> one linear head.

The default model's head is trained on every training clip as recorded plus
:data:`N_COPIES` degraded copies of it, each a fresh draw of a realistic
path (:mod:`emovox.augment.degrade`):

- copy 1: a telephone call (:func:`~emovox.augment.degrade.telephone_chain`);
- copies 2-5: the full chain (:func:`~emovox.augment.degrade.degradation_chain`:
  room, background, clipping, channel, gain);
- copies 6-7: a noisy place (:func:`~emovox.augment.degrade.noise_chain`:
  mostly babble at 0-15 dB SNR).

Banks are built with :data:`~emovox.evaluation.robustness.TRAIN_SEED` from
training material only: babble of the clip's own speaker group (so, in the
speaker folds, only ever of training speakers), rooms with RT60 0.2-1.0 s,
synthetic music and hum. A clip's copies always sit on the clip's side of a
split. The encoder is frozen, so a copy is one embedding (the ONNX graph's
``embedding`` output, :func:`~emovox.evaluation.robustness.embed_condition`,
cached on disk) and the head is a balanced softmax regression on all of them
(:func:`~emovox.models.softmax_regression.fit_softmax_regression`).

Measured against the head trained on clean clips only, same folds
(``bench/robustness.py``, ``docs/robustness.md``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from emovox.augment.synth import MUSIC_KINDS
from emovox.errors import ConfigError

if TYPE_CHECKING:
    from emovox.augment import Compose

__all__ = [
    "N_COPIES",
    "C",
    "copy_chain",
    "copy_factory",
    "copy_needs_banks",
    "train_banks",
    "synthetic_banks",
    "training_embeddings",
    "fit_robust_head",
    "fold_heads",
    "fold_logits",
]

#: Degraded copies per training clip.
N_COPIES = 7
#: Inverse L2 strength of the head (the four-corpus inner CV chose 1e-3 for the clean head; 3e-3 was no better).
C = 1e-3
TRAIN_ROOMS = {"train": ((0.2, 1.0), None)}
TRAIN_SOUNDS: dict[str, Sequence[str]] = {"music": (*MUSIC_KINDS, "hum")}


def train_banks(records, groups):
    """The training banks: babble per group, 64 rooms, 32 music/hum sounds."""
    from emovox.evaluation.robustness import TRAIN_SEED, build_banks

    return build_banks(
        records, groups, seed=TRAIN_SEED, babble=True, rooms=TRAIN_ROOMS, sounds=TRAIN_SOUNDS, n_rooms=64
    )


def synthetic_banks(*, n_rooms: int = 32):
    """The training banks without babble (no speech material needed): rooms and music/hum of :func:`train_banks`'s seed.

    For data whose speakers must not be mixed into each other's copies (a
    user's own clips: :mod:`emovox.recipes.default_head`). About 0.7 s per room to build.
    """
    from emovox.evaluation.robustness import TRAIN_SEED, build_banks

    return build_banks(
        [], np.zeros(0, np.int64), seed=TRAIN_SEED, rooms=TRAIN_ROOMS, sounds=TRAIN_SOUNDS, n_rooms=n_rooms
    )


def copy_needs_banks(copy: int) -> bool:
    """Whether :func:`copy_chain` of copy ``copy`` draws from the rooms/sounds banks (the telephone copy does not)."""
    return (int(copy) - 1) % N_COPIES != 0


def copy_chain(copy: int, *, babble=None, sounds=None, rirs=None) -> Compose:
    """The degradation of training copy ``copy`` (1-based; after :data:`N_COPIES` the assignment repeats).

    Copy 1: a telephone call; 2-5: the full chain; 6-7: a noisy place
    (the module docstring). ``babble``, ``sounds``, ``rirs``: the banks
    (:mod:`emovox.augment.degrade`); ``None`` for a source left out.
    """
    from emovox.augment.degrade import degradation_chain, noise_chain, telephone_chain

    if int(copy) < 1:
        raise ConfigError(f"copy {copy!r}: training copies are numbered from 1")
    slot = (int(copy) - 1) % N_COPIES + 1
    if slot == 1:
        return telephone_chain(babble=babble)
    if slot > 5:
        return noise_chain(babble=babble, sounds=sounds)
    return degradation_chain(babble=babble, sounds=sounds, rirs=rirs)


def copy_factory(spec: dict, arg):
    """:func:`emovox.evaluation.robustness.embed_condition` factory of training copy ``spec["copy"]`` (1-based)."""
    from emovox.evaluation.robustness import corpus_clips, speaker_groups

    if arg is None:
        records, y, _ = corpus_clips()
        return train_banks(records, speaker_groups(records, y))
    banks, group = arg
    babble = banks.babble.get(group) or next(iter(banks.babble.values()))
    return copy_chain(spec["copy"], babble=babble, sounds=banks.sounds["music"], rirs=banks.rooms["train"])


def training_embeddings(
    paths: Sequence[str],
    groups: Sequence[int],
    *,
    cache_dir: str | os.PathLike,
    model: str = "default",
    workers: int = 2,
    copies: int = N_COPIES,
    log: Callable[[str], None] = print,
) -> list[np.ndarray]:
    """Embeddings ``[(n, d)] * (1 + copies)``: the clips as recorded, then each degraded copy (cached)."""
    from emovox.evaluation.robustness import EVAL_SEED, TRAIN_SEED, embed_condition

    out = [
        embed_condition(
            paths,
            groups,
            tag="clean",
            factory="emovox.evaluation.robustness.eval_factory",
            seed=EVAL_SEED,
            cache_dir=cache_dir,
            model=model,
            workers=workers,
            extra={"condition": "clean"},
            log=log,
        ).embeddings
    ]
    for c in range(1, copies + 1):
        out.append(
            embed_condition(
                paths,
                groups,
                tag=f"copy{c}",
                factory="emovox.recipes.robust.copy_factory",
                seed=TRAIN_SEED,
                cache_dir=cache_dir,
                model=model,
                workers=workers,
                extra={"copy": c},
                log=log,
            ).embeddings
        )
    return out


def fit_robust_head(
    embeddings: Sequence[np.ndarray], y: np.ndarray, mask: np.ndarray | None = None, *, C: float = C, n_classes: int = 7
):
    """One head on the rows ``mask`` of every set in ``embeddings`` (clean, then copies): a ``LinearFit``."""
    from emovox.models.softmax_regression import fit_softmax_regression

    keep = np.ones(len(y), bool) if mask is None else np.asarray(mask, bool)
    x = np.concatenate([np.asarray(e)[keep] for e in embeddings])
    return fit_softmax_regression(x, np.concatenate([np.asarray(y)[keep]] * len(embeddings)), C=C, n_classes=n_classes)


def fold_heads(embeddings: Sequence[np.ndarray], y: np.ndarray, groups: np.ndarray, **options) -> list:
    """One :func:`fit_robust_head` per speaker group ``g``, trained on the other groups' clips and copies."""
    return [fit_robust_head(embeddings, y, groups != g, **options) for g in range(int(groups.max()) + 1)]


def fold_logits(heads: Sequence, groups: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Out-of-fold logits ``(n, k)``: each clip scored by the head that never saw its speakers."""
    out = np.zeros((len(groups), heads[0].coef.shape[0]))
    for g, head in enumerate(heads):
        rows = groups == g
        out[rows] = head.logits(np.asarray(embeddings)[rows])
    return out
