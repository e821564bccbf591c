"""Pooled Whisper features of the four shared corpora, gathered once into one array.

The per-clip cache written by :func:`emovox.recipes.whisper.pooled_features`
(``/tmp/emovox-whisper/cache``) is read once and the rows of every corpus are
stacked into ``/tmp/emovox-research/pooled_<variant>.npz`` with the records'
corpus, speaker key, emotion and gender, so the head experiments start in
seconds. ``variant`` is ``plain`` or an augmentation (``noise``, ``pitch``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENCODER = Path(os.environ.get("EMOVOX_WHISPER_DIR", "/tmp/emovox-whisper/base"))
CACHE = Path("/tmp/emovox-whisper/cache")
OUT = Path("/tmp/emovox-research")
CORPORA = ("ravdess", "emodb", "emovo", "turev")


@dataclass
class PooledData:
    """Rows of all corpora: ``x (n, 7, 2, 512)`` float32 and per-row metadata arrays."""

    x: np.ndarray
    corpus: np.ndarray
    speaker: np.ndarray
    emotion: np.ndarray
    gender: np.ndarray
    actor: np.ndarray  # the corpus's own speaker id

    def subset(self, mask: np.ndarray) -> PooledData:
        return PooledData(*(getattr(self, f)[mask] for f in ("x", "corpus", "speaker", "emotion", "gender", "actor")))


def augment_transform(variant: str):
    from emovox.augment import GaussianNoise, PitchShift

    return {"noise": GaussianNoise(snr_db=(10.0, 30.0)), "pitch": PitchShift(semitones=(-2.0, 2.0))}[variant]


def load(variant: str = "plain") -> PooledData:
    """All four corpora's pooled features (the same row order for every variant)."""
    path = OUT / f"pooled_{variant}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        return PooledData(z["x"], z["corpus"], z["speaker"], z["emotion"], z["gender"], z["actor"])
    from emovox.corpora import load_corpus
    from emovox.recipes.whisper import pooled_features

    records = [r for c in CORPORA for r in load_corpus(c)]
    augment = None if variant == "plain" else augment_transform(variant)
    x = pooled_features(records, ENCODER, cache_dir=CACHE, augment=augment)
    data = PooledData(
        x,
        np.array([r.corpus for r in records]),
        np.array([r.speaker_key for r in records]),
        np.array([r.emotion for r in records]),
        np.array([str(r.gender) for r in records]),
        np.array([r.speaker for r in records]),
    )
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f: getattr(data, f) for f in ("x", "corpus", "speaker", "emotion", "gender", "actor")})
    return data
