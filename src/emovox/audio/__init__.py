"""Audio input: the only place in emovox that reads audio files.

Everything turns a *source* (a path, ``bytes`` or a binary file object) into
float32 samples, and every failure is an :mod:`emovox.errors` class:

- :func:`load_audio` -- decode, downmix, resample, optionally denoise, trim
  and normalise: mono float32 at the requested rate.
- :func:`decode_audio` -- float32 ``(channels, n)`` at the native rate.
- :func:`stream_audio` -- the same as :func:`load_audio`, block by block, in
  bounded memory, for long recordings.
- :func:`audio_duration_s` -- length from the header.
- :func:`validate_waveform` -- the one gate for waveforms (empty, NaN/inf,
  too short, wrong shape or dtype); :func:`validate_signal` -- the same with a
  sample rate and a minimum duration.
- :func:`resample`, :func:`to_mono`, :func:`normalize_peak`,
  :func:`normalize_loudness`, :func:`loudness_lufs`, :func:`trim_silence`,
  :func:`spectral_gate` -- array-in, array-out effects.
"""

from __future__ import annotations

from emovox.audio.decode import audio_duration_s, decode_audio
from emovox.audio.denoise import spectral_gate
from emovox.audio.effects import (
    loudness_lufs,
    normalize_loudness,
    normalize_peak,
    resample,
    to_mono,
    trim_for_model,
    trim_silence,
)
from emovox.audio.load import NORMALIZE_MODES, load_audio
from emovox.audio.source import Source, sniff_container
from emovox.audio.stream import stream_audio
from emovox.audio.validate import validate_signal, validate_waveform

__all__ = [
    "NORMALIZE_MODES",
    "Source",
    "audio_duration_s",
    "decode_audio",
    "load_audio",
    "loudness_lufs",
    "normalize_loudness",
    "normalize_peak",
    "resample",
    "sniff_container",
    "spectral_gate",
    "stream_audio",
    "to_mono",
    "trim_for_model",
    "trim_silence",
    "validate_signal",
    "validate_waveform",
]
