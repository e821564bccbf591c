"""Shared helpers of the flagship experiments: cached data, folds, metrics.

The cache is written by ``experiments/flagship/cache.py`` (decode once, trim
silence with librosa ``top_db=35``, log-mel via the model's own front end).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CACHE = Path("/tmp/emovox-flagship")

CLASSES = {
    "ravdess": ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
    "emodb": ("neutral", "happy", "sad", "angry", "fearful", "disgust", "boredom"),
    "emovo": ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
    "turev": ("calm", "happy", "sad", "angry"),
}
#: Harmonised label space for multi-corpus training (canonical emotions).
UNION = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised", "boredom")

_loaded: dict = {}


def load_cached(corpus: str, *, trim: bool = True) -> tuple[list[dict], list[np.ndarray]]:
    """Records (dicts) and log-mel arrays ``(64, frames)`` float32 of a corpus."""
    key = (corpus, trim)
    if key not in _loaded:
        z = np.load(CACHE / f"{corpus}.npz")
        meta = json.loads(str(z["meta"]))
        pre = "logmel_trim_" if trim else "logmel_"
        feats = [z[f"{pre}{i}"].astype(np.float32) for i in range(len(meta))]
        _loaded[key] = (meta, feats)
    return _loaded[key]


def load_waves(corpus: str) -> list[np.ndarray]:
    z = np.load(CACHE / f"{corpus}.npz")
    meta = json.loads(str(z["meta"]))
    return [z[f"wave_{i}"] for i in range(len(meta))]


def folds(corpus: str, meta: list[dict]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Speaker-independent folds: (name, train_idx, test_idx).

    RAVDESS: 6 folds of 4 consecutive actors (fold k tests actors 4k+1..4k+4,
    2 male + 2 female). EMO-DB, EMOVO: leave one speaker out.
    """
    spk = np.array([r["speaker"] for r in meta])
    out = []
    if corpus == "ravdess":
        a = spk.astype(int)
        for k in range(6):
            test = (a >= 4 * k + 1) & (a <= 4 * k + 4)
            out.append((f"actors{4 * k + 1:02d}-{4 * k + 4:02d}", np.where(~test)[0], np.where(test)[0]))
    else:
        for s in sorted(set(spk)):
            out.append((f"spk{s}", np.where(spk != s)[0], np.where(spk == s)[0]))
    return out


def dev_split(meta: list[dict]) -> tuple[str, np.ndarray, np.ndarray]:
    """Hyper-parameter split inside RAVDESS fold 0's training speakers:
    train actors 05-20, validate on actors 21-24 (actors 01-04 untouched)."""
    a = np.array([int(r["speaker"]) for r in meta])
    tr = np.where((a >= 5) & (a <= 20))[0]
    va = np.where(a >= 21)[0]
    return ("dev-a05-20_vs_a21-24", tr, va)


def random_split(labels: np.ndarray, *, test_fraction: float = 0.2, seed: int = 0):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    tr, te = train_test_split(idx, test_size=test_fraction, stratify=labels, random_state=seed)
    return ("random80-20", np.sort(tr), np.sort(te))


def metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    return {"uar": float(balanced_accuracy_score(y_true, y_pred)), "acc": float(accuracy_score(y_true, y_pred))}
