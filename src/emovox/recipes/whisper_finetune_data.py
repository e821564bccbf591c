"""The cache and the training data of recipe ``whisper-finetune`` (:mod:`emovox.recipes.whisper_finetune`).

:func:`encode_clips` runs every clip once through the frozen part of the
encoder and keeps what the trained top part reads (the frame states of block
``L``, with any lower states it pools) and the pooled frozen states ``0..K``;
:class:`CachedStates` serves them to the engine as random crops.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from emovox.errors import ConfigError, EmovoxError

__all__ = ["CachedStates", "EncodedClips", "copy_transform", "encode_clips", "load_clip"]

SAMPLE_RATE_HZ = 16000
#: Encoder frames per second (20 ms each).
FRAMES_PER_S = 50
#: Longest clip read (s), as the Predictor reads one window.
MAX_S = 30.0
_CACHE_VERSION = "whisper-finetune-states-1"


@dataclass
class EncodedClips:
    """Frame states of block ``split`` per clip (float16 ``(frames, d_model)``) and pooled frozen states ``0..depth``."""

    states: list[np.ndarray]
    pooled: np.ndarray
    seconds: float
    n_computed: int


def load_clip(path: str) -> np.ndarray:
    """A clip as the Predictor reads it: 16 kHz, silence-trimmed, at most :data:`MAX_S` seconds, float32 ``(n,)``."""
    from emovox.audio import load_audio, trim_for_model

    try:
        y = trim_for_model(load_audio(path, sample_rate_hz=SAMPLE_RATE_HZ), sample_rate_hz=SAMPLE_RATE_HZ)
    except EmovoxError as error:
        raise type(error)(f"{path}: {error}") from error
    return np.ascontiguousarray(y[: int(MAX_S * SAMPLE_RATE_HZ)], dtype=np.float32)


def encode_clips(
    paths: Sequence[str],
    encoder_dir: str | os.PathLike,
    *,
    split: int,
    depth: int,
    lower_layers: Sequence[int] = (),
    cache_dir: str | os.PathLike | None = None,
    augment: Any = None,
    copy: int = 0,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> EncodedClips:
    """Run every clip once through the frozen encoder up to block ``depth``; cache what training needs.

    Parameters
    ----------
    paths : sequence of str
        Audio files, decoded and trimmed as the Predictor does.
    encoder_dir : path-like
        Whisper encoder folder.
    split, depth : int
        ``L`` (whose frame states are kept) and ``K`` (deepest state pooled).
    lower_layers : sequence of int
        States under ``L`` kept too (before those of ``L``, concatenated along
        channels: ``(frames, (len(lower_layers) + 1) * d_model)``), as
        :meth:`~emovox.models.whisper_finetune.WhisperFinetuneClassifier.lower_states` makes them.
    cache_dir : path-like, optional
        On-disk cache (``None``: compute everything, keep nothing).
    augment : emovox.augment transform, optional
        Applied to each trimmed clip first (a degraded copy), with a generator
        seeded by ``(seed, copy, the file's bytes)``; part of the cache key.
    copy : int
        The copy's number (key and seed).
    """
    from emovox.features.cache import FeatureCache, cache_key, file_fingerprint
    from emovox.models.whisper_encoder import WhisperLogMel, load_whisper_encoder, truncate_encoder
    from emovox.models.whisper_pooling import pool_hidden_states
    from emovox.recipes.whisper import PREPROCESSING, encoder_id

    started = time.perf_counter()
    full = load_whisper_encoder(encoder_dir)
    lower_layers = tuple(int(i) for i in lower_layers)
    if not 0 <= split < depth <= full.config.n_layers or any(not 0 <= i < split for i in lower_layers):
        raise ConfigError(
            f"need 0 <= lower_layers {list(lower_layers)} < split={split} < depth={depth} <= "
            f"{full.config.n_layers} encoder blocks"
        )
    encoder = truncate_encoder(full, depth)
    frontend = WhisperLogMel(full.config.n_mels)
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    config: dict[str, Any] = {
        "version": _CACHE_VERSION,
        "whisper_encoder": encoder_id(encoder_dir) if cache else None,
        "split": int(split),
        "lower_layers": list(lower_layers),
        "depth": int(depth),
        "preprocessing": PREPROCESSING,
        "max_s": MAX_S,
    }
    if augment is not None:
        config["augment"] = {"transform": augment.to_dict(), "copy": int(copy), "seed": int(seed)}
    states: list[np.ndarray] = []
    pooled: list[np.ndarray] = []
    computed = 0
    for i, path in enumerate(paths):
        path = os.fspath(path)
        fingerprint = file_fingerprint(path) if (cache or augment is not None) else None
        keys = None
        if cache is not None and fingerprint is not None:
            keys = [cache_key(fingerprint, {**config, "part": part}) for part in ("states", "pooled")]
        row_states = row_pooled = None
        if cache is not None and keys is not None:
            row_states, row_pooled = cache.get(keys[0]), cache.get(keys[1])
        if row_states is None or row_pooled is None:
            y = load_clip(path)
            if augment is not None:
                assert fingerprint is not None  # computed whenever there is an augment
                rng = np.random.default_rng([int(seed), int(copy), int(fingerprint[:15], 16)])
                y = np.asarray(augment(y, sample_rate_hz=SAMPLE_RATE_HZ, rng=rng), dtype=np.float32)
            with torch.inference_mode():
                hidden = encoder(frontend(torch.from_numpy(np.ascontiguousarray(y))[None]))
                row_states = torch.cat([hidden[i] for i in (*lower_layers, split)], dim=-1)[0].numpy()
                row_states = row_states.astype(np.float16)
                row_pooled = pool_hidden_states(hidden)[0].numpy().astype(np.float32)
            computed += 1
            if cache is not None and keys is not None:
                cache.put(keys[0], row_states)
                cache.put(keys[1], row_pooled)
        states.append(row_states)
        pooled.append(row_pooled)
        if progress:
            progress(i + 1, len(paths))
    d = full.config.d_model
    return EncodedClips(
        states=states,
        pooled=np.stack(pooled) if pooled else np.zeros((0, depth + 1, 2, d), np.float32),
        seconds=time.perf_counter() - started,
        n_computed=computed,
    )


def copy_transform(copy: int, banks: dict) -> Any:
    """The robust recipe's degradation chain of copy ``copy`` (synthetic banks built into ``banks`` once)."""
    from emovox.recipes.robust import copy_chain, copy_needs_banks, synthetic_banks

    if copy_needs_banks(copy) and not banks:
        built = synthetic_banks()
        banks.update({"sounds": built.sounds["music"], "rirs": built.rooms["train"]})
    return copy_chain(copy, babble=None, sounds=banks.get("sounds"), rirs=banks.get("rirs"))


class CachedStates(Dataset):
    """``(states, label)`` pairs of cached frame states, cropped to ``crop_frames`` (or whole with ``None``).

    ``crop="random"`` draws the offset from ``(seed, epoch, index)`` (the
    engine sets ``seed`` and calls :meth:`set_epoch`), so a batch is the same
    whether an epoch runs straight through, after a resume, or on any process
    of a torchrun; ``"center"`` takes the middle. A clip shorter than the crop
    is repeated (tiled) up to it. States are stored as given (float16) and
    returned as float32 ``(crop_frames, d_model)``.
    """

    def __init__(
        self,
        states: Sequence[np.ndarray],
        labels: Sequence[int] | np.ndarray,
        *,
        crop_frames: int | None,
        crop: str = "random",
        seed: int = 0,
    ) -> None:
        if len(states) != len(labels) or not len(states):
            raise ConfigError(f"{len(states)} clips and {len(labels)} labels: need one label per clip, at least one")
        if crop not in ("random", "center"):
            raise ConfigError(f"crop={crop!r}: 'random' or 'center'")
        self.states = list(states)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.crop_frames = crop_frames
        self.crop = crop
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.states)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        x = self.states[index]
        n, crop = len(x), self.crop_frames
        if crop is not None:
            if n < crop:
                x = np.concatenate([x] * -(-crop // n))[:crop]
            elif n > crop:
                if self.crop == "random":
                    start = int(np.random.default_rng([self.seed, self.epoch, int(index)]).integers(0, n - crop + 1))
                else:
                    start = (n - crop) // 2
                x = x[start : start + crop]
        return np.asarray(x, dtype=np.float32), int(self.labels[index])
