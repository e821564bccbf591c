"""Windows: how a prepared clip becomes the fixed- or variable-length inputs of a model, and their logits.

A fixed-length model takes windows of its clip length (``info.n_samples``):
a clip up to :data:`CROP_FACTOR` clip lengths is centre-cropped or
centre-padded to it (as the training evaluation does); a longer one is cut
into windows (hop half a clip). A model whose artifact says
``preprocessing.crop = "none"`` (it pools over time, like the flagship) takes
each clip at its own length up to :data:`MAX_FULL_S` (longer ones in windows
of that length); one shorter than :data:`MIN_WINDOW_S` is repeated up to it.
:func:`batched_logits` runs windows through a backend in batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from emovox.errors import ConfigError, ModelError
from emovox.inference.backends import ModelInfo
from emovox.inference.timeline import window_starts

__all__ = ["CROP_FACTOR", "MAX_FULL_S", "MIN_WINDOW_S", "center_fix", "fit_window", "clip_windows", "batched_logits"]

#: Fixed-length models: clips longer than this many clip lengths are cut into windows.
CROP_FACTOR = 2.0
#: Variable-length models: clips up to this long (s) are fed whole; longer ones in windows of it.
MAX_FULL_S = 30.0
#: Variable-length models: shorter windows (s) are repeated up to this length.
MIN_WINDOW_S = 0.5


def center_fix(y: np.ndarray, n: int) -> np.ndarray:
    """Centre-crop or centre-pad ``y`` ``(m,)`` to ``(n,)`` (as ``training.data.fix_length``)."""
    m = y.shape[-1]
    if m == n:
        return y
    if m > n:
        start = (m - n) // 2
        return y[start : start + n]
    before = (n - m) // 2
    return np.pad(y, (before, n - m - before))


def fit_window(y: np.ndarray, info: ModelInfo) -> np.ndarray:
    """One window ``(m,)`` as the model takes it: fixed length, or at least :data:`MIN_WINDOW_S`."""
    if info.fixed_length:
        n = info.n_samples
        return center_fix(y, n) if info.crop == "center" else np.pad(y[:n], (0, max(0, n - y.size)))
    m = int(MIN_WINDOW_S * info.sample_rate_hz)
    if y.size < m:  # too short for the model: repeat it (as training tiles short crops)
        y = np.tile(y, int(np.ceil(m / max(1, y.size))))[:m] if y.size else np.zeros(m, np.float32)
    return y


def clip_windows(y: np.ndarray, info: ModelInfo) -> list[np.ndarray]:
    """The windows the model classifies for a prepared clip ``(n,)`` (at least one; see the module's notes)."""
    if info.fixed_length:
        n = info.n_samples
        limit = CROP_FACTOR * n
    else:
        n = int(MAX_FULL_S * info.sample_rate_hz)
        limit = n
    if y.size <= limit:
        return [fit_window(y, info)]
    starts = window_starts(y.size, window=n, hop=max(1, n // 2))
    return [fit_window(y[s : s + n], info) for s in starts]


def batched_logits(
    run: Callable[[np.ndarray], np.ndarray],
    waveforms: np.ndarray | Sequence[np.ndarray],
    *,
    batch_size: int,
    n_classes: int,
) -> np.ndarray:
    """Logits of windows, ``batch_size`` at a time.

    Parameters
    ----------
    run : callable
        ``run(x (batch, n)) -> (batch, n_classes)``: one backend call.
    waveforms : np.ndarray [shape=(batch, n)] or sequence of np.ndarray [shape=(n_i,)]
        Windows; in a list, windows of equal length are batched together.
    batch_size : int
        Windows per call of ``run``.
    n_classes : int
        Classes the model's config names.

    Returns
    -------
    np.ndarray [shape=(batch, n_classes), dtype=float32]
        In the order of ``waveforms``.

    Raises
    ------
    ModelError
        ``run`` returned logits of another shape (config and weights disagree).
    """
    if isinstance(waveforms, np.ndarray):
        x = np.asarray(waveforms, dtype=np.float32)
        if x.ndim != 2:
            raise ConfigError(f"waveforms must be shaped (batch, n), got {x.shape}")
        groups = [(np.arange(len(x)), x)]
    else:
        items = [np.asarray(w, dtype=np.float32).reshape(-1) for w in waveforms]
        by_len: dict[int, list[int]] = {}
        for i, w in enumerate(items):
            by_len.setdefault(w.size, []).append(i)
        groups = [(np.array(idx), np.stack([items[i] for i in idx])) for idx in by_len.values()]
    n = sum(len(idx) for idx, _ in groups)
    z = np.zeros((n, n_classes), np.float32)
    for idx, x in groups:
        for i in range(0, len(x), batch_size):
            out = run(x[i : i + batch_size])
            if out.shape != (len(x[i : i + batch_size]), n_classes):
                raise ModelError(
                    f"the model returned logits of shape {out.shape} for {n_classes} labels: "
                    "its config and weights do not match"
                )
            z[idx[i : i + batch_size]] = out
    return z
