"""Fast batched log-mel and MFCC front ends in torch.

:class:`LogMelFrontend` turns a batch of equal-length waveforms
``(batch, n)`` into log-mel spectrograms ``(batch, n_mels, frames)``;
:class:`MfccFrontend` adds the DCT and returns ``(batch, n_mfcc, frames)``.
Both reproduce librosa 0.11 (see :mod:`emovox.features.spectral` for the exact
definitions); ``tests/test_features_frontend.py`` checks the agreement.

The STFT is a batched real FFT of strided frames (``stft="fft"``, the
default; the numbers of ``torch.stft``, computed frame-major) or a strided
``conv1d`` with fixed real/imaginary DFT bases (``stft="conv"``). Both give
the same numbers to float32 rounding and hold the same buffers, so a module can
be switched with ``module.stft = "conv"``. Measured on the 2-core CPU
(``docs/benchmarks.md``): the FFT is 3-4x faster at ``n_fft=512`` and
8x at 2048 (the convolution costs ``O(n_fft**2)`` per frame), so it is the
default; the convolution exports to ONNX as one plain ``Conv`` node
(checked with onnxruntime in the tests), so use ``stft="conv"`` for export.

On a CPU, batches of one or two clips are fastest: larger batches make the
intermediate spectrograms outgrow the 1 MB L2 cache (MFCC of 3.3 s clips, one
thread, the same clip again and again: 0.31 ms a clip at batch 1, 0.29 at 2,
1.2 ms at 4-16; over 1440 different RAVDESS clips 0.35 ms at batch 1 and 0.51
at 2, so 1 is the default of the batch helpers).
:func:`emovox.features.batched.frontend_features` runs a front end over many
files on several cores.

All constant matrices are buffers computed once at construction (in float64,
stored as float32), so ``state_dict()`` carries them and the modules move with
``.to(device)``. Rebuild a module from :meth:`LogMelFrontend.config`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emovox.errors import ConfigError, FeatureError
from emovox.features.spectral import LogMelConfig, dct_matrix

STFT_IMPLS = ("fft", "conv")
MEL_GROUP = 16  # mel filters per band-limited product in the FFT path
FRAME_BLOCK = 384  # frames (over the whole batch) per FFT call for long inputs: ~4 s of audio at a 10 ms hop


class LogMelFrontend(nn.Module):
    """Batched log-mel spectrogram that matches librosa.

    Parameters
    ----------
    sample_rate_hz, n_fft, hop_length, win_length, n_mels, f_min_hz, f_max_hz, log, top_db, amin, pad_mode
        See :class:`emovox.features.spectral.LogMelConfig` (the defaults:
        16 kHz, ``n_fft=512``, ``hop_length=160`` (10 ms), 64 mel bands,
        0 Hz to Nyquist, dB with ``top_db=80``, zero padding).
    stft : {"fft", "conv"}
        STFT implementation: ``torch.stft`` (fastest on CPU) or conv1d with DFT
        bases (exports to ONNX cleanly).

    Shapes
    ------
    input ``y`` : float tensor ``(batch, n)`` or ``(n,)``, samples at ``sample_rate_hz``.
    output : float32 tensor ``(batch, n_mels, frames)`` (or ``(n_mels, frames)``
    for a 1-D input), ``frames = config.n_frames(n)``; dB (``log="db"``) or
    natural log (``log="log"``) of the mel power.

    Examples
    --------
    >>> fe = LogMelFrontend(sample_rate_hz=16000, n_mels=64)
    >>> fe(torch.zeros(2, 16000)).shape
    torch.Size([2, 64, 101])
    """

    # Buffers registered in __init__ (declared for the type checker).
    dft_basis: torch.Tensor
    window: torch.Tensor
    mel_fb: torch.Tensor

    def __init__(
        self,
        sample_rate_hz: int = 16000,
        *,
        n_fft: int = 512,
        hop_length: int = 160,
        win_length: int | None = None,
        n_mels: int = 64,
        f_min_hz: float = 0.0,
        f_max_hz: float | None = None,
        log: str = "db",
        top_db: float | None = 80.0,
        amin: float = 1e-10,
        pad_mode: str = "constant",
        stft: str = "fft",
    ) -> None:
        super().__init__()
        self.cfg = LogMelConfig(
            sample_rate_hz=sample_rate_hz,
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            n_mels=n_mels,
            f_min_hz=f_min_hz,
            f_max_hz=f_max_hz,
            log=log,
            top_db=top_db,
            amin=amin,
            pad_mode=pad_mode,
        )
        if stft not in STFT_IMPLS:
            raise ConfigError(f"stft={stft!r} is not one of {STFT_IMPLS}")
        self.stft = stft
        real, imag = self.cfg.dft_basis()
        basis = np.concatenate([real, imag], axis=0)[:, None, :]  # (2 * n_freqs, 1, n_fft)
        self.register_buffer("dft_basis", torch.from_numpy(basis.astype(np.float32)))
        self.register_buffer("window", torch.from_numpy(self.cfg.window().astype(np.float32)))
        self.register_buffer("mel_fb", torch.from_numpy(self.cfg.mel_filterbank().astype(np.float32)))
        # Band-limited mel weights for the FFT path, each bin's row twice (for re² and im²);
        # derived from mel_fb, so not saved in state_dict.
        self._mel_groups = _mel_groups(self.mel_fb.numpy())
        for i, (m0, m1, lo, hi) in enumerate(self._mel_groups):
            band = self.mel_fb[m0:m1, lo:hi].T.repeat_interleave(2, dim=0).contiguous()  # (2 * (hi - lo), m1 - m0)
            self.register_buffer(f"_mel_band_{i}", band, persistent=False)

    def config(self) -> dict:
        """JSON-able settings (``LogMelConfig`` fields plus ``stft``)."""
        return {**self.cfg.to_dict(), "stft": self.stft}

    def extra_repr(self) -> str:
        c = self.cfg
        return (
            f"sample_rate_hz={c.sample_rate_hz}, n_fft={c.n_fft}, hop_length={c.hop_length}, "
            f"n_mels={c.n_mels}, log={c.log!r}, stft={self.stft!r}"
        )

    # -- stages -------------------------------------------------------------
    def power_spectrogram(self, y: torch.Tensor) -> torch.Tensor:
        """``|STFT(y)|**2``: ``(batch, n)`` -> ``(batch, n_freqs, frames)``.

        The FFT path uses ``torch.stft`` here: the reference the frame-major
        :meth:`mel_power_frames` is tested against.
        """
        c = self.cfg
        if self.stft == "fft":
            spec = torch.stft(
                y,
                n_fft=c.n_fft,
                hop_length=c.hop_length,
                window=self.window,
                center=True,
                pad_mode=c.pad_mode,
                return_complex=True,
            )
            ri = torch.view_as_real(spec)  # (batch, n_freqs, frames, 2); faster than .real / .imag
            return ri[..., 0].square() + ri[..., 1].square()
        pad = c.n_fft // 2
        x = F.pad(y.unsqueeze(1), (pad, pad), mode=c.pad_mode)
        out = F.conv1d(x, self.dft_basis, stride=c.hop_length)  # (batch, 2 * n_freqs, frames)
        real, imag = out.split(c.n_freqs, dim=1)
        return real.square() + imag.square()

    def mel_power(self, y: torch.Tensor) -> torch.Tensor:
        """Mel power spectrogram ``(batch, n_mels, frames)`` (no log)."""
        if self.stft != "fft":
            return torch.matmul(self.mel_fb, self.power_spectrogram(y))
        return self.mel_power_frames(y).transpose(1, 2)

    def mel_power_frames(self, y: torch.Tensor) -> torch.Tensor:
        """Mel power frame-major, ``(batch, n)`` -> ``(batch, frames, n_mels)``, FFT path.

        Frames the padded signal as a strided view and transforms it
        (:meth:`_mel_of_frames`). Long inputs are transformed ``FRAME_BLOCK``
        frames at a time (unless autograd needs the graph), so that the
        windowed frames and their spectrum stay in the CPU caches and memory
        stays bounded by the output: per audio second, a 5-minute recording
        then costs what a 3-second clip does (measured: 0.43 ms -> 0.2 ms an
        audio second, one thread).
        """
        c = self.cfg
        pad = c.n_fft // 2
        if c.pad_mode == "constant":
            padded = F.pad(y, (pad, pad))
        else:
            padded = F.pad(y.unsqueeze(1), (pad, pad), mode=c.pad_mode).squeeze(1)
        frames = padded.unfold(-1, c.n_fft, c.hop_length)  # (batch, frames, n_fft), a view
        batch, n_frames = frames.shape[:2]
        block = max(16, FRAME_BLOCK // batch)
        if n_frames <= block or y.requires_grad:
            return self._mel_of_frames(frames)
        out = torch.empty(batch, n_frames, c.n_mels, dtype=y.dtype)
        for start in range(0, n_frames, block):
            out[:, start : start + block] = self._mel_of_frames(frames[:, start : start + block])
        return out

    def _mel_of_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, n_fft)`` raw frames -> ``(batch, frames, n_mels)`` mel power.

        Windows the frames and takes one batched real FFT (the numbers of
        ``torch.stft``, without its transposes and copies). The squares of
        the real and imaginary parts are taken in place and the mel product
        adds them (its weights repeat each bin twice), band by band: each
        group of ``MEL_GROUP`` filters only touches the FFT bins under it (the
        filters overlap only their neighbours), a quarter of the dense
        product's work at 64 mels on 257 bins. Everything stays in the layout
        the FFT writes (frames major).
        """
        c = self.cfg
        spec = torch.fft.rfft(frames * self.window, dim=-1)  # (batch, frames, n_freqs)
        batch, n_frames = spec.shape[:2]
        ri = torch.view_as_real(spec)
        ri = ri.square() if ri.requires_grad else ri.square_()  # re², im² per bin
        squares = ri.reshape(batch * n_frames, 2 * c.n_freqs)
        bands = [
            squares[:, 2 * lo : 2 * hi] @ getattr(self, f"_mel_band_{i}")
            for i, (_, _, lo, hi) in enumerate(self._mel_groups)
        ]
        return torch.cat(bands, dim=-1).view(batch, n_frames, c.n_mels)

    def to_log(self, mel: torch.Tensor) -> torch.Tensor:
        """Apply the configured log (and per-clip ``top_db`` clipping) to mel power.

        Works on either layout (``(batch, n_mels, frames)`` or frame-major):
        the ``top_db`` peak is taken over the last two axes.
        """
        c = self.cfg
        floored = torch.clamp(mel, min=c.amin)
        if c.log == "log":
            return floored.log_() if not floored.requires_grad else torch.log(floored)
        db = floored.log10_().mul_(10.0) if not floored.requires_grad else 10.0 * torch.log10(floored)
        if c.top_db is not None:
            peak = db.amax(dim=(-2, -1), keepdim=True)
            db = torch.maximum(db, peak - c.top_db)
        return db

    def log_mel_frames(self, y: torch.Tensor) -> torch.Tensor:
        """Log-mel ``(batch, frames, n_mels)`` of a checked ``(batch, n)`` batch (a view for the conv path)."""
        if self.stft == "fft":
            return self.to_log(self.mel_power_frames(y))
        return self.to_log(self.mel_power(y)).transpose(1, 2)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        y, squeeze = _as_batch(y, self.cfg)
        if self.stft == "fft":
            out = self.log_mel_frames(y).transpose(1, 2).contiguous()
        else:
            out = self.to_log(self.mel_power(y))
        return out.squeeze(0) if squeeze else out


class MfccFrontend(nn.Module):
    """Batched MFCC that matches ``librosa.feature.mfcc`` (DCT-II ortho of the dB mel spectrogram).

    Parameters
    ----------
    sample_rate_hz : int
        Input sample rate in Hz.
    n_mfcc : int
        Number of coefficients kept (``<= n_mels``).
    **logmel
        Keyword arguments of :class:`LogMelFrontend` (``log`` must be ``"db"``,
        as in librosa; default ``n_mels=64``).

    Shapes
    ------
    input ``(batch, n)`` or ``(n,)`` -> output ``(batch, n_mfcc, frames)`` or ``(n_mfcc, frames)``.
    """

    dct: torch.Tensor  # buffer registered in __init__ (declared for the type checker)

    def __init__(self, sample_rate_hz: int = 16000, *, n_mfcc: int = 40, **logmel: Any) -> None:
        super().__init__()
        if logmel.get("log", "db") != "db":
            raise ConfigError(f"MfccFrontend needs log='db' (as librosa.feature.mfcc); got log={logmel['log']!r}")
        self.logmel = LogMelFrontend(sample_rate_hz, **logmel)
        self.n_mfcc = n_mfcc
        d = dct_matrix(n_mfcc, self.logmel.cfg.n_mels)
        self.register_buffer("dct", torch.from_numpy(d.astype(np.float32)))

    def config(self) -> dict:
        """JSON-able settings: the log-mel ones plus ``n_mfcc``."""
        return {**self.logmel.config(), "n_mfcc": self.n_mfcc}

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        y, squeeze = _as_batch(y, self.logmel.cfg)
        if self.logmel.stft == "fft":  # DCT on the frame-major log-mel: no transpose copy before it
            out = torch.matmul(self.logmel.log_mel_frames(y), self.dct.T).transpose(1, 2).contiguous()
        else:
            out = torch.matmul(self.dct, self.logmel.to_log(self.logmel.mel_power(y)))
        return out.squeeze(0) if squeeze else out


def _mel_groups(mel_fb: np.ndarray, group: int = MEL_GROUP) -> list[tuple[int, int, int, int]]:
    """``(m0, m1, lo, hi)`` per group of filters: rows ``m0:m1`` of ``mel_fb`` are zero outside bins ``lo:hi``."""
    groups = []
    for m0 in range(0, mel_fb.shape[0], group):
        m1 = min(m0 + group, mel_fb.shape[0])
        bins = np.flatnonzero(np.any(mel_fb[m0:m1] != 0, axis=0))
        lo, hi = (int(bins[0]), int(bins[-1]) + 1) if bins.size else (0, 1)
        groups.append((m0, m1, lo, hi))
    return groups


def _as_batch(y: torch.Tensor, cfg: LogMelConfig) -> tuple[torch.Tensor, bool]:
    """Check a waveform tensor and return it as float ``(batch, n)``."""
    if not isinstance(y, torch.Tensor):
        raise FeatureError(
            f"expected a torch.Tensor of shape (batch, n), got {type(y).__name__}; wrap arrays with torch.from_numpy"
        )
    if y.ndim not in (1, 2):
        raise FeatureError(f"expected a waveform of shape (batch, n) or (n,), got shape {tuple(y.shape)}")
    if not torch.is_floating_point(y):
        raise FeatureError(f"expected float samples in [-1, 1], got dtype {y.dtype}; convert with y.float() / 32768")
    squeeze = y.ndim == 1
    if squeeze:
        y = y.unsqueeze(0)
    if y.shape[0] == 0:
        raise FeatureError("got an empty batch (batch size 0); pass at least one clip")
    cfg.check_length(int(y.shape[-1]))
    return y, squeeze
