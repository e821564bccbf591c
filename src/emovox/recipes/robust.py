"""The channel-robust recipe: Whisper embeddings of clean and degraded copies -> linear heads.

Training material for every fitted head of the default model: each training
clip's embedding as recorded, plus :data:`N_COPIES` degraded copies: copy 1
is a telephone call (:func:`emovox.augment.degrade.telephone_chain`), copies
2.. are draws of the full chain (:func:`emovox.augment.degrade.degradation_chain`:
room, background, clipping, channel, gain). Banks are built with
:data:`~emovox.evaluation.robustness.TRAIN_SEED` from training material only:
babble of the clip's own speaker group, rooms with RT60 0.2-1.0 s, synthetic
music and hum. A clip's copies always sit on the clip's side of any split.
"""

from __future__ import annotations

from emovox.augment.synth import MUSIC_KINDS

__all__ = ["N_COPIES", "copy_factory", "train_banks"]

#: Degraded copies per training clip.
N_COPIES = 5
TRAIN_ROOMS = {"train": ((0.2, 1.0), None)}
TRAIN_SOUNDS = {"music": (*MUSIC_KINDS, "hum")}


def train_banks(records, groups):
    """The training banks: babble per group, 64 rooms, 32 music/hum sounds."""
    from emovox.evaluation.robustness import TRAIN_SEED, build_banks

    return build_banks(records, groups, seed=TRAIN_SEED, babble=True, rooms=TRAIN_ROOMS, sounds=TRAIN_SOUNDS,
                       n_rooms=64)


def copy_factory(spec: dict, arg):
    """:func:`emovox.evaluation.robustness.embed_condition` factory of training copy ``spec["copy"]`` (1-based)."""
    from emovox.augment.degrade import degradation_chain, telephone_chain
    from emovox.evaluation.robustness import corpus_clips, speaker_groups

    if arg is None:
        records, y, _ = corpus_clips()
        return train_banks(records, speaker_groups(records, y))
    banks, group = arg
    babble = banks.babble.get(group) or next(iter(banks.babble.values()))
    if spec["copy"] == 1:
        return telephone_chain(babble=babble)
    return degradation_chain(babble=babble, sounds=banks.sounds["music"], rirs=banks.rooms["train"])
