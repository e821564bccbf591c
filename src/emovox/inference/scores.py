"""Class scores: the one softmax, and how window logits pool into the logits of a clip.

Everything that turns logits into probabilities goes through :func:`softmax`
(``predict``, timelines, streaming, calibration, ``emovox evaluate --model``).
A clip cut into several windows is scored by the mean of its windows'
calibrated probabilities; :func:`pool_logits` gives the logits of that mean,
so that a clip has logits however many windows it took.
"""

from __future__ import annotations

import numpy as np

from emovox.errors import ConfigError

__all__ = ["softmax", "pool_logits"]

#: Smallest probability :func:`pool_logits` takes the log of (keeps the logits finite).
_TINY = np.finfo(np.float64).tiny


def softmax(logits: np.ndarray, *, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``; ``(n, c)`` -> ``(n, c)`` float64 (also ``(c,)`` -> ``(c,)``)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def pool_logits(window_logits: np.ndarray, *, temperature: float = 1.0) -> np.ndarray:
    """The logits of a clip from the logits of its windows.

    Parameters
    ----------
    window_logits : np.ndarray [shape=(n_windows, n_classes)]
        Raw logits of the clip's windows (``n_windows >= 1``).
    temperature : float
        The calibration temperature ``T`` the probabilities are computed at.

    Returns
    -------
    np.ndarray [shape=(n_classes,), dtype=float32]
        One window: its logits unchanged. Several: ``T * log(mean_w softmax(z_w / T))``,
        the logits whose ``softmax(. / T)`` is the mean of the windows'
        calibrated probabilities (how a clip's scores are pooled).
    """
    z = np.asarray(window_logits, dtype=np.float32)
    if z.ndim != 2 or z.shape[0] == 0:
        raise ConfigError(f"window logits must be shaped (n_windows >= 1, n_classes), got {z.shape}")
    if z.shape[0] == 1:
        return z[0].copy()
    t = float(temperature)
    mean = softmax(z, temperature=t).mean(axis=0)
    return (t * np.log(np.maximum(mean, _TINY))).astype(np.float32)
