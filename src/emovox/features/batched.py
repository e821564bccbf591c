"""Front-end features of many audio files, batched, on several cores.

:func:`frontend_features` decodes files with :func:`emovox.audio.load_audio`,
zero-pads them into batches and runs a :class:`~emovox.features.LogMelFrontend`
or :class:`~emovox.features.MfccFrontend` over each batch. Worker threads each
take whole batches (decode + front end): both stages spend their time in C code
that releases the GIL (libsndfile/soxr, torch), so two threads keep two cores
busy without the pickling cost of processes.

Zero padding changes nothing in a clip's own frames when the front end pads
with zeros (``pad_mode="constant"``, librosa's default): frame ``t`` of a clip
sees the same samples alone or in a batch, and the per-clip ``top_db`` floor
is taken over frames whose padding only adds silence (floored at ``amin``).
With ``pad_mode="reflect"`` clips are processed one at a time, so results are
exact either way.

Set ``torch.set_num_threads(1)`` when ``workers > 1`` (one thread per worker
is the fast configuration; more oversubscribes the cores).
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from emovox.audio import load_audio
from emovox.errors import ConfigError, EmovoxError, FeatureError


def frontend_features(
    paths: Iterable["str | os.PathLike[str]"],
    frontend: torch.nn.Module,
    *,
    batch_size: int = 2,
    workers: int = 2,
) -> Iterator[np.ndarray]:
    """Yield the front-end features of each file, in input order.

    Parameters
    ----------
    paths : iterable of paths
        Audio files in any format :func:`emovox.audio.load_audio` reads; they
        are decoded to mono at the front end's sample rate. Sorting them by
        duration first keeps batch padding (wasted work) small.
    frontend : LogMelFrontend or MfccFrontend
        Maps ``(batch, n)`` waveforms to ``(batch, d, frames)``; its config
        gives the sample rate the files are decoded at.
    batch_size : int
        Clips per front-end call; 1-4 keep the spectrograms in the CPU caches
        (see :mod:`emovox.features.frontend`).
    workers : int
        Threads, each decoding and transforming whole batches (1 = in the
        calling thread).

    Yields
    ------
    np.ndarray [shape=(d, frames)], float32
        ``frames = frontend.cfg.n_frames(len(clip))`` for each clip's own length.

    Raises
    ------
    AudioError
        A file is missing or not decodable (the message names it).
    ConfigError
        ``batch_size`` or ``workers`` is not a positive integer.
    FeatureError
        ``frontend`` is not a log-mel / MFCC front end.
    """
    for name, value in (("batch_size", batch_size), ("workers", workers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}={value!r} must be a positive integer")
    cfg = _logmel_config(frontend)
    if cfg.pad_mode != "constant":
        batch_size = 1  # reflection padding would see the zeros between a clip and the batch's end

    def run(batch: Sequence[str]) -> list[np.ndarray]:
        clips = [_decode(path, cfg.sample_rate_hz) for path in batch]
        padded = np.zeros((len(clips), max(len(c) for c in clips)), dtype=np.float32)
        for row, clip in enumerate(clips):
            padded[row, : len(clip)] = clip
        with torch.inference_mode():
            out = frontend(torch.from_numpy(padded)).numpy()
        return [out[row, :, : cfg.n_frames(len(clip))].copy() for row, clip in enumerate(clips)]

    batches = _chunks((os.fspath(p) for p in paths), batch_size)
    if workers == 1:
        for batch in batches:
            yield from run(batch)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emovox-frontend") as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.submit(run, batch))
            if len(pending) >= 2 * workers:  # bounded read-ahead: memory stays O(workers * batch)
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def _decode(path: str, sample_rate_hz: int) -> np.ndarray:
    try:
        return load_audio(path, sample_rate_hz=sample_rate_hz)
    except EmovoxError as exc:
        if path in str(exc):
            raise
        raise type(exc)(f"{path}: {exc}") from exc


def _logmel_config(frontend: torch.nn.Module):
    cfg = getattr(frontend, "cfg", None) or getattr(getattr(frontend, "logmel", None), "cfg", None)
    if cfg is None:
        raise FeatureError(f"{type(frontend).__name__} is not a LogMelFrontend or MfccFrontend (it has no .cfg)")
    return cfg


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
