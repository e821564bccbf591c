"""On-disk feature cache keyed by audio content and the full feature config.

Key = SHA-256 of ``{"audio": <SHA-256 of the file's bytes>, "config": <config dict>}``
(JSON, sorted keys). The config holds the feature set name, its parameters,
:data:`~emovox.features.registry.FEATURES_VERSION`, the library versions the
values depend on, and the loading settings (sample rate, ...). So:

- the same bytes under another name, path or mtime hit the cache (copies of a
  corpus, a fresh checkout, a network file system with coarse mtimes);
- any change to the bytes, to a parameter, to the sample rate or to the
  feature code version gives another key: stale features are never read.

Hashing the content costs one read of the file (~1 GB/s), small beside
decoding and feature extraction; path + size + mtime would be cheaper but
misses in-place edits within the mtime resolution and any copy or move.

Entries are ``.npy`` files (``allow_pickle=False``) under
``cache_dir/<key[:2]>/<key>.npy``, written through
:func:`emovox.fileio.atomic_output` (atomic: concurrent workers
or a crash never leave a half-written entry under a real key). An unreadable
entry counts as a miss and is rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from emovox.errors import ConfigError, FeatureError
from emovox.fileio import atomic_output

_CHUNK = 1 << 20


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise FeatureError(
            f"cannot read {os.fspath(path)!r} to fingerprint it: {exc.strerror}; check the path"
        ) from exc
    return h.hexdigest()


def cache_key(fingerprint: str, config: dict) -> str:
    """Cache key of one clip's features: SHA-256 of the fingerprint and the full config."""
    try:
        blob = json.dumps({"audio": fingerprint, "config": config}, sort_keys=True, separators=(",", ":"))
    except TypeError as exc:
        raise ConfigError(
            f"feature config is not JSON-serialisable ({exc}); use plain numbers, strings and lists"
        ) from exc
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class FeatureCache:
    """A folder of cached feature arrays, one ``.npy`` per key.

    Parameters
    ----------
    cache_dir : path
        Created on first write.
    """

    def __init__(self, cache_dir: str | os.PathLike[str]) -> None:
        self.root = Path(cache_dir)

    def path_for(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The cached array, or ``None`` on a miss (or an unreadable entry)."""
        path = self.path_for(key)
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None

    def put(self, key: str, value: np.ndarray) -> Path:
        """Store ``value`` atomically under ``key``; returns the entry's path."""
        path = self.path_for(key)
        try:
            with atomic_output(path, durable=False) as tmp, open(tmp, "wb") as f:  # an entry can be rebuilt
                np.save(f, np.ascontiguousarray(value), allow_pickle=False)
        except OSError as error:
            raise FeatureError(
                f"cannot write the feature cache in {path.parent}: {error.strerror or error}; "
                "give a writable folder with --cache-dir (or $EMOVOX_CACHE)"
            ) from None
        return path

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.root)!r})"
