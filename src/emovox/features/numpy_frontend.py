"""Vectorised NumPy log-mel / MFCC over a batch of clips (no torch needed).

Same definitions as the torch front ends (:mod:`emovox.features.frontend`) and
librosa; see :mod:`emovox.features.spectral`. Frames are strided views and the
FFT is one ``numpy.fft.rfft`` call over ``(batch, frames, n_fft)``, so a batch
costs one pass. Use it where torch is not installed; use the torch modules for
models and ONNX export.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import numpy as np
import scipy.fft

from emovox.errors import FeatureError
from emovox.features.spectral import LogMelConfig, dct_matrix


@lru_cache(maxsize=16)
def _constants(cfg: LogMelConfig) -> tuple[np.ndarray, np.ndarray]:
    return cfg.window().astype(np.float32), cfg.mel_filterbank().astype(np.float32)


def log_mel_batch(y: np.ndarray, config: LogMelConfig | None = None, **settings: Any) -> np.ndarray:
    """Log-mel spectrograms of equal-length clips.

    Parameters
    ----------
    y : np.ndarray [shape=(batch, n) or (n,)]
        Float waveforms at ``config.sample_rate_hz``.
    config : LogMelConfig, optional
        Front-end settings; or pass them as keywords (``sample_rate_hz=...``).

    Returns
    -------
    np.ndarray [shape=(batch, n_mels, frames) or (n_mels, frames)], float32
        dB or natural-log mel power, as ``config.log`` says.
    """
    cfg = config if config is not None else LogMelConfig(**settings)
    y = np.asarray(y)
    if y.ndim not in (1, 2) or not np.issubdtype(y.dtype, np.floating):
        raise FeatureError(f"expected float waveforms of shape (batch, n) or (n,), got {y.dtype} {y.shape}")
    squeeze = y.ndim == 1
    y2 = y[None, :] if squeeze else y
    if y2.shape[0] == 0:
        raise FeatureError("got an empty batch (batch size 0); pass at least one clip")
    cfg.check_length(y2.shape[-1])
    window, mel_fb = _constants(cfg)
    pad = cfg.n_fft // 2
    # LogMelConfig checks pad_mode is one of PAD_MODES ("constant", "reflect").
    mode: Literal["constant", "reflect"] = "reflect" if cfg.pad_mode == "reflect" else "constant"
    padded = np.pad(y2.astype(np.float32, copy=False), ((0, 0), (pad, pad)), mode=mode)
    frames = np.lib.stride_tricks.sliding_window_view(padded, cfg.n_fft, axis=-1)[:, :: cfg.hop_length]
    spec = scipy.fft.rfft(frames * window, axis=-1)  # (batch, frames, n_freqs); scipy: ~2x numpy.fft here
    power = spec.real**2 + spec.imag**2
    mel = np.matmul(power, mel_fb.T).transpose(0, 2, 1)  # (batch, n_mels, frames)
    floored = np.maximum(mel, cfg.amin)
    if cfg.log == "log":
        out = np.log(floored)
    else:
        out = 10.0 * np.log10(floored)
        if cfg.top_db is not None:
            out = np.maximum(out, out.max(axis=(-2, -1), keepdims=True) - cfg.top_db)
    out = out.astype(np.float32, copy=False)
    return out[0] if squeeze else out


def mfcc_batch(y: np.ndarray, *, n_mfcc: int = 40, config: LogMelConfig | None = None, **settings: Any) -> np.ndarray:
    """MFCC of equal-length clips, as ``librosa.feature.mfcc`` (DCT-II ortho of the dB mel spectrogram).

    Returns
    -------
    np.ndarray [shape=(batch, n_mfcc, frames) or (n_mfcc, frames)], float32
    """
    cfg = config if config is not None else LogMelConfig(**settings)
    if cfg.log != "db":
        raise FeatureError(f"MFCC needs log='db' (as librosa.feature.mfcc); got log={cfg.log!r}")
    d = dct_matrix(n_mfcc, cfg.n_mels).astype(np.float32)
    return np.matmul(d, log_mel_batch(y, cfg)).astype(np.float32, copy=False)
