"""Spectral-gating noise reduction (stationary noise), in numpy/scipy.

The method of Sainburg's ``noisereduce`` (stationary mode), reimplemented:

1. STFT (Hann window of ``win_s``, 75 % overlap).
2. Noise profile: from the quietest ``noise_fraction`` of frames (by total
   energy), the per-frequency mean and standard deviation of the level in dB.
3. Threshold per frequency: ``mean + n_std * std``.
4. Soft mask: a logistic of (level - threshold) with a slope of
   ``softness_db``, smoothed over ``smooth_hz`` in frequency and
   ``smooth_s`` in time, turned into a gain between the floor
   ``10 ** (-reduction_db / 20)`` and 1.
5. Inverse STFT, cut to the input length.

It needs some frames without speech (pauses, lead-in) to learn the noise;
a signal that is loud all the time is mostly left alone.
"""

from __future__ import annotations

import numpy as np

from emovox.audio.validate import check_positive, check_sample_rate
from emovox.errors import ConfigError


def spectral_gate(
    y: np.ndarray,
    *,
    sample_rate_hz: float,
    win_s: float = 0.032,
    noise_fraction: float = 0.2,
    n_std: float = 1.5,
    softness_db: float = 2.0,
    reduction_db: float = 30.0,
    smooth_hz: float = 100.0,
    smooth_s: float = 0.03,
) -> np.ndarray:
    """Reduce stationary background noise by spectral gating.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono float samples.
    sample_rate_hz : float > 0
    win_s : float > 0
        STFT window length in seconds (rounded up to a power of two samples).
    noise_fraction : float in (0, 1]
        Share of the quietest frames used to estimate the noise profile.
    n_std : float >= 0
        Threshold above the noise mean, in noise standard deviations.
    softness_db : float > 0
        Width of the soft transition of the mask around the threshold.
    reduction_db : float > 0
        Largest attenuation applied to gated bins.
    smooth_hz, smooth_s : float >= 0
        Extent of mask smoothing over frequency (Hz) and time (s); the
        defaults give a 3 x 3 box at 16 kHz. Much wider boxes average
        narrow harmonics away with the noise.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
    """
    sr = check_sample_rate(sample_rate_hz)
    check_positive(win_s, "win_s")
    check_positive(softness_db, "softness_db")
    check_positive(reduction_db, "reduction_db")
    if not 0 < noise_fraction <= 1:
        raise ConfigError(f"noise_fraction must be in (0, 1], got {noise_fraction!r}")
    if n_std < 0 or smooth_hz < 0 or smooth_s < 0:
        raise ConfigError(f"n_std, smooth_hz and smooth_s must be >= 0, got {n_std!r}, {smooth_hz!r}, {smooth_s!r}")
    from scipy import ndimage, signal  # slow to import (~1 s): only when denoising

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ConfigError(f"spectral_gate expects mono audio of shape (n,), got shape {y.shape}")
    n_fft = int(2 ** np.ceil(np.log2(max(16, win_s * sr))))
    hop = n_fft // 4
    n = y.size
    if n < n_fft:
        return y  # too short to learn a noise profile
    _, _, spec = signal.stft(y, fs=sr, window="hann", nperseg=n_fft, noverlap=n_fft - hop, boundary="even")
    power = spec.real**2 + spec.imag**2
    level_db = 10 * np.log10(np.maximum(power, 1e-20))

    frame_energy = power.sum(axis=0)
    n_noise = max(1, int(np.ceil(noise_fraction * frame_energy.size)))
    quiet = np.argsort(frame_energy)[:n_noise]
    noise_db = level_db[:, quiet]
    threshold = noise_db.mean(axis=1) + n_std * noise_db.std(axis=1)

    mask = 1 / (1 + np.exp(-(level_db - threshold[:, None]) / softness_db))
    size_f = 1 + 2 * int(smooth_hz / (sr / n_fft) / 2)  # odd box sizes; wider ones
    size_t = 1 + 2 * int(smooth_s / (hop / sr) / 2)  # dilute narrow harmonics
    if size_f > 1 or size_t > 1:
        mask = ndimage.uniform_filter(mask, size=(size_f, size_t), mode="nearest")
    floor = 10 ** (-reduction_db / 20)
    gain = floor + (1 - floor) * mask

    _, out = signal.istft(spec * gain, fs=sr, window="hann", nperseg=n_fft, noverlap=n_fft - hop, boundary=True)
    out = out[:n]
    if out.size < n:
        out = np.pad(out, (0, n - out.size))
    return out.astype(np.float32)
