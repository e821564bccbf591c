"""Synthetic audio for tests: signals, and files in every supported format.

Shipped inside the package so that every layer's tests can write their own
fixtures::

    from emovox.testing import speech_like, write_tone, write_all_formats

    y = speech_like(duration_s=1.0, sample_rate_hz=16000, seed=0)
    paths = write_all_formats(tmp_path, y, sample_rate_hz=16000)
    paths["m4a-aac"]   # Path to an AAC-in-M4A file holding ``y``

WAV, FLAC and Ogg Vorbis are written with soundfile; MP3 (libmp3lame),
WebM/Opus (libopus) and M4A/AAC (FFmpeg's native AAC) with PyAV. Encoders
that only accept some sample rates (Opus: 8/12/16/24/48 kHz, MP3: up to
48 kHz) get the signal resampled to the nearest accepted rate, so read back
the rate rather than assuming it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import soxr

from emovox.fileio import atomic_output

#: Format key -> (file suffix, soundfile format, soundfile subtype).
SOUNDFILE_FORMATS: dict[str, tuple[str, str, str]] = {
    "wav-pcm8": (".wav", "WAV", "PCM_U8"),
    "wav-pcm16": (".wav", "WAV", "PCM_16"),
    "wav-pcm24": (".wav", "WAV", "PCM_24"),
    "wav-pcm32": (".wav", "WAV", "PCM_32"),
    "wav-float32": (".wav", "WAV", "FLOAT"),
    "wav-float64": (".wav", "WAV", "DOUBLE"),
    "flac": (".flac", "FLAC", "PCM_16"),
    "flac-24": (".flac", "FLAC", "PCM_24"),
    "ogg-vorbis": (".ogg", "OGG", "VORBIS"),
}

#: Format key -> (file suffix, FFmpeg muxer, encoder, accepted rates or None).
PYAV_FORMATS: dict[str, tuple[str, str, str, tuple[int, ...] | None]] = {
    "mp3": (".mp3", "mp3", "libmp3lame", (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)),
    "webm-opus": (".webm", "webm", "libopus", (8000, 12000, 16000, 24000, 48000)),
    "ogg-opus": (".opus", "ogg", "libopus", (8000, 12000, 16000, 24000, 48000)),
    "m4a-aac": (
        ".m4a",
        "ipod",
        "aac",
        (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000),
    ),
}

#: Every format key :func:`write_all_formats` writes.
ALL_FORMATS = tuple(SOUNDFILE_FORMATS) + tuple(PYAV_FORMATS)

#: Lossy formats (decoded samples differ from the input; lengths may be padded).
LOSSY_FORMATS = frozenset({"ogg-vorbis", "mp3", "webm-opus", "ogg-opus", "m4a-aac"})


def sine(
    freq_hz: float = 440.0,
    *,
    duration_s: float = 1.0,
    sample_rate_hz: int = 16000,
    amplitude: float = 0.5,
    channels: int = 1,
) -> np.ndarray:
    """A sine tone.

    Returns
    -------
    np.ndarray [shape=(channels, n), dtype=float32]
        Channel ``c`` has amplitude ``amplitude / (c + 1)`` so that channels
        differ and a downmix is checkable.
    """
    n = int(round(duration_s * sample_rate_hz))
    t = np.arange(n) / sample_rate_hz
    tone = np.sin(2 * np.pi * freq_hz * t)
    return np.stack([amplitude / (c + 1) * tone for c in range(channels)]).astype(np.float32)


def speech_like(
    duration_s: float = 1.0,
    *,
    sample_rate_hz: int = 16000,
    f0_hz: float = 140.0,
    seed: int = 0,
    amplitude: float = 0.5,
) -> np.ndarray:
    """A deterministic speech-like signal.

    A harmonic series on a gliding, jittered fundamental, shaped by three
    formant-like resonances (~500, 1500, 2500 Hz) up to 5 kHz, amplitude-modulated at a
    syllable rate of ~4 Hz with short pauses, plus faint noise.

    Parameters
    ----------
    duration_s : float
    sample_rate_hz : int
    f0_hz : float
        Mean fundamental frequency.
    seed : int
        Seed of the :class:`numpy.random.Generator` used for jitter and noise.
    amplitude : float
        Peak amplitude of the result.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
    """
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * sample_rate_hz))
    t = np.arange(n) / sample_rate_hz
    drift = 1 + 0.1 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 2 * np.pi))
    f0 = f0_hz * drift * (1 + 0.005 * rng.standard_normal(n).cumsum() / np.sqrt(max(n, 1)))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate_hz
    formants = np.array([500.0, 1500.0, 2500.0]) * rng.uniform(0.9, 1.1, size=3)
    y = np.zeros(n)
    nyquist = sample_rate_hz / 2
    top_hz = min(0.95 * nyquist, 5000.0)  # speech energy lives below ~5 kHz
    for k in range(1, int(top_hz // f0_hz) + 1):
        freq = k * f0_hz
        envelope = sum(np.exp(-0.5 * ((freq - f) / 150.0) ** 2) for f in formants) + 0.02
        y += envelope / k**0.5 * np.sin(k * phase)
    syllables = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 2 * np.pi)), 0, None) ** 0.7
    y = y * syllables + 0.003 * rng.standard_normal(n)
    peak = np.max(np.abs(y)) if n else 0.0
    return (amplitude * y / peak if peak > 0 else y).astype(np.float32)


def encode_audio(y: np.ndarray, *, sample_rate_hz: int, format: str) -> bytes:
    """Encode samples to the bytes of a file in one of :data:`ALL_FORMATS`.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
        Float samples in [-1, 1].
    sample_rate_hz : int
    format : str
        A key of :data:`ALL_FORMATS`.

    Returns
    -------
    bytes
    """
    y = np.atleast_2d(np.asarray(y, dtype=np.float32))
    if format in SOUNDFILE_FORMATS:
        _, sf_format, subtype = SOUNDFILE_FORMATS[format]
        buf = io.BytesIO()
        sf.write(buf, y.T, sample_rate_hz, format=sf_format, subtype=subtype)
        return buf.getvalue()
    if format in PYAV_FORMATS:
        _, muxer, encoder, rates = PYAV_FORMATS[format]
        return _encode_pyav(y, sample_rate_hz, muxer, encoder, rates)
    raise ValueError(f"unknown format {format!r}; expected one of {', '.join(ALL_FORMATS)}")


def write_audio(path: str | os.PathLike, y: np.ndarray, *, sample_rate_hz: int, format: str | None = None) -> Path:
    """Write samples to ``path`` in ``format`` (default: from the suffix).

    Suffixes map to the first format with that suffix: ``.wav`` 16-bit PCM,
    ``.flac`` 16-bit, ``.ogg`` Vorbis, ``.mp3``, ``.webm`` Opus, ``.opus``
    Ogg/Opus, ``.m4a`` AAC.
    """
    path = Path(path)
    if format is None:
        suffix = path.suffix.lower()
        format = next(
            (k for k, v in {**SOUNDFILE_FORMATS, **PYAV_FORMATS}.items() if k != "wav-pcm8" and v[0] == suffix),
            None,
        )
        if format is None:
            raise ValueError(f"cannot infer an audio format from suffix {suffix!r}; pass format=")
    data = encode_audio(y, sample_rate_hz=sample_rate_hz, format=format)
    with atomic_output(path, durable=False) as tmp:  # a test fixture: atomic, no fsync
        tmp.write_bytes(data)
    return path


def write_tone(
    path: str | os.PathLike,
    *,
    format: str | None = None,
    sample_rate_hz: int = 16000,
    channels: int = 1,
    duration_s: float = 1.0,
    freq_hz: float = 440.0,
    amplitude: float = 0.5,
) -> Path:
    """Write a sine tone (see :func:`sine`) to ``path``.

    Parameters
    ----------
    path : str or os.PathLike
    format : str, optional
        A key of :data:`ALL_FORMATS`; default from the suffix.
    sample_rate_hz, channels, duration_s, freq_hz, amplitude
        Tone parameters.

    Returns
    -------
    Path
    """
    y = sine(freq_hz, duration_s=duration_s, sample_rate_hz=sample_rate_hz, amplitude=amplitude, channels=channels)
    return write_audio(path, y, sample_rate_hz=sample_rate_hz, format=format)


def write_two_emotion_corpus(root: str | os.PathLike, *, angry_extra_s: float = 0.0) -> Path:
    """A tiny labelled corpus in the CSV layout: 4 speakers x 2 emotions x 3 clips of synthetic speech.

    ``angry`` clips are loud (amplitude 0.75) and high (220 Hz), ``sad`` ones soft (0.15)
    and low (100 Hz); take ``t`` lasts ``0.6 + 0.1 t`` seconds (``angry`` ones
    ``angry_extra_s`` longer), at 16 kHz. Returns ``root/mine.csv`` (columns
    ``path,label,speaker``), readable as ``load_corpus("csv", path)`` or ``--corpus csv:PATH``.
    """
    root = Path(root)
    rows = ["path,label,speaker"]
    for speaker in range(4):
        for k, label in enumerate(("sad", "angry")):
            for take in range(3):
                y = speech_like(
                    0.6 + 0.1 * take + angry_extra_s * k,
                    f0_hz=100 + 120 * k,
                    seed=50 * speaker + 10 * k + take,
                    amplitude=0.15 + 0.6 * k,
                )
                path = write_audio(root / f"s{speaker}_{label}_{take}.wav", y, sample_rate_hz=16000)
                rows.append(f"{path},{label},spk{speaker}")
    (root / "mine.csv").write_text("\n".join(rows) + "\n")
    return root / "mine.csv"


def write_all_formats(
    directory: str | os.PathLike,
    y: np.ndarray | None = None,
    *,
    sample_rate_hz: int = 16000,
    formats: tuple[str, ...] = ALL_FORMATS,
    stem: str = "clip",
) -> dict[str, Path]:
    """Write the same signal into every supported format.

    Parameters
    ----------
    directory : str or os.PathLike
        Created if missing.
    y : np.ndarray [shape=(n,) or (channels, n)], optional
        Default: 0.5 s of :func:`speech_like` at ``sample_rate_hz``.
    sample_rate_hz : int
    formats : tuple of str
        Keys of :data:`ALL_FORMATS`.
    stem : str
        File name stem; the format key is appended.

    Returns
    -------
    dict
        Format key -> path written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if y is None:
        y = speech_like(0.5, sample_rate_hz=sample_rate_hz)
    out = {}
    for key in formats:
        suffix = (SOUNDFILE_FORMATS.get(key) or PYAV_FORMATS[key])[0]
        out[key] = write_audio(directory / f"{stem}-{key}{suffix}", y, sample_rate_hz=sample_rate_hz, format=key)
    return out


def _encode_pyav(y: np.ndarray, sample_rate_hz: int, muxer: str, encoder: str, rates) -> bytes:
    """Encode ``(channels, n)`` float32 with a PyAV encoder into a muxer."""
    rate = sample_rate_hz
    if rates is not None and rate not in rates:
        rate = min((r for r in rates if r >= rate), default=max(rates))
        y = soxr.resample(np.ascontiguousarray(y.T), sample_rate_hz, rate).T.reshape(y.shape[0], -1)
    channels = y.shape[0]
    layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=muxer) as container:
        stream = container.add_stream(encoder, rate=rate)
        stream.layout = layout
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y.T).reshape(1, -1), format="flt", layout=layout)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def write_tiny_whisper_encoder(folder: str | os.PathLike, config, *, seed: int = 0) -> Path:
    """Save a randomly initialised Whisper encoder of ``config`` into ``folder``; return it.

    A stand-in for the real encoder (which tests may not have): same format as
    ``scripts/import_whisper_ct2.py`` writes, loadable by
    :func:`emovox.models.whisper_encoder.load_whisper_encoder`.
    """
    import torch

    from emovox.models.whisper_encoder import WhisperEncoder, save_whisper_encoder

    torch.manual_seed(seed)
    return save_whisper_encoder(
        Path(folder), WhisperEncoder(config).state_dict(), config, metadata={"source": "random, tests"}
    )
