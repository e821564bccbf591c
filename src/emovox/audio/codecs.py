"""Speech codecs, in memory: encode a signal with a real codec and decode it back.

What a call recording went through: a telephone line (G.711 mu-law/A-law at
8 kHz, G.726 ADPCM), a mobile network (AMR-NB), VoIP or a messenger (Opus at
6-12 kbit/s), a low-bitrate MP3. :func:`codec_roundtrip` runs FFmpeg's own
encoders and decoders (through PyAV, the library :mod:`emovox.audio.decode`
uses) on a float32 signal and returns what a listener would receive, at the
input's sample rate and length. Nothing touches a file.

>>> import numpy as np
>>> y = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32) * 0.3
>>> codec_roundtrip(y, sample_rate_hz=16000, codec="mulaw").shape
(16000,)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from emovox.errors import ConfigError

if TYPE_CHECKING:
    import av

__all__ = ["CODECS", "CodecSpec", "codec_roundtrip", "telephone_band"]


@dataclass(frozen=True)
class CodecSpec:
    """An FFmpeg encoder as a channel: its name, rate, container and the bit rates it accepts.

    ``bitrates_bps`` empty means a fixed-rate codec (``bitrate_bps`` is ignored).
    """

    encoder: str
    sample_rate_hz: int
    container: str
    bitrates_bps: tuple[int, ...] = ()
    sample_format: str = "s16"
    options: tuple[tuple[str, str], ...] = ()


#: The codecs a degradation chain (and the robustness benchmark) may use.
CODECS: dict[str, CodecSpec] = {
    "mulaw": CodecSpec("pcm_mulaw", 8000, "wav"),  # G.711 mu-law, 64 kbit/s
    "alaw": CodecSpec("pcm_alaw", 8000, "wav"),  # G.711 A-law, 64 kbit/s
    "g726": CodecSpec("g726", 8000, "wav", (16000, 24000, 32000, 40000)),  # ADPCM
    "amr_nb": CodecSpec("libopencore_amrnb", 8000, "amr", (4750, 5150, 5900, 6700, 7400, 7950, 10200, 12200)),
    "opus": CodecSpec("libopus", 16000, "ogg", tuple(range(6000, 24001, 1000)), options=(("application", "voip"),)),
    "mp3": CodecSpec("libmp3lame", 16000, "mp3", (8000, 16000, 24000, 32000, 48000, 64000), "s16p"),
    "g723_1": CodecSpec("g723_1", 8000, "g723_1", (6300,)),
}


def _bitrate(spec: CodecSpec, name: str, bitrate_bps: int | None) -> int | None:
    if not spec.bitrates_bps:
        return None
    if bitrate_bps is None:
        return spec.bitrates_bps[len(spec.bitrates_bps) // 2]
    if int(bitrate_bps) not in spec.bitrates_bps:
        raise ConfigError(
            f"codec {name!r} takes bit rates {', '.join(map(str, spec.bitrates_bps))} bit/s, not {bitrate_bps!r}"
        )
    return int(bitrate_bps)


def telephone_band(y: np.ndarray, *, sample_rate_hz: int, low_hz: float = 300.0, high_hz: float = 3400.0) -> np.ndarray:
    """Band-limit ``y`` ``(n,)`` to a telephone channel's 300-3400 Hz (4th-order Butterworth band-pass).

    Returns float32 ``(n,)`` at the same rate. ``high_hz`` must lie under the Nyquist frequency.
    """
    from scipy.signal import butter, sosfilt

    if not 0 < low_hz < high_hz < sample_rate_hz / 2:
        raise ConfigError(f"telephone band {low_hz}-{high_hz} Hz must lie inside (0, {sample_rate_hz / 2}) Hz")
    sos = butter(4, [low_hz, high_hz], btype="bandpass", fs=sample_rate_hz, output="sos")
    return sosfilt(sos, np.asarray(y, np.float64)).astype(np.float32)


def codec_roundtrip(y: np.ndarray, *, sample_rate_hz: int, codec: str, bitrate_bps: int | None = None) -> np.ndarray:
    """``y`` ``(n,)`` float32 encoded with ``codec`` and decoded again: ``(n,)`` float32 at ``sample_rate_hz``.

    The signal is resampled to the codec's rate (8 kHz for the telephone
    codecs, which removes everything above 4 kHz), clipped to [-1, 1] as a
    16-bit interface would, encoded, decoded and resampled back. The codec's
    algorithmic delay is removed by aligning the output with the input
    (cross-correlation), so the result lines up sample by sample.

    Parameters
    ----------
    codec : str
        One of :data:`CODECS`.
    bitrate_bps : int or None
        One of the codec's bit rates (its middle one when ``None``); ignored by
        fixed-rate codecs (G.711).
    """
    import av

    from emovox.audio.effects import resample

    if codec not in CODECS:
        raise ConfigError(f"codec {codec!r} is unknown: expected one of {', '.join(CODECS)}")
    spec = CODECS[codec]
    bitrate = _bitrate(spec, codec, bitrate_bps)
    x = np.asarray(y, np.float32).reshape(-1)
    n = x.size
    low = (
        resample(x, orig_hz=sample_rate_hz, target_hz=spec.sample_rate_hz)
        if sample_rate_hz != spec.sample_rate_hz
        else x
    )
    pcm = (np.clip(low, -1.0, 32767 / 32768) * 32768).astype(np.int16)
    import io

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=spec.container) as out:
        stream = out.add_stream(spec.encoder, rate=spec.sample_rate_hz, layout="mono")
        if bitrate:
            stream.codec_context.bit_rate = bitrate
        for key, value in spec.options:
            stream.codec_context.options = {**stream.codec_context.options, key: value}
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, pcm.size, frame_size):
            chunk = pcm[start : start + frame_size]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
            frame.sample_rate = spec.sample_rate_hz
            if spec.sample_format != "s16":
                frame = _convert(frame, spec.sample_format)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buffer.seek(0)
    decoded = []
    with av.open(buffer, mode="r", format=spec.container) as inp:
        for frame in inp.decode(audio=0):
            a = frame.to_ndarray()
            a = a.astype(np.float32) / 32768.0 if a.dtype == np.int16 else a.astype(np.float32)
            decoded.append(
                a.mean(axis=0) if a.ndim == 2 and a.shape[0] > 1 and frame.format.is_planar else a.reshape(-1)
            )
        rate = inp.streams.audio[0].rate
    out_low = np.concatenate(decoded) if decoded else np.zeros(0, np.float32)
    back = resample(out_low, orig_hz=rate, target_hz=sample_rate_hz) if rate != sample_rate_hz else out_low
    return _align(back, x, n)


def _convert(frame: av.AudioFrame, fmt: str) -> av.AudioFrame:
    """``frame`` resampled to sample format ``fmt`` (e.g. planar for MP3)."""
    import av

    resampler = av.AudioResampler(format=fmt, layout="mono", rate=frame.sample_rate)
    frames = resampler.resample(frame)
    return frames[0] if len(frames) == 1 else frames[0]


def _align(
    decoded: np.ndarray, reference: np.ndarray, n: int, max_lag_s: float = 0.1, sample_rate_hz: int = 16000
) -> np.ndarray:
    """``decoded`` shifted by the lag in [-``max_lag_s``, ``max_lag_s``] that best matches ``reference``, cut/padded to ``n``.

    Encoders add delay (priming samples) and some decoders drop it, so the
    lag may have either sign; it is found by FFT cross-correlation.
    """
    max_lag = int(max_lag_s * sample_rate_hz)
    lag = 0
    m = min(decoded.size, reference.size)
    if m > 0 and np.any(reference[:m]) and np.any(decoded[:m]):
        size = int(2 ** np.ceil(np.log2(decoded.size + reference.size)))
        corr = np.fft.irfft(
            np.fft.rfft(decoded.astype(np.float64), size) * np.conj(np.fft.rfft(reference.astype(np.float64), size)),
            size,
        )
        lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
        lag = int(lags[int(np.argmax(corr[lags]))])
    out = decoded[lag : lag + n] if lag >= 0 else np.concatenate([np.zeros(-lag, np.float32), decoded[: n + lag]])
    if out.size < n:
        out = np.pad(out, (0, n - out.size))
    return np.ascontiguousarray(out, dtype=np.float32)
