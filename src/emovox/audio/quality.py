"""Input-quality flags: narrowband, clipping, low SNR, very low level.

An emotion estimate is only as good as the audio under it. :func:`assess_quality`
(one clip) and :class:`QualityMeter` (a long recording, block by block, in
bounded memory) measure, on 32 ms frames of a 16 kHz signal:

- **effective bandwidth** (``bandwidth_hz``): the highest frequency at which
  the long-term spectrum of the speech frames is still within
  :data:`BANDWIDTH_FLOOR_DB` of its level in the 300-3000 Hz band. A telephone
  call resampled to any rate ends near 3.4-4 kHz; wideband speech reaches
  7-8 kHz. ``narrowband`` when it is at most :data:`NARROWBAND_HZ`; ``nan``
  (not measured) when fewer than 3 frames are speech.
- **clipping** (``clipped_share``): the share of samples sitting on flat tops
  at the recording's peak (two or more equal consecutive samples within
  0.5 % of the peak magnitude). ``clipping`` above :data:`CLIPPING_SHARE`.
- **SNR** (``snr_db``): speech-frame power against the noise floor (the median
  power of frames the voice activity detector calls non-speech, or the 5th
  percentile of frame power when there are fewer than 5). ``low_snr`` under
  :data:`LOW_SNR_DB`; ``None`` without speech frames.
- **level** (``level_dbfs``): RMS of the speech frames (all frames without
  speech) in dB relative to full scale. ``low_level`` under :data:`LOW_LEVEL_DBFS`.

Speech frames come from the voice activity detector's per-frame
probabilities (:mod:`emovox.audio.vad`, 512-sample frames at 16 kHz); the
thresholds were chosen by measurement (``docs/robustness.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emovox.errors import ConfigError

__all__ = [
    "Quality",
    "QualityMeter",
    "assess_quality",
    "FRAME_SAMPLES",
    "NARROWBAND_HZ",
    "CLIPPING_SHARE",
    "LOW_SNR_DB",
    "LOW_LEVEL_DBFS",
    "FLAG_NAMES",
]

SAMPLE_RATE_HZ = 16000
#: Analysis frame: the Silero VAD frame (32 ms at 16 kHz), so each frame has one speech probability.
FRAME_SAMPLES = 512
#: Effective bandwidth at or under this is narrowband (a telephone channel reaches 3.4-4 kHz).
NARROWBAND_HZ = 4600.0
#: The spectrum counts as present down to this many dB under its 300-3000 Hz level.
BANDWIDTH_FLOOR_DB = 50.0
#: More than this share of samples on flat tops at the peak is clipping (0.1 %).
CLIPPING_SHARE = 1e-3
#: Estimated SNR under this is flagged ``low_snr``.
LOW_SNR_DB = 10.0
#: Speech RMS under this (dBFS) is flagged ``low_level``.
LOW_LEVEL_DBFS = -50.0
#: Names of the boolean flags, in the order results list them.
FLAG_NAMES = ("narrowband", "clipping", "low_snr", "low_level")
_SPEECH_P, _NON_SPEECH_P = 0.5, 0.2
_DB_BINS = np.arange(-160.0, 20.5, 0.5)  # frame-power histogram edges (dB)


@dataclass(frozen=True)
class Quality:
    """Measured quality of an input (see the module docstring for each figure).

    Attributes
    ----------
    bandwidth_hz : float
        Effective bandwidth; ``nan`` for digital silence.
    clipped_share : float
        Share of samples on clipped flat tops, in [0, 1].
    snr_db : float or None
        Estimated speech-to-noise ratio; ``None`` without speech frames.
    level_dbfs : float
        RMS level of the speech (or of everything) in dBFS; ``-inf`` for digital silence.
    narrowband, clipping, low_snr, low_level : bool
        The flags.
    """

    bandwidth_hz: float
    clipped_share: float
    snr_db: float | None
    level_dbfs: float
    narrowband: bool
    clipping: bool
    low_snr: bool
    low_level: bool

    @property
    def flags(self) -> tuple[str, ...]:
        """The names of the raised flags, e.g. ``("narrowband", "low_snr")``."""
        return tuple(name for name in FLAG_NAMES if getattr(self, name))

    def to_dict(self) -> dict:
        """JSON-ready: the raised ``flags`` and every measured figure (rounded)."""

        def num(v: float | None, digits: int = 1) -> float | None:
            return None if v is None or not np.isfinite(v) else round(float(v), digits)

        return {
            "flags": list(self.flags),
            "bandwidth_hz": num(self.bandwidth_hz, 0),
            "clipped_share": round(float(self.clipped_share), 5),
            "snr_db": num(self.snr_db),
            "level_dbfs": num(self.level_dbfs),
        }


class QualityMeter:
    """Accumulate quality statistics over consecutive blocks of one 16 kHz recording.

    Memory is bounded: a mean power spectrum per frame class, frame-power
    histograms, counters. Feed :meth:`update` the blocks with the VAD's
    speech probability of each of their whole 512-sample frames (frames not
    covered by ``speech_probs`` count as non-speech); read :meth:`result`.
    """

    def __init__(self, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
        if sample_rate_hz != SAMPLE_RATE_HZ:
            raise ConfigError(f"quality is measured at {SAMPLE_RATE_HZ} Hz, got {sample_rate_hz}: resample first")
        self._window = np.hanning(FRAME_SAMPLES).astype(np.float32)
        n_bins = FRAME_SAMPLES // 2 + 1
        self._spectrum = {True: np.zeros(n_bins), False: np.zeros(n_bins)}
        self._frames = {True: 0, False: 0}
        self._power = {True: 0.0, False: 0.0}
        self._histogram = np.zeros(_DB_BINS.size - 1, np.int64)
        self._quiet_histogram = np.zeros(_DB_BINS.size - 1, np.int64)
        self._rest = np.zeros(0, np.float32)
        self._n = 0
        self._sum_squares = 0.0
        self._peak = 0.0
        self._flat_runs: dict[float, int] = {}  # |value| of flat-top samples -> count (few distinct keys)

    def update(self, y: np.ndarray, speech_probs: np.ndarray | None = None) -> None:
        """Add a block ``(n,)`` float32 and the speech probabilities of its frames (any leftover carries over)."""
        block = np.asarray(y, np.float32).reshape(-1)
        self._n += block.size
        self._sum_squares += float(np.dot(block.astype(np.float64), block))
        if block.size:
            self._peak = max(self._peak, float(np.max(np.abs(block))))
            self._count_flat(block)
        x = np.concatenate([self._rest, block])
        n_frames = x.size // FRAME_SAMPLES
        self._rest = x[n_frames * FRAME_SAMPLES :].copy()
        if n_frames == 0:
            return
        frames = x[: n_frames * FRAME_SAMPLES].reshape(n_frames, FRAME_SAMPLES)
        probs = np.zeros(n_frames, np.float32)
        if speech_probs is not None:
            p = np.asarray(speech_probs, np.float32).reshape(-1)[:n_frames]
            probs[: p.size] = p
        power = np.mean(frames.astype(np.float64) ** 2, axis=1)
        spectra = np.abs(np.fft.rfft(frames * self._window, axis=1)) ** 2
        for is_speech in (True, False):
            mask = probs >= _SPEECH_P if is_speech else probs < _SPEECH_P
            if mask.any():
                self._spectrum[is_speech] += spectra[mask].sum(axis=0)
                self._frames[is_speech] += int(mask.sum())
                self._power[is_speech] += float(power[mask].sum())
        db = 10 * np.log10(np.maximum(power, 1e-16))
        self._histogram += np.histogram(db, bins=_DB_BINS)[0]
        self._quiet_histogram += np.histogram(db[probs < _NON_SPEECH_P], bins=_DB_BINS)[0]

    def _count_flat(self, block: np.ndarray) -> None:
        """Count samples that repeat their neighbour's value at a high magnitude (candidate clipped tops)."""
        a = np.abs(block)
        high = a >= 0.25 * max(self._peak, 1e-9)
        same = np.zeros(block.size, bool)
        same[1:] = block[1:] == block[:-1]
        same[:-1] |= block[:-1] == block[1:]
        values, counts = np.unique(np.round(a[high & same], 4), return_counts=True)
        for v, c in zip(values.tolist(), counts.tolist()):
            self._flat_runs[v] = self._flat_runs.get(v, 0) + c
        if len(self._flat_runs) > 4096:  # keep the largest magnitudes only
            keep = sorted(self._flat_runs)[-1024:]
            self._flat_runs = {k: self._flat_runs[k] for k in keep}

    def result(self) -> Quality:
        """The figures and flags of everything fed so far."""
        if self._n == 0 or self._peak == 0.0:
            return Quality(float("nan"), 0.0, None, float("-inf"), False, False, False, True)
        clipped = sum(c for v, c in self._flat_runs.items() if v >= 0.995 * self._peak)
        clipped_share = clipped / self._n
        speech = self._frames[True] >= 3
        frames = self._frames[True] if speech else self._frames[False]
        power = (self._power[True] if speech else self._power[False]) / max(frames, 1)
        if frames == 0:  # shorter than one frame
            power = self._sum_squares / self._n
        level = 10 * np.log10(max(power, 1e-16))
        # the bandwidth of speech: without speech frames there is no speech to measure it on
        bandwidth = _bandwidth_hz(self._spectrum[True]) if speech else float("nan")
        snr = None
        if speech:
            if self._quiet_histogram.sum() >= 5:
                noise = 10 ** (_percentile_db(self._quiet_histogram, 50.0) / 10)
            else:
                noise = 10 ** (_percentile_db(self._histogram, 5.0) / 10)
            snr = float(10 * np.log10(max(power - noise, power * 1e-6) / max(noise, 1e-16)))
            snr = min(snr, 100.0)
        return Quality(
            bandwidth_hz=bandwidth,
            clipped_share=float(clipped_share),
            snr_db=snr,
            level_dbfs=float(level),
            narrowband=bool(np.isfinite(bandwidth) and bandwidth <= NARROWBAND_HZ),
            clipping=bool(clipped_share > CLIPPING_SHARE),
            low_snr=bool(snr is not None and snr < LOW_SNR_DB),
            low_level=bool(level < LOW_LEVEL_DBFS),
        )


def _bandwidth_hz(spectrum: np.ndarray) -> float:
    """Highest frequency whose smoothed level is within :data:`BANDWIDTH_FLOOR_DB` of the 300-3000 Hz level."""
    freqs = np.fft.rfftfreq(FRAME_SAMPLES, 1.0 / SAMPLE_RATE_HZ)
    level = 10 * np.log10(np.maximum(np.convolve(spectrum, np.ones(5) / 5, mode="same"), 1e-30))
    band = (freqs >= 300) & (freqs <= 3000)
    reference = float(np.median(level[band]))
    present = np.flatnonzero((level >= reference - BANDWIDTH_FLOOR_DB) & (freqs <= SAMPLE_RATE_HZ / 2 - 250))
    return float(freqs[present[-1]]) if present.size else 0.0


def _percentile_db(histogram: np.ndarray, q: float) -> float:
    total = histogram.sum()
    if total == 0:
        return -160.0
    k = int(np.searchsorted(np.cumsum(histogram), q / 100 * total))
    return float(_DB_BINS[min(k, histogram.size - 1)])


def assess_quality(
    y: np.ndarray, *, speech_probs: np.ndarray | None = None, sample_rate_hz: int = SAMPLE_RATE_HZ
) -> Quality:
    """Quality of one clip ``(n,)`` at 16 kHz; ``speech_probs`` are its VAD frame probabilities (512-sample frames)."""
    meter = QualityMeter(sample_rate_hz=sample_rate_hz)
    meter.update(y, speech_probs)
    return meter.result()
