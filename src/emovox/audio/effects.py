"""Array-in, array-out waveform effects: resample, downmix, normalise, trim.

All functions take float32 arrays with time on the last axis and never touch
files. Loudness follows ITU-R BS.1770-4: K-weighted mean square over 400 ms
blocks with 75 % overlap, an absolute gate at -70 LUFS and a relative gate
10 LU below the ungated level (mono, so no channel weights).
"""

from __future__ import annotations

import numpy as np
import soxr

from emovox.audio.validate import check_non_negative, check_positive, check_sample_rate
from emovox.errors import ConfigError

#: soxr quality used everywhere ("HQ": 20-bit, linear phase).
RESAMPLE_QUALITY = "HQ"

#: Default loudness target, EBU R128.
TARGET_LUFS = -23.0


def band_limit(y: np.ndarray, *, sample_rate_hz: int, rate_hz: int = 8000) -> np.ndarray:
    """``y`` ``(n,)`` through a ``rate_hz`` channel: resampled down and back up, length kept.

    Removes everything above ``rate_hz / 2`` as a telephone line does (8 kHz:
    above 4 kHz), so wideband and narrowband inputs reach a model alike.
    """
    y = np.asarray(y, dtype=np.float32)
    if rate_hz >= sample_rate_hz or y.size == 0:
        return y
    back = resample(resample(y, orig_hz=sample_rate_hz, target_hz=rate_hz), orig_hz=rate_hz, target_hz=sample_rate_hz)
    return back[: y.size] if back.size >= y.size else np.pad(back, (0, y.size - back.size))


def resample(y: np.ndarray, *, orig_hz: float, target_hz: float) -> np.ndarray:
    """Resample with soxr (HQ, linear phase).

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)]
        Real samples; time on the last axis.
    orig_hz, target_hz : float > 0
        Sample rates in Hz.

    Returns
    -------
    np.ndarray [shape=(..., round(n * target_hz / orig_hz)), dtype=float32]
        ``y`` as float32 unchanged when the rates are equal.
    """
    orig = check_sample_rate(orig_hz, "orig_hz")
    target = check_sample_rate(target_hz, "target_hz")
    y = np.asarray(y, dtype=np.float32)
    if orig == target:
        return y
    n = y.shape[-1]
    if n == 0:
        return np.zeros(y.shape[:-1] + (0,), dtype=np.float32)
    if y.ndim == 1:
        return soxr.resample(y, orig, target, quality=RESAMPLE_QUALITY)
    lead = y.shape[:-1]
    frames = np.ascontiguousarray(y.reshape(-1, n).T)  # soxr wants (n, channels)
    out = soxr.resample(frames, orig, target, quality=RESAMPLE_QUALITY)
    return np.ascontiguousarray(out.T).reshape(lead + (out.shape[0],))


def to_mono(y: np.ndarray) -> np.ndarray:
    """Downmix by averaging channels.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        return y
    if y.ndim != 2:
        raise ConfigError(f"to_mono expects shape (n,) or (channels, n), got shape {y.shape}")
    if y.shape[0] == 1:
        return y[0]
    return y.mean(axis=0, dtype=np.float32)


def normalize_peak(y: np.ndarray, *, peak: float = 1.0) -> np.ndarray:
    """Scale so that the largest absolute sample equals ``peak``.

    Silence (all zeros) is returned unchanged.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)]
    peak : float > 0
        Target peak amplitude (1.0 = full scale).

    Returns
    -------
    np.ndarray [shape=y.shape, dtype=float32]
    """
    check_positive(peak, "peak")
    y = np.asarray(y, dtype=np.float32)
    top = float(np.max(np.abs(y))) if y.size else 0.0
    if top == 0.0:
        return y
    return y * np.float32(peak / top)


def _k_weighting_sos(sample_rate_hz: float) -> np.ndarray:
    """BS.1770 K-weighting (high shelf, then RLB high-pass) for any rate.

    Bilinear-transform design of libebur128, which reproduces the 48 kHz
    coefficients tabulated in BS.1770 to within 1e-6.
    """
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = np.tan(np.pi * f0 / sample_rate_hz)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = [
        (vh + vb * k / q + k * k) / a0,
        2 * (k * k - vh) / a0,
        (vh - vb * k / q + k * k) / a0,
        1.0,
        2 * (k * k - 1) / a0,
        (1 - k / q + k * k) / a0,
    ]
    f0, q = 38.13547087602444, 0.5003270373238773
    k = np.tan(np.pi * f0 / sample_rate_hz)
    a0 = 1 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


def _frame_powers(x: np.ndarray, *, frame: int, hop: int) -> np.ndarray:
    """Mean square (float64) of each ``frame``-sample frame, one every ``hop`` samples.

    A signal no longer than one frame is measured as a single frame.
    """
    sq = np.square(x, dtype=np.float64)
    n = sq.shape[-1]
    if n <= frame:
        return np.array([np.mean(sq)])
    csum = np.concatenate([[0.0], np.cumsum(sq)])
    starts = np.arange(0, n - frame + 1, hop)
    return (csum[starts + frame] - csum[starts]) / frame


def loudness_lufs(y: np.ndarray, *, sample_rate_hz: float) -> float:
    """Integrated loudness of a mono signal (BS.1770-4, gated).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    sample_rate_hz : float > 0

    Returns
    -------
    float
        Loudness in LUFS; ``-inf`` for silence (every block below -70 LUFS).
        Clips shorter than one 400 ms block are measured as a single block.
    """
    sr = check_sample_rate(sample_rate_hz)
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0:
        return float("-inf")
    from scipy.signal import sosfilt  # scipy.signal takes ~1 s to import: only when needed

    z = sosfilt(_k_weighting_sos(sr), y)
    powers = _frame_powers(z, frame=int(round(0.4 * sr)), hop=max(1, int(round(0.1 * sr))))
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10 * np.log10(powers)
    keep = levels > -70.0
    if not keep.any():
        return float("-inf")
    relative = -0.691 + 10 * np.log10(np.mean(powers[keep])) - 10.0
    keep &= levels > relative
    return float(-0.691 + 10 * np.log10(np.mean(powers[keep])))


def normalize_loudness(
    y: np.ndarray,
    *,
    sample_rate_hz: float,
    target_lufs: float = TARGET_LUFS,
    max_peak: float = 1.0,
) -> np.ndarray:
    """Scale a mono signal to a target integrated loudness (BS.1770-4).

    The gain is lowered if it would push the peak above ``max_peak`` (no
    clipping, so very dynamic clips may end up quieter than the target).
    Silence is returned unchanged.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    sample_rate_hz : float > 0
    target_lufs : float
        Target loudness in LUFS (EBU R128: -23).
    max_peak : float > 0
        Largest absolute sample allowed after scaling.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
    """
    check_positive(max_peak, "max_peak")
    if not np.isfinite(target_lufs) or target_lufs > 0:
        raise ConfigError(f"target_lufs must be a finite level <= 0 LUFS, got {target_lufs!r}")
    y = np.asarray(y, dtype=np.float32)
    level = loudness_lufs(y, sample_rate_hz=sample_rate_hz)
    if not np.isfinite(level):
        return y
    gain = 10 ** ((target_lufs - level) / 20)
    top = float(np.max(np.abs(y)))
    if top * gain > max_peak:
        gain = max_peak / top
    return y * np.float32(gain)


def trim_silence(
    y: np.ndarray,
    *,
    sample_rate_hz: float,
    top_db: float = 40.0,
    frame_s: float = 0.025,
    hop_s: float = 0.010,
) -> np.ndarray:
    """Cut leading and trailing frames quieter than ``top_db`` below the loudest.

    Energy-based, like :func:`librosa.effects.trim`: frame RMS is compared
    with the loudest frame's RMS.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    sample_rate_hz : float > 0
    top_db : float > 0
        Frames more than this many dB below the loudest frame are silence.
    frame_s, hop_s : float > 0
        Analysis frame length and hop in seconds.

    Returns
    -------
    np.ndarray [shape=(m,), dtype=float32]
        A view of ``y`` from the first to the end of the last non-silent
        frame; empty when ``y`` is all zeros.
    """
    sr = check_sample_rate(sample_rate_hz)
    check_positive(top_db, "top_db")
    frame = max(1, int(round(check_positive(frame_s, "frame_s") * sr)))
    hop = max(1, int(round(check_positive(hop_s, "hop_s") * sr)))
    y = np.asarray(y, dtype=np.float32)
    n = y.shape[-1]
    if n == 0:
        return y
    power = _frame_powers(y, frame=frame, hop=hop)
    peak = power.max()
    if peak <= 0:
        return y[:0]
    loud = np.flatnonzero(power > peak * 10 ** (-check_non_negative(top_db, "top_db") / 10))
    start = int(loud[0]) * hop
    end = n if loud[-1] == len(power) - 1 else min(n, int(loud[-1]) * hop + frame)
    return y[start:end]


#: Models never see less than this after silence trimming (seconds).
MIN_TRIMMED_S = 0.5


def trim_for_model(y: np.ndarray, *, sample_rate_hz: int, min_keep_s: float = MIN_TRIMMED_S) -> np.ndarray:
    """Silence-trim a clip for a model, keeping the untrimmed clip if too little remains.

    The one rule used wherever a model's ``preprocessing.trim_silence`` is set
    (training, evaluation, the predictor, the bundled model's build), so a
    model is always served the input it was trained on.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono float32 clip.
    sample_rate_hz : int
    min_keep_s : float
        If trimming leaves fewer seconds than this, ``y`` is returned unchanged.

    Returns
    -------
    np.ndarray [shape=(m,)]
    """
    trimmed = trim_silence(y, sample_rate_hz=sample_rate_hz)
    return trimmed if trimmed.size >= min_keep_s * sample_rate_hz else np.asarray(y, dtype=np.float32)
