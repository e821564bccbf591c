"""Log-mel / MFCC front-end configuration and the fixed matrices it needs.

:class:`LogMelConfig` is the one description of a log-mel (or MFCC) front end
shared by the torch modules (:mod:`emovox.features.frontend`) and the NumPy
version (:mod:`emovox.features.numpy_frontend`). It validates its fields once,
round-trips to a JSON-able dict (model artifacts store it), and builds the
constant matrices: the analysis window, the real/imaginary DFT basis, librosa's
mel filterbank and the orthonormal DCT-II matrix.

Every definition follows librosa 0.11 so that the front ends agree with
``librosa.feature.melspectrogram`` → ``librosa.power_to_db`` →
``librosa.feature.mfcc``:

- periodic Hann window of ``win_length`` samples, zero-padded (centred) to
  ``n_fft`` (``scipy.signal.get_window("hann", win_length, fftbins=True)``);
- ``center=True``: the signal is padded by ``n_fft // 2`` on both sides, with
  zeros (``pad_mode="constant"``, librosa's default since 0.10) or by
  reflection (``pad_mode="reflect"``), so a clip of ``n`` samples has
  ``1 + (n + 2 * (n_fft // 2) - n_fft) // hop_length`` frames
  (``1 + n // hop_length`` for an even ``n_fft``);
- power spectrogram ``|X|**2``; Slaney-style mel filterbank with Slaney area
  normalisation (``librosa.filters.mel(htk=False, norm="slaney")``);
- dB: ``10 * log10(max(S, amin))``, then per clip ``max(S_db, S_db.max() - top_db)``
  (``ref=1.0``); natural log: ``log(max(S, amin))``;
- MFCC: DCT-II with ``norm="ortho"`` over the mel axis of the dB spectrogram,
  first ``n_mfcc`` rows, no liftering.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from emovox.errors import ConfigError, FeatureError

LOG_MODES = ("db", "log")
PAD_MODES = ("constant", "reflect")


@dataclass(frozen=True)
class LogMelConfig:
    """Settings of a log-mel front end (librosa vocabulary, sizes in samples).

    Parameters
    ----------
    sample_rate_hz : int
        Sample rate of the input waveform in Hz.
    n_fft : int
        FFT size in samples.
    hop_length : int
        Frame step in samples.
    win_length : int or None
        Window length in samples (``<= n_fft``); ``None`` means ``n_fft``.
    n_mels : int
        Number of mel bands.
    f_min_hz, f_max_hz : float, float or None
        Lowest / highest filterbank frequency in Hz; ``None`` means Nyquist.
    log : {"db", "log"}
        ``"db"``: ``power_to_db`` with ``top_db`` clipping (librosa); ``"log"``:
        natural log of the power clipped at ``amin``.
    top_db : float or None
        Dynamic range kept by ``log="db"`` (per clip); ``None`` keeps all.
    amin : float
        Floor applied to the mel power before the log.
    pad_mode : {"constant", "reflect"}
        How ``center=True`` pads the signal (zeros, as librosa does by default,
        or reflection). Reflection needs more than ``n_fft // 2`` samples.
    """

    sample_rate_hz: int = 16000
    n_fft: int = 512
    hop_length: int = 160
    win_length: int | None = None
    n_mels: int = 64
    f_min_hz: float = 0.0
    f_max_hz: float | None = None
    log: str = "db"
    top_db: float | None = 80.0
    amin: float = 1e-10
    pad_mode: str = "constant"

    def __post_init__(self) -> None:
        for name in ("sample_rate_hz", "n_fft", "hop_length", "n_mels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ConfigError(f"{name}={value!r} is not a positive integer")
        if self.n_fft < 2:
            raise ConfigError(f"n_fft={self.n_fft} is too small; use at least 2 (e.g. 512 at 16 kHz)")
        win = self.n_fft if self.win_length is None else self.win_length
        if isinstance(win, bool) or not isinstance(win, (int, np.integer)) or not 0 < win <= self.n_fft:
            raise ConfigError(f"win_length={self.win_length!r} must be an integer in 1..n_fft={self.n_fft}")
        nyquist = self.sample_rate_hz / 2.0
        f_max = nyquist if self.f_max_hz is None else float(self.f_max_hz)
        if not 0.0 <= float(self.f_min_hz) < f_max <= nyquist:
            raise ConfigError(
                f"need 0 <= f_min_hz < f_max_hz <= sample_rate_hz / 2 = {nyquist:g}; "
                f"got f_min_hz={self.f_min_hz!r}, f_max_hz={self.f_max_hz!r}"
            )
        if self.log not in LOG_MODES:
            raise ConfigError(f"log={self.log!r} is not one of {LOG_MODES}")
        if self.pad_mode not in PAD_MODES:
            raise ConfigError(f"pad_mode={self.pad_mode!r} is not one of {PAD_MODES}")
        if self.top_db is not None and not self.top_db >= 0:
            raise ConfigError(f"top_db={self.top_db!r} must be >= 0 or None")
        if not self.amin > 0:
            raise ConfigError(f"amin={self.amin!r} must be > 0")

    # -- serialisation -------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain JSON-able dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LogMelConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown log-mel setting(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as error:  # a value of the wrong type in a saved config
            raise ConfigError(f"invalid log-mel settings {data}: {error}") from None

    # -- derived sizes -------------------------------------------------------
    @property
    def n_freqs(self) -> int:
        """Number of one-sided frequency bins, ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    @property
    def min_samples(self) -> int:
        """Fewest samples a clip may have (1, or ``n_fft // 2 + 1`` for reflection)."""
        return self.n_fft // 2 + 1 if self.pad_mode == "reflect" else 1

    def n_frames(self, n_samples: int) -> int:
        """Frames produced for a clip of ``n_samples`` samples (``center=True``)."""
        pad = self.n_fft // 2
        return 1 + (n_samples + 2 * pad - self.n_fft) // self.hop_length

    def check_length(self, n_samples: int) -> None:
        """Raise :class:`FeatureError` if a clip of ``n_samples`` is too short."""
        if n_samples < self.min_samples:
            raise FeatureError(
                f"clip has {n_samples} samples, the log-mel front end needs at least "
                f"{self.min_samples} (pad_mode={self.pad_mode!r}, n_fft={self.n_fft}); "
                "pad the clip or use pad_mode='constant'"
            )

    # -- constant matrices (float64) ----------------------------------------
    def window(self) -> np.ndarray:
        """Periodic Hann window padded (centred) to ``n_fft``; shape ``(n_fft,)``."""
        win = self.n_fft if self.win_length is None else int(self.win_length)
        k = np.arange(win)
        w = 0.5 - 0.5 * np.cos(2.0 * np.pi * k / win)
        left = (self.n_fft - win) // 2
        out = np.zeros(self.n_fft)
        out[left : left + win] = w
        return out

    def dft_basis(self) -> tuple[np.ndarray, np.ndarray]:
        """Windowed real and imaginary DFT bases, each ``(n_freqs, n_fft)``.

        ``X[f] = sum_t x[t] w[t] exp(-2j pi f t / n_fft)`` equals
        ``real[f] @ x + 1j * imag[f] @ x``.
        """
        t = np.arange(self.n_fft)
        f = np.arange(self.n_freqs)
        angle = 2.0 * np.pi * np.outer(f, t) / self.n_fft
        w = self.window()
        return np.cos(angle) * w, -np.sin(angle) * w

    def mel_filterbank(self) -> np.ndarray:
        """librosa's Slaney mel filterbank, ``(n_mels, n_freqs)``, float64.

        ``librosa.filters.mel(htk=False, norm="slaney")`` computed here in NumPy
        (equal to 1e-12, tested): importing ``librosa.filters`` pulls in
        ``scipy.signal``, about 2 s of start-up for every front end built.
        Triangles on the Slaney mel scale between ``f_min_hz`` and ``f_max_hz``
        (default Nyquist), each scaled to unit area (``2 / bandwidth``). Many
        bands at a low rate leave some filters empty; their output is the
        floor ``amin``, as in librosa.
        """
        f_max = self.sample_rate_hz / 2.0 if self.f_max_hz is None else float(self.f_max_hz)
        fft_hz = np.linspace(0.0, self.sample_rate_hz / 2.0, self.n_freqs)
        mel_edges = np.linspace(_hz_to_slaney_mel(float(self.f_min_hz)), _hz_to_slaney_mel(f_max), self.n_mels + 2)
        edges_hz = _slaney_mel_to_hz(mel_edges)
        widths = np.diff(edges_hz)
        ramps = edges_hz[:, None] - fft_hz[None, :]
        rising = -ramps[:-2] / widths[:-1, None]
        falling = ramps[2:] / widths[1:, None]
        weights = np.maximum(0.0, np.minimum(rising, falling))
        return weights * (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]


# Slaney's mel scale (librosa ``htk=False``): linear below 1 kHz, logarithmic above.
_MEL_F_SP = 200.0 / 3  # Hz per mel in the linear part
_MEL_MIN_LOG_HZ = 1000.0
_MEL_MIN_LOG_MEL = _MEL_MIN_LOG_HZ / _MEL_F_SP
_MEL_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_slaney_mel(hz: float) -> float:
    if hz >= _MEL_MIN_LOG_HZ:
        return _MEL_MIN_LOG_MEL + float(np.log(hz / _MEL_MIN_LOG_HZ)) / _MEL_LOG_STEP
    return hz / _MEL_F_SP


def _slaney_mel_to_hz(mels: np.ndarray) -> np.ndarray:
    hz = _MEL_F_SP * mels
    log_part = mels >= _MEL_MIN_LOG_MEL
    hz[log_part] = _MEL_MIN_LOG_HZ * np.exp(_MEL_LOG_STEP * (mels[log_part] - _MEL_MIN_LOG_MEL))
    return hz


def dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    """Orthonormal DCT-II matrix, ``(n_mfcc, n_mels)``: ``D @ S == dct(S, type=2, norm="ortho", axis=0)[:n_mfcc]``."""
    if isinstance(n_mfcc, bool) or not isinstance(n_mfcc, (int, np.integer)) or not 0 < n_mfcc <= n_mels:
        raise ConfigError(f"n_mfcc={n_mfcc!r} must be an integer in 1..n_mels={n_mels}")
    k = np.arange(n_mfcc)[:, None]
    n = np.arange(n_mels)[None, :]
    d = np.sqrt(2.0 / n_mels) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels))
    d[0] /= np.sqrt(2.0)
    return d
