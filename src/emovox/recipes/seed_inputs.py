"""The seed systems' input pipelines: which window of a file, which features, exactly as they computed them.

:class:`SeedInput` describes one seed's input (rate, window, feature kind,
sizes); the functions compute the features with librosa and the seeds'
parameters. Derivations of S1's 4,536 and S3's 2,376 inputs are in
:mod:`emovox.recipes.seeds`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emovox.errors import ConfigError

INPUT_KINDS = ("mfcc-means", "frames", "melspec", "two-channel")
SCALINGS = ("none", "standard", "per-array")


# --------------------------------------------------------------------------- feature computations
def mfcc_means(y: np.ndarray, *, sample_rate_hz: int, n_mfcc: int = 40) -> np.ndarray:
    """S0: mean over time of ``librosa.feature.mfcc(y, sr, n_mfcc)`` -> ``(n_mfcc,)`` float32."""
    import librosa

    m = librosa.feature.mfcc(y=y, sr=sample_rate_hz, n_mfcc=n_mfcc)
    return m.mean(axis=1).astype(np.float32)


def frame_features(
    y: np.ndarray,
    *,
    sample_rate_hz: int,
    n_mfcc: int = 20,
    frame_length: int = 2048,
    hop_length: int = 512,
    n_values: int | None = None,
) -> np.ndarray:
    """S1/S3: ``hstack(zcr frames, rms frames, ravel(mfcc.T))``, zero-padded/cut to ``n_values``.

    Returns ``(n_values,)`` float32 (or the natural length when ``n_values`` is None).
    The MFCC uses librosa's defaults (n_fft 2048, hop 512), as the seeds did.
    """
    import librosa

    zcr = librosa.feature.zero_crossing_rate(y, frame_length=frame_length, hop_length=hop_length)[0]
    rms = librosa.feature.rms(y=y, frame_length=frame_length, hop_length=hop_length)[0]
    m = librosa.feature.mfcc(y=y, sr=sample_rate_hz, n_mfcc=n_mfcc)
    out = np.concatenate([zcr, rms, np.ravel(m.T)]).astype(np.float32)
    if n_values is not None:
        out = out[:n_values] if out.size >= n_values else np.pad(out, (0, n_values - out.size))
    return out


def mel_db(
    y: np.ndarray, *, sample_rate_hz: int, n_mels: int = 128, n_fft: int = 2048, hop_length: int = 512
) -> np.ndarray:
    """Power mel spectrogram in dB (``power_to_db(ref=np.max)``) -> ``(n_mels, frames)`` float32."""
    import librosa

    s = librosa.feature.melspectrogram(y=y, sr=sample_rate_hz, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length)
    return librosa.power_to_db(s, ref=np.max).astype(np.float32)


def resize_array(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D array to ``shape`` (S4's ``resize_array``), float32."""
    x = np.asarray(x, dtype=np.float64)
    rows, cols = shape
    if x.shape == tuple(shape):
        return x.astype(np.float32)
    r = np.linspace(0, x.shape[0] - 1, rows)
    c = np.linspace(0, x.shape[1] - 1, cols)
    tmp = np.stack([np.interp(c, np.arange(x.shape[1]), row) for row in x])
    out = np.stack([np.interp(r, np.arange(x.shape[0]), col) for col in tmp.T], axis=1)
    return out.astype(np.float32)


def normalize_array(x: np.ndarray) -> np.ndarray:
    """Per-array ``(x - mean) / std`` (S4's ``normalize_features``); constant arrays -> 0."""
    x = np.asarray(x, dtype=np.float32)
    std = float(x.std())
    return ((x - x.mean()) / (std if std > 1e-8 else 1.0)).astype(np.float32)


def two_channel(
    y: np.ndarray,
    *,
    sample_rate_hz: int = 16000,
    n_mels: int = 32,
    n_fft: int = 1024,
    hop_length: int = 512,
    shape: tuple[int, int] = (32, 94),
) -> np.ndarray:
    """S4's two-channel image ``(2, 32, 94)`` (channels first; Keras had ``(32, 94, 2)``).

    Channel 0: mel (32 bands, n_fft 1024, hop 512) in dB, resized, normalised.
    Channel 1: MFCC 13 + delta, chroma (12) + delta, spectral contrast (7) +
    delta stacked (64 rows), resized to 32 x 94, normalised.
    """
    import librosa

    mel = mel_db(y, sample_rate_hz=sample_rate_hz, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length)
    sr = sample_rate_hz
    mfcc = librosa.feature.mfcc(y=y, n_mfcc=13, sr=sr, n_fft=n_fft, hop_length=hop_length)
    chroma = librosa.feature.chroma_stft(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length)
    contrast = librosa.feature.spectral_contrast(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length)
    rows = []
    for block in (mfcc, chroma, contrast):
        width = min(9, block.shape[1] - (1 - block.shape[1] % 2))
        delta = librosa.feature.delta(block, width=max(width, 3)) if block.shape[1] >= 3 else np.zeros_like(block)
        rows += [block, delta]
    feats = np.concatenate(rows, axis=0)
    return np.stack([normalize_array(resize_array(mel, shape)), normalize_array(resize_array(feats, shape))]).astype(
        np.float32
    )


# --------------------------------------------------------------------------- input pipeline
@dataclass(frozen=True)
class SeedInput:
    """How a seed turns an audio file into one model input.

    Attributes
    ----------
    kind : {"mfcc-means", "frames", "melspec", "two-channel"}
    sample_rate_hz : int
        Rate the audio is loaded at (librosa's default 22,050 for S0-S3).
    offset_s, duration_s : float, float or None
        Window read from the file (``librosa.load(offset=, duration=)``).
    pad_to_s : float or None
        Zero-pad / cut the window to exactly this length (S2: 66,150 samples; S4: 3 s).
    n_mfcc : int
    n_values : int or None
        Flattened length for ``"frames"``.
    n_mels, n_fft, hop_length : int
        Spectrogram settings for ``"melspec"`` / ``"two-channel"``.
    """

    kind: str
    sample_rate_hz: int = 22050
    offset_s: float = 0.0
    duration_s: float | None = None
    pad_to_s: float | None = None
    n_mfcc: int = 40
    n_values: int | None = None
    n_mels: int = 128
    n_fft: int = 2048
    hop_length: int = 512

    def __post_init__(self) -> None:
        if self.kind not in INPUT_KINDS:
            raise ConfigError(f"seed input kind {self.kind!r} is unknown: expected one of {', '.join(INPUT_KINDS)}")
        if self.offset_s < 0 or (self.duration_s is not None and self.duration_s <= 0):
            raise ConfigError(f"offset_s={self.offset_s} must be >= 0 and duration_s={self.duration_s} > 0")

    @property
    def dims(self) -> tuple[int, ...]:
        """Shape of one model input (no batch axis)."""
        if self.kind == "mfcc-means":
            return (self.n_mfcc,)
        if self.kind == "frames":
            return (int(self.n_values or self._n_frames() * (2 + self.n_mfcc)),)
        if self.kind == "melspec":
            return (self.n_mels, self._n_frames())
        return (2, 32, 94)

    def _n_frames(self) -> int:
        seconds = self.pad_to_s or self.duration_s
        if seconds is None:
            raise ConfigError(f"{self.kind} input needs duration_s or pad_to_s to have a fixed size")
        return 1 + int(round(seconds * self.sample_rate_hz)) // self.hop_length

    def window(self, y: np.ndarray) -> np.ndarray:
        """The part of a full-length clip (at ``sample_rate_hz``) the seed reads."""
        start = int(round(self.offset_s * self.sample_rate_hz))
        y = y[start:]
        if self.duration_s is not None:
            y = y[: int(round(self.duration_s * self.sample_rate_hz))]
        if self.pad_to_s is not None:
            n = int(round(self.pad_to_s * self.sample_rate_hz))
            y = y[:n] if y.size >= n else np.pad(y, (0, n - y.size))
        if y.size < 2048 and self.kind != "mfcc-means":
            y = np.pad(y, (0, 2048 - y.size))
        return np.ascontiguousarray(y, dtype=np.float32)

    def load(self, path: str) -> np.ndarray:
        """Read ``path`` with :func:`emovox.audio.load_audio` and cut the seed's window."""
        from emovox.audio import load_audio

        return self.window(load_audio(path, sample_rate_hz=self.sample_rate_hz))

    def extract(self, y: np.ndarray) -> np.ndarray:
        """Features of an already windowed clip -> array of shape :attr:`dims`, float32."""
        sr = self.sample_rate_hz
        if self.kind == "mfcc-means":
            return mfcc_means(y, sample_rate_hz=sr, n_mfcc=self.n_mfcc)
        if self.kind == "frames":
            return frame_features(y, sample_rate_hz=sr, n_mfcc=self.n_mfcc, n_values=self.dims[0])
        if self.kind == "melspec":
            out = mel_db(y, sample_rate_hz=sr, n_mels=self.n_mels, n_fft=self.n_fft, hop_length=self.hop_length)
            return out[:, : self.dims[1]]
        return two_channel(y, sample_rate_hz=sr, n_mels=32, n_fft=self.n_fft, hop_length=self.hop_length)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}
