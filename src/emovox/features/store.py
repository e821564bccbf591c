"""Feature files: the features of many clips in one safetensors file, described by JSON.

What ``emovox features`` writes and :func:`read_features` reads back. It
holds no pickle: the arrays are safetensors tensors, and everything else
(one entry per clip, the feature config) is JSON in the file's header
metadata under ``"emovox"``.

Two kinds:

- ``"utterance"``: one vector per clip, tensor ``features`` ``(n_clips, dim)``;
- ``"frames"``: one ``(dim, frames_i)`` matrix per clip (log-mel, MFCC), stored
  frame-major as tensor ``frames`` ``(sum frames_i, dim)`` with ``offsets``
  ``(n_clips + 1,)`` int64: clip ``i`` is ``frames[offsets[i]:offsets[i + 1]].T``.

Examples
--------
>>> f = read_features("feats.safetensors")            # doctest: +SKIP
>>> f.kind, len(f.items), f.clip(0).shape             # doctest: +SKIP
('frames', 1440, (40, 331))
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emovox.errors import ConfigError, FeatureError
from emovox.fileio import as_os_error, atomic_output

FORMAT = "emovox-features/1"
KINDS = ("utterance", "frames")


@dataclass(frozen=True)
class FeatureFile:
    """Contents of a feature file.

    Attributes
    ----------
    kind : {"utterance", "frames"}
    items : list of dict
        One per clip, in order: ``path`` and, where known, ``corpus``,
        ``speaker``, ``label`` (the corpus's own), ``emotion`` (canonical).
    config : dict
        Feature set / front-end settings and the audio loading rate.
    features : np.ndarray
        ``(n_clips, dim)`` for ``"utterance"``; ``(sum frames, dim)`` frame-major for ``"frames"``.
    offsets : np.ndarray or None
        ``(n_clips + 1,)`` int64 row offsets into ``features`` (``"frames"`` only).
    """

    kind: str
    items: list
    config: dict
    features: np.ndarray
    offsets: np.ndarray | None = None

    def clip(self, i: int) -> np.ndarray:
        """Features of clip ``i``: ``(dim,)`` or ``(dim, frames_i)``."""
        if self.offsets is None:
            return self.features[i]
        return self.features[self.offsets[i] : self.offsets[i + 1]].T


def write_features(
    path: str | os.PathLike, features: np.ndarray | Sequence[np.ndarray], items: Sequence[dict], config: dict
) -> Path:
    """Write a feature file atomically (a reader never sees half of one).

    Parameters
    ----------
    features : np.ndarray [shape=(n, dim)] or sequence of np.ndarray [shape=(dim, frames_i)]
        An array means ``"utterance"`` features; a sequence of 2-D arrays ``"frames"``.
    items : sequence of dict
        One JSON-able dict per clip (at least ``path``).
    config : dict
        JSON-able description of how the features were made.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    if isinstance(features, np.ndarray):
        kind = "utterance"
        if features.ndim != 2:
            raise FeatureError(f"utterance features must be (n_clips, dim), got shape {features.shape}")
        tensors: dict[str, np.ndarray] = {"features": np.ascontiguousarray(features, dtype=np.float32)}
        n = len(features)
    else:
        kind = "frames"
        dims = {f.shape[0] for f in features if f.ndim == 2}
        if len(dims) > 1 or any(f.ndim != 2 for f in features):
            raise FeatureError("frame features must be (dim, frames) arrays with one dim for every clip")
        lengths = np.array([f.shape[1] for f in features], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        frames = np.empty((int(offsets[-1]), dims.pop() if dims else 0), dtype=np.float32)
        for f, start, stop in zip(features, offsets[:-1], offsets[1:]):
            frames[start:stop] = f.T  # one copy, frame-major
        tensors = {"frames": frames, "offsets": offsets}
        n = len(features)
    if len(items) != n:
        raise FeatureError(f"got {n} feature rows but {len(items)} item descriptions")
    meta = {"format": FORMAT, "kind": kind, "items": list(items), "config": config}
    try:
        with atomic_output(path) as tmp:
            save_file(tensors, str(tmp), metadata={"emovox": json.dumps(meta)})
    except SafetensorError as error:  # a full disk surfaces as this, not as OSError
        raise as_os_error(error) from None
    return Path(path)


def read_features(path: str | os.PathLike) -> FeatureFile:
    """Read a file written by :func:`write_features` (``emovox features``).

    Raises
    ------
    ConfigError
        The file is missing or is not an emovox feature file.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"feature file {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            meta = json.loads((handle.metadata() or {}).get("emovox", "null"))
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise ConfigError(f"{str(path)!r} is not a safetensors feature file ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("kind") not in KINDS:
        raise ConfigError(
            f"{str(path)!r} is not an emovox feature file (no {FORMAT!r} header): write one with `emovox features`"
        )
    if meta["kind"] == "utterance":
        return FeatureFile("utterance", meta["items"], meta["config"], tensors["features"])
    return FeatureFile("frames", meta["items"], meta["config"], tensors["frames"], tensors["offsets"])
