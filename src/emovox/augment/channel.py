"""Transmission channels as augmentations: telephone band and real speech codecs.

:class:`Channel` sends a clip through one codec drawn from ``codecs`` at a
bit rate drawn from the allowed ones (:mod:`emovox.audio.codecs`: G.711
mu-law/A-law, G.726, AMR-NB, Opus, MP3, G.723.1). Codecs that run at 8 kHz
are preceded by the 300-3400 Hz telephone band-pass when ``telephone_band``
is set, as on a real line. The output has the input's rate and length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from emovox.audio.codecs import CODECS, codec_roundtrip, telephone_band
from emovox.augment.base import Transform, _set, check_choice, check_range, check_waveform_and_rng, register_transform
from emovox.errors import ConfigError

__all__ = ["Channel", "TELEPHONE_CODECS", "ALL_CODECS"]

#: The 8 kHz codecs of telephone networks.
TELEPHONE_CODECS = ("mulaw", "alaw", "g726", "amr_nb")
#: Every codec a training chain draws from by default (G.723.1 is left out: the benchmark's unseen codec).
ALL_CODECS = ("mulaw", "alaw", "g726", "amr_nb", "opus", "mp3")


@register_transform
@dataclass(frozen=True)
class Channel(Transform):
    """Encode and decode with a codec drawn uniformly from ``codecs``.

    Parameters
    ----------
    codecs : tuple of str
        Names in :data:`emovox.audio.codecs.CODECS`.
    bitrate_bps : (low, high)
        Bit rates considered; each codec uses its own allowed rates inside this
        range (or its lowest allowed one if none falls inside). Fixed-rate
        codecs (G.711) ignore it.
    telephone_band : bool
        Band-pass 300-3400 Hz before the 8 kHz codecs.

    Notes
    -----
    Call: ``t(y, *, sample_rate_hz, rng) -> y`` (float32, same shape).
    """

    name: ClassVar[str] = "channel"
    codecs: tuple = ALL_CODECS
    bitrate_bps: tuple = (6000, 32000)
    telephone_band: bool = True

    def __post_init__(self) -> None:
        codecs = (self.codecs,) if isinstance(self.codecs, str) else tuple(self.codecs)
        if not codecs:
            raise ConfigError("channel codecs is empty: give e.g. ('mulaw', 'amr_nb')")
        for c in codecs:
            check_choice("channel codec", c, tuple(CODECS))
        _set(self, "codecs", codecs)
        _set(self, "bitrate_bps", check_range("bitrate_bps", self.bitrate_bps, lo=1000, hi=512000, unit="bit/s"))

    def rates(self, codec: str) -> tuple[int, ...]:
        """The bit rates of ``codec`` this channel draws from (``(0,)`` for fixed-rate codecs)."""
        allowed = CODECS[codec].bitrates_bps
        if not allowed:
            return (0,)
        lo, hi = self.bitrate_bps
        inside = tuple(b for b in allowed if lo <= b <= hi)
        return inside or (min(allowed, key=lambda b: abs(b - lo)),)

    def __call__(self, y, *, sample_rate_hz: int | None = None, rng: np.random.Generator, **_):
        y = check_waveform_and_rng(y, rng)
        if sample_rate_hz is None:
            raise ConfigError("channel needs sample_rate_hz=... at call time")
        codec = self.codecs[int(rng.integers(len(self.codecs)))]
        rates = self.rates(codec)
        bitrate = rates[int(rng.integers(len(rates)))] or None
        if self.telephone_band and CODECS[codec].sample_rate_hz == 8000 and sample_rate_hz > 8000:
            y = telephone_band(y, sample_rate_hz=sample_rate_hz)
        return codec_roundtrip(y, sample_rate_hz=sample_rate_hz, codec=codec, bitrate_bps=bitrate)
