"""Decode an audio source to float32 samples at its native rate.

Two back ends, tried in this order:

* **soundfile** (libsndfile) for WAV, FLAC, Ogg (Vorbis/Opus), MP3, AIFF and
  CAF: fast, and the only one used on the hot WAV/FLAC path;
* **PyAV** (FFmpeg) for WebM/Matroska, MP4/M4A, ADTS AAC and anything
  libsndfile cannot open, and as a fallback when libsndfile fails.

Every library exception is turned into an :mod:`emovox.errors` class here,
with a message in words (``"clip.wav: not an audio file or an unsupported
format"``, ``"clip.flac: the file ends early: ..."``); the library's own
exception, whose text is an internal (``[Errno 1094995529] Invalid data found
when processing input``), is kept as its ``__cause__``. The decision between
"not audio" and "truncated" rests on whether the first bytes looked like a
known container (see :func:`~.source.sniff_container`).
"""

from __future__ import annotations

from collections.abc import Iterator

import av
import av.error
import numpy as np
import soundfile as sf

from emovox.audio.integrity import check_integrity, truncated
from emovox.audio.source import SOUNDFILE_CONTAINERS, AudioSource, Source, open_source
from emovox.audio.validate import MAX_CHANNELS, validate_signal
from emovox.errors import AudioError, EmptyAudioError, UnsupportedAudioError

#: Exceptions the decoding libraries raise on bad input (all are wrapped).
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    sf.SoundFileError,
    av.error.FFmpegError,
    RuntimeError,
    OSError,
    EOFError,
    ValueError,
    TypeError,
    IndexError,
    OverflowError,
    ZeroDivisionError,
    KeyError,
)

#: Upper bound on decoded samples per encoded byte (FLAC of digital silence
#: reaches a few hundred); headers claiming more are not trusted for allocation.
_MAX_SAMPLES_PER_BYTE = 4096

#: libsndfile's frame count for a stream of unknown length (SF_COUNT_MAX), e.g. a FLAC written to a
#: pipe, whose STREAMINFO total_samples is 0 ("unknown") by the FLAC specification.
SF_UNKNOWN_FRAMES = 2**63 - 1

#: Containers whose header states the stream length reliably enough to
#: detect a cut-off file from the decoded length (MP3/ADTS/Ogg estimate it).
_LENGTH_DECLARING = frozenset({"wav", "flac", "mp4", "matroska", "aiff", "caf"})


def decode_audio(source: Source) -> tuple[np.ndarray, int]:
    """Decode audio to float32 samples at the native sample rate.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object
        WAV (8/16/24/32-bit integer or float), FLAC, Ogg Vorbis/Opus, MP3,
        WebM/Opus, M4A/AAC, or anything else FFmpeg can decode.

    Returns
    -------
    y : np.ndarray [shape=(channels, n), dtype=float32]
        Samples in [-1, 1] (float files may exceed it), finite, n > 0.
    sample_rate_hz : int
        Native sample rate.

    Raises
    ------
    AudioError
        Missing path, unreadable file, or unsupported object type.
    EmptyAudioError
        No bytes or no samples.
    UnsupportedAudioError
        The bytes are not audio in a format that can be decoded.
    TruncatedAudioError
        The file looks like audio but is cut off or corrupt.
    InvalidSamplesError
        The samples contain NaN or infinity.
    """
    src = open_source(source)
    check_integrity(src)
    y, sr = _decode(src)
    return validate_signal(y, sr, min_duration_s=0.0, name=src.name), sr


def audio_duration_s(source: Source) -> float:
    """Duration of an audio source in seconds, from its header when possible.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object

    Returns
    -------
    float
        Duration in seconds (0.0 for a valid file without samples). When the
        container does not state its length the stream is decoded, packet by
        packet, in bounded memory.

    Raises
    ------
    AudioError
        As :func:`decode_audio`.
    """
    src = open_source(source)
    check_integrity(src)
    if use_soundfile(src):
        try:
            info = sf.info(src.target)
        except DECODE_ERRORS:
            info = None
        if info is not None and info.samplerate > 0 and 0 <= info.frames < SF_UNKNOWN_FRAMES:
            if info.frames * info.channels > _MAX_SAMPLES_PER_BYTE * src.size + (1 << 20):
                raise truncated(src, f"its header claims {info.frames} frames, more than {src.size} bytes can hold")
            return info.frames / info.samplerate
        src.rewind()
    trust_header = _declares_length(src) or src.container == "ogg"  # reads src: not while FFmpeg does
    try:
        with av.open(src.target, mode="r", metadata_errors="ignore") as container:
            stream = _audio_stream(container, src)
            declared = _declared_duration_s(container, stream)
            if declared is not None and trust_header:
                return declared
            n = 0  # MP3 without a length tag, ADTS, ...: FFmpeg only estimates, so count
            rate = 0
            for frame in container.decode(stream):
                n += frame.samples
                rate = frame.sample_rate or rate
            return n / rate if rate else 0.0
    except AudioError:
        raise
    except DECODE_ERRORS as exc:
        raise _ffmpeg_error(src, exc) from exc


def use_soundfile(src: AudioSource) -> bool:
    """Whether to try libsndfile first for ``src``.

    Not for MP3: libsndfile estimates the length of a VBR stream without a
    Xing/Info/VBRI tag from its first frame and silently stops reading there
    (dropping up to a third of the audio), and its mpg123 decoder prints
    warnings straight to the process's stderr on damaged files ("Xing stream
    size off by more than 1%"), which would break the one-line error contract.
    FFmpeg decodes MP3 completely and quietly; a cut file is still detected
    from its Xing/Info length (see :func:`iter_pyav`).
    """
    if src.container == "mp3":
        return False
    return src.container in SOUNDFILE_CONTAINERS or src.container is None


def _decode(src: AudioSource) -> tuple[np.ndarray, int]:
    """Decode with soundfile when it can, else (or on failure) with PyAV."""
    if use_soundfile(src):
        result = _decode_soundfile(src)
        if result is not None:
            return result
        src.rewind()
    chunks: list[np.ndarray] = []
    rate = 0
    for block, rate in iter_pyav(src):  # noqa: B007 - the last block's rate is the stream's
        chunks.append(block)
    if not chunks:
        raise EmptyAudioError(f"{src.kind} input {src.name!r} contains no samples: pass a recording with sound in it")
    if len({c.shape[0] for c in chunks}) > 1:
        raise UnsupportedAudioError(
            f"input {src.name!r} changes its channel count mid-stream: convert it to a fixed layout first"
        )
    return np.concatenate(chunks, axis=1), rate


def _decode_soundfile(src: AudioSource) -> tuple[np.ndarray, int] | None:
    """Read the whole file with libsndfile; ``None`` if it cannot."""
    try:
        with sf.SoundFile(src.target) as fh:
            declared = fh.frames
            rate = fh.samplerate
            check_channels(src, fh.channels)
            if declared >= SF_UNKNOWN_FRAMES:  # length unknown to the header: FFmpeg reads these reliably
                return None
            if 0 <= declared * fh.channels <= _MAX_SAMPLES_PER_BYTE * src.size + (1 << 20):
                data = fh.read(dtype="float32", always_2d=True)
            else:  # a corrupt header claims more than the bytes can hold: don't allocate it
                parts = []
                while (part := fh.read(1 << 18, dtype="float32", always_2d=True)).shape[0]:
                    parts.append(part)
                data = np.concatenate(parts) if parts else np.zeros((0, fh.channels), dtype=np.float32)
    except AudioError:
        raise
    except DECODE_ERRORS:
        return None
    except MemoryError as exc:
        raise AudioError(
            f"{src.kind} input {src.name!r} is too large to decode at once: use stream_audio() for long recordings"
        ) from exc
    if rate <= 0:
        return None
    n = data.shape[0]
    if n == 0 and declared <= 0:
        if src.size > 1024:  # e.g. a streaming writer left the WAV data size at 0: let PyAV read it
            return None
        raise EmptyAudioError(f"{src.kind} input {src.name!r} contains no samples: pass a recording with sound in it")
    missing = declared - n
    if missing > max(0.05 * rate, 0.02 * declared):
        raise truncated(src, f"decoded {n} of the {declared} frames its header declares")
    y = data.T if data.shape[1] == 1 else np.ascontiguousarray(data.T)
    return y, int(rate)


def iter_pyav(src: AudioSource) -> Iterator[tuple[np.ndarray, int]]:
    """Decode packet by packet with PyAV.

    Yields
    ------
    block : np.ndarray [shape=(channels, n), dtype=float32]
    sample_rate_hz : int

    Raises
    ------
    UnsupportedAudioError, TruncatedAudioError
        On any FFmpeg failure, or when fewer samples than the container
        declares could be decoded.
    """
    n_decoded = 0
    rate = 0
    try:
        with av.open(src.target, mode="r", metadata_errors="ignore") as container:
            stream = _audio_stream(container, src)
            declared = _declared_duration_s(container, stream)
            for frame in container.decode(stream):
                if frame.samples == 0:
                    continue
                check_channels(src, frame.layout.nb_channels)
                rate = int(frame.sample_rate or stream.codec_context.sample_rate or 0)
                if rate <= 0:
                    raise truncated(src, "its sample rate is missing")
                block = frame_to_array(frame)
                n_decoded += block.shape[1]
                yield block, rate
    except AudioError:
        raise
    except DECODE_ERRORS as exc:
        if n_decoded:
            raise truncated(src, f"decoding stopped after {n_decoded / rate:.2f} s") from exc
        raise _ffmpeg_error(src, exc) from exc
    if declared is not None and rate and _declares_length(src):
        got_s = n_decoded / rate
        # MP3's Xing/Info length is exact (gapless); other codecs' priming/padding needs more slack.
        if declared - got_s > max(0.05 if src.container == "mp3" else 0.1, 0.02 * declared):
            raise truncated(src, f"decoded {got_s:.3f} s of the {declared:.3f} s its header declares")


def check_channels(src: AudioSource, channels: int) -> None:
    """Refuse a file whose (possibly corrupt) header declares more than :data:`MAX_CHANNELS` channels."""
    if channels > MAX_CHANNELS:
        raise UnsupportedAudioError(
            f"{src.kind} input {src.name!r} declares {channels} channels (emovox reads at most {MAX_CHANNELS}): "
            "the file is corrupt or not a recording; downmix it to mono or stereo first"
        )


def _declares_length(src: AudioSource) -> bool:
    """Whether the header states the stream length (MP3: a Xing/Info/VBRI tag)."""
    if src.container in _LENGTH_DECLARING:
        return True
    if src.container == "mp3":
        head = src.read_range(0, 16384)
        return any(tag in head for tag in (b"Xing", b"Info", b"VBRI"))
    return False


def frame_to_array(frame: av.AudioFrame) -> np.ndarray:
    """Convert a decoded PyAV frame to float32 ``(channels, n)``."""
    arr = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    if arr.dtype == np.float32:
        return arr
    if arr.dtype == np.float64:
        return arr.astype(np.float32)
    if arr.dtype == np.int16:
        return arr.astype(np.float32) * np.float32(1 / 32768)
    if arr.dtype == np.int32:
        return (arr.astype(np.float64) * (1 / 2147483648)).astype(np.float32)
    if arr.dtype == np.int64:
        return (arr.astype(np.float64) * (1 / 9223372036854775808)).astype(np.float32)
    if arr.dtype == np.uint8:
        return (arr.astype(np.float32) - 128.0) * np.float32(1 / 128)
    raise UnsupportedAudioError(
        f"decoded sample format {frame.format.name!r} is not supported: convert the file to WAV"
    )


def _audio_stream(container: av.container.InputContainer, src: AudioSource) -> av.audio.stream.AudioStream:
    """The first audio stream of an open PyAV container."""
    if not container.streams.audio:  # a video without sound says so; text or an image just "not audio"
        raise not_audio(src, "it holds no audio stream" if src.container is not None else None)
    return container.streams.audio[0]


def _declared_duration_s(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> float | None:
    """Length in seconds the container header states, if any."""
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def not_audio(src: AudioSource, detail: str | None = None) -> UnsupportedAudioError:
    """The one-line error for input that is not audio emovox can decode: ``NAME: not an audio file or ...``."""
    return UnsupportedAudioError(
        f"{src.name}: not an audio file or an unsupported format{f' ({detail})' if detail else ''}: "
        "pass WAV, FLAC, Ogg, MP3, WebM/Opus or M4A/AAC"
    )


def _ffmpeg_error(src: AudioSource, exc: BaseException) -> AudioError:
    """Map an FFmpeg failure before any sample was decoded (the caller chains ``exc`` as the cause).

    A file that starts like a known container but yields no audio is cut
    off or damaged; anything else is not audio emovox can read.
    """
    if src.container is not None:
        return truncated(src, "no audio could be decoded from it")
    return not_audio(src)
