"""Embeddings for the ``default`` recipe: the base model's encoder over clips and their degraded copies.

Every clip goes through the product path
(:meth:`emovox.inference.Predictor.clip_embedding` of the base model:
decoding, silence trim, its telephone band limit, 30 s windows), and with
``copies=N`` N degraded copies of it (:func:`emovox.recipes.robust.copy_chain`,
synthetic noise and rooms only: no other speaker's voice). Cached per clip,
keyed by the encoder, the file's bytes, the copy, the seed and the emovox
version. Used by :mod:`emovox.recipes.default_head`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from emovox.errors import ConfigError, EmovoxError, ModelError

if TYPE_CHECKING:
    from emovox.augment import Compose

__all__ = ["BASE_MODEL", "MAX_COPIES", "ClipEmbeddings", "clip_embeddings", "clip_progress"]

#: The model whose encoder the recipe reuses (a shipped name or an artifact folder).
BASE_MODEL = "default"
#: Most degraded copies per clip.
MAX_COPIES = 14
#: Rooms in the copies' bank (about 0.7 s each to simulate, once per run that needs them).
N_ROOMS = 32


@dataclass(frozen=True)
class ClipEmbeddings:
    """Embeddings ``x`` ``(n, 1 + copies, d)`` float32 (the clip as recorded, then its copies) and how they came."""

    x: np.ndarray
    n_cached: int
    n_computed: int
    seconds: float

    @property
    def copies(self) -> int:
        return self.x.shape[1] - 1


def clip_embeddings(
    paths: Sequence[str | os.PathLike],
    *,
    model: str | os.PathLike = BASE_MODEL,
    copies: int = 0,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    num_threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ClipEmbeddings:
    """The base model's embedding of every clip and of ``copies`` degraded copies of it.

    Parameters
    ----------
    paths : sequence of path-like [shape=(n,)]
        Audio files (any format the audio layer decodes).
    model : str or path-like
        Base model: a shipped name or an artifact folder whose backend has an
        ``embedding`` output (a Whisper-backed model).
    copies : int
        Degraded copies per clip (:func:`emovox.recipes.robust.copy_chain`).
    seed : int
        Seeds the copies' draws: copy ``c`` of a file is the same in every run.
    cache_dir : path-like, optional
        One ``.npy`` per clip and copy (:class:`emovox.features.cache.FeatureCache`).
    num_threads : int, optional
        Threads of the base model's backend.
    progress : callable, optional
        ``progress(done, total)`` in clips, after each clip.

    Returns
    -------
    ClipEmbeddings
        ``x`` ``(n, 1 + copies, d)``.
    """
    from emovox import __version__
    from emovox.evaluation.robustness import TRAIN_SEED, embedding_id
    from emovox.features.cache import FeatureCache, cache_key, file_fingerprint
    from emovox.inference.predictor import load_model, resolve_model_dir
    from emovox.recipes.robust import copy_chain, copy_needs_banks, synthetic_banks

    copies = int(copies)
    if not 0 <= copies <= MAX_COPIES:
        raise ConfigError(f"copies={copies}: give 0 to {MAX_COPIES} degraded copies per clip")
    folder = resolve_model_dir(model)
    predictor = load_model(folder, num_threads=num_threads, gate=False, min_confidence=0.0)
    if not getattr(predictor.backend, "has_embeddings", False):
        raise ModelError(
            f"model {os.fspath(model)!r} has no embedding output: the default recipe needs a "
            "Whisper-backed base model such as the shipped 'default'"
        )
    rate = predictor.sample_rate_hz
    identity = {"embedding": embedding_id(os.fspath(folder)), "emovox": __version__, "rate_hz": rate}
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    chains: dict[int, Compose] = {}
    banks = None
    out: np.ndarray | None = None
    n_cached = n_computed = 0
    started = time.perf_counter()
    for i, path in enumerate(paths):
        path = os.fspath(path)
        fingerprint = file_fingerprint(path)
        y = None
        rows = []
        for c in range(copies + 1):
            key = cache_key(fingerprint, {**identity, "copy": c, "seed": int(seed) if c else None})
            row = cache.get(key) if cache is not None else None
            if row is not None:
                n_cached += 1
                rows.append(row)
                continue
            if y is None:
                y = _load(predictor, path)
            clip = y
            if c:
                if c not in chains:
                    if banks is None and copy_needs_banks(c):
                        banks = synthetic_banks(n_rooms=N_ROOMS)
                    chains[c] = copy_chain(
                        c, sounds=banks.sounds["music"] if banks else None, rirs=banks.rooms["train"] if banks else None
                    )
                rng = np.random.default_rng([TRAIN_SEED, int(seed), c, int(fingerprint[:15], 16)])
                clip = np.asarray(chains[c](y, sample_rate_hz=rate, rng=rng), np.float32)
            row = np.asarray(predictor.clip_embedding(clip, sample_rate=rate), np.float32)
            if cache is not None:
                cache.put(key, row)
            n_computed += 1
            rows.append(row)
        if out is None:
            out = np.empty((len(paths), copies + 1, rows[0].size), np.float32)
        out[i] = np.stack(rows)
        if progress is not None:
            progress(i + 1, len(paths))
    if out is None:
        raise ConfigError("no clips to embed: give at least one labelled clip")
    return ClipEmbeddings(out, n_cached, n_computed, time.perf_counter() - started)


def _load(predictor, path: str) -> np.ndarray:
    """A clip decoded as the predictor does (its rate, mono, untrimmed); errors name the file."""
    try:
        return predictor.load(path)
    except EmovoxError as error:
        message = str(error)
        raise type(error)(message if path in message else f"{path}: {message}") from None
    except OSError as error:
        from emovox.errors import AudioError

        raise AudioError(f"{path}: cannot read it ({error.strerror or error})") from None


@contextmanager
def clip_progress(total: int, *, enabled: bool, desc: str) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` callback drawing a bar by clips on a terminal (stderr); ``None`` elsewhere."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="clip", leave=False)

    def progress(done: int, n: int) -> None:
        bar.total = n
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        bar.close()
