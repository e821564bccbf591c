"""Feature matrices for lists of corpus records, with an optional disk cache.

This is the one place in the feature layer that reads audio, and it does so
only through :func:`emovox.audio.load_audio`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import TypeVar

import numpy as np

from emovox.errors import ConfigError, EmovoxError, FeatureError
from emovox.features.cache import FeatureCache, cache_key, file_fingerprint
from emovox.features.registry import FeatureSet, get_feature_set

#: Longest recording an utterance-level feature set accepts, in seconds. These sets summarise one
#: utterance, and their spectral analysis holds the whole recording's STFT: an hour took 1.8 GB.
MAX_UTTERANCE_S = 600.0


def _load_audio(path: str, sample_rate_hz: int) -> np.ndarray:
    from emovox.audio import audio_duration_s, load_audio

    duration_s = audio_duration_s(path)  # from the header: refused before anything is decoded
    if duration_s > MAX_UTTERANCE_S:
        raise FeatureError(
            f"{path}: lasts {duration_s / 60:.1f} min; utterance-level feature sets summarise one utterance "
            f"of at most {MAX_UTTERANCE_S / 60:g} min: cut the recording into utterances, or use the frame "
            "sets (logmel, mfcc)"
        )
    return load_audio(path, sample_rate_hz=sample_rate_hz)


def _path_of(record: object) -> str:
    path = getattr(record, "path", record)
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"expected records with a .path (or paths), got {type(record).__name__}")
    return os.fspath(path)


def features_config(feature_set: str | FeatureSet, *, sample_rate_hz: int = 16000) -> dict:
    """The full config a cached feature depends on: feature set + loading settings."""
    fs = get_feature_set(feature_set)
    return {"features": fs.config(), "audio": {"loader": "emovox.audio.load_audio", "sample_rate_hz": sample_rate_hz}}


def _featurize_one(path: str, fs: FeatureSet, sample_rate_hz: int, cache_dir: str | None, config: dict) -> np.ndarray:
    try:
        cache: FeatureCache | None = None
        key = ""  # set together with cache
        if cache_dir is not None:
            cache = FeatureCache(cache_dir)
            key = cache_key(file_fingerprint(path), config)
            hit = cache.get(key)
            if hit is not None:
                return hit
        y = _load_audio(path, sample_rate_hz)
        x = fs(y, sample_rate_hz=sample_rate_hz)
        if cache is not None:
            cache.put(key, x)
        return x
    except EmovoxError as exc:
        if path in str(exc):
            raise
        raise type(exc)(f"{path}: {exc}") from exc


def featurize_records(
    records: Iterable[object],
    feature_set: str | FeatureSet,
    *,
    sample_rate_hz: int = 16000,
    cache_dir: str | os.PathLike[str] | None = None,
    n_jobs: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Feature matrix of many recordings.

    Parameters
    ----------
    records : iterable of Record (or paths)
        Anything with a ``.path``; plain paths work too.
    feature_set : str or FeatureSet
        Registered name (``"classic"``, ``"mfcc-functionals"``, ``"egemaps"``,
        ``"compare"``, ``"whisper-base"``), ``"file:PATH"`` (rows of a user's
        file looked up by path: no audio is read, nothing is cached) or a set.
    sample_rate_hz : int
        Rate the audio is loaded (resampled) at.
    cache_dir : path, optional
        Feature cache folder (see :mod:`emovox.features.cache`); ``None`` = no cache.
    n_jobs : int
        Worker processes (``-1`` = one per CPU). A custom feature set whose
        extractor is not a module-level function cannot reach the workers: it
        is then computed serially, with a ``RuntimeWarning``.
    progress : bool
        Show a tqdm progress bar on stderr.

    Returns
    -------
    np.ndarray [shape=(n_records, d)], float32, rows in record order
    """
    fs = get_feature_set(feature_set)
    paths = [_path_of(r) for r in records]
    if not paths:
        raise FeatureError("no records to featurize; pass at least one record")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or not (n_jobs >= 1 or n_jobs == -1):
        raise ConfigError(f"n_jobs={n_jobs!r} must be a positive integer or -1 (all CPUs)")
    lookup = getattr(fs, "lookup", None)
    if lookup is not None:  # features read from a user's file (file:PATH): looked up by path, no audio read
        return lookup(paths)
    workers = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
    config = features_config(fs, sample_rate_hz=sample_rate_hz)
    if workers > 1 and not _picklable(fs):
        warnings.warn(
            f"feature set {fs.name!r} cannot be sent to worker processes (its extractor is not a "
            "module-level function); computing with n_jobs=1",
            RuntimeWarning,
            stacklevel=2,
        )
        workers = 1
    work = partial(
        _featurize_one,
        fs=fs,
        sample_rate_hz=sample_rate_hz,
        cache_dir=None if cache_dir is None else os.fspath(cache_dir),
        config=config,
    )
    if workers == 1 or len(paths) == 1:
        rows = list(_progress(map(work, paths), len(paths), progress))
    else:
        chunksize = max(1, len(paths) // (workers * 8))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            rows = list(_progress(pool.map(work, paths, chunksize=chunksize), len(paths), progress))
    dims = {r.shape for r in rows}
    if len(dims) != 1:
        raise FeatureError(
            f"feature vectors differ in shape across records ({sorted(dims)}); the feature set must give (d,)"
        )
    return np.stack(rows).astype(np.float32, copy=False)


def _picklable(fs: FeatureSet) -> bool:
    """Whether worker processes can import ``fs``'s extractor by name (module-level function)."""
    fn = fs.extractor
    while isinstance(fn, partial):
        fn = fn.func
    qualname = getattr(fn, "__qualname__", "")
    return bool(getattr(fn, "__module__", None)) and "<" not in qualname


_T = TypeVar("_T")


def _progress(it: Iterable[_T], total: int, enabled: bool) -> Iterable[_T]:
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, total=total, unit="clip", desc="features")
