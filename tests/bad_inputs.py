"""The bad-input corpus: every kind of hostile or odd audio input, generated into a folder.

:func:`make_corpus` writes one file (or link, or folder) per case and returns
:class:`Case` objects saying what emovox must do with each:

- ``"ok"``: decode and predict (a correct answer);
- ``"error"``: refuse with one clear line (an :class:`~emovox.errors.EmovoxError`);
- ``"either"``: a valid answer or one clear line, both acceptable (e.g. a cut
  MP3 decodes up to the cut, as every player does).

Everything is small (a few hundred KB in all) and made with soundfile/PyAV
(:mod:`emovox.testing`) plus byte patches of real headers. The one-hour file is
made separately by :func:`write_one_hour_flac` (slow tests only).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from emovox.service.container_head import ogg_crc32
from emovox.testing import encode_audio, speech_like

SR = 16000


@dataclass(frozen=True)
class Case:
    """One input of the corpus.

    Attributes
    ----------
    name : str
        Case id (``"truncated-flac"``).
    path : Path
        The input path.
    expect : str
        ``"ok"``, ``"error"`` or ``"either"``.
    why : str
        What is wrong with it, for the report.
    error : str
        Regex the error line must match (when ``expect != "ok"``).
    """

    name: str
    path: Path
    expect: str
    why: str
    error: str = ""


def speech(duration_s: float = 1.0, sample_rate_hz: int = SR, seed: int = 0) -> np.ndarray:
    return speech_like(duration_s, sample_rate_hz=sample_rate_hz, seed=seed)


def wav_bytes(y: np.ndarray, sample_rate_hz: int = SR, subtype: str = "PCM_16") -> bytes:
    """``y`` (n,) or (n, channels) as WAV bytes."""
    buf = io.BytesIO()
    sf.write(buf, y, sample_rate_hz, format="WAV", subtype=subtype)
    return buf.getvalue()


def wav_header(*, channels: int, rate: int, bits: int, data_bytes: int, fmt_tag: int = 1) -> bytes:
    """A canonical 44-byte RIFF/WAVE header declaring ``data_bytes`` of samples."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, (rate * block) & 0xFFFFFFFF, block & 0xFFFF, bits)
    riff_size = min(0xFFFFFFFF, 4 + 8 + len(fmt) + 8 + data_bytes)
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )


# ---------------------------------------------------------------- Ogg pages (patched with a valid CRC)
def patch_ogg(data: bytes, offset: int, new: bytes) -> bytes:
    """Overwrite bytes at ``offset`` of the first Ogg page and fix that page's CRC."""
    assert data[:4] == b"OggS"
    n_segments = data[26]
    page_len = 27 + n_segments + sum(data[27 : 27 + n_segments])
    page = bytearray(data[:page_len])
    page[offset : offset + len(new)] = new
    page[22:26] = b"\x00\x00\x00\x00"
    page[22:26] = struct.pack("<I", ogg_crc32(bytes(page)))
    return bytes(page) + data[page_len:]


def _vorbis_id_offset(data: bytes) -> int:
    """Offset of the Vorbis identification header (``\\x01vorbis``) in the first page."""
    at = data.find(b"\x01vorbis")
    assert 0 < at < 200
    return at


def patch_flac_streaminfo(
    data: bytes, *, rate: int | None = None, channels: int | None = None, total_samples: int | None = None
) -> bytes:
    """Rewrite FLAC STREAMINFO's 20-bit sample rate / 3-bit channel count / 36-bit length (no checksum covers them)."""
    assert data[:4] == b"fLaC"
    info = bytearray(data)
    base = 8 + 10  # "fLaC" + block header (4), then min/max block (4) and min/max frame (6) sizes
    packed = int.from_bytes(info[base : base + 8], "big")  # rate:20 channels-1:3 bits-1:5 total:36
    if rate is not None:
        packed = (packed & ~(0xFFFFF << 44)) | ((rate & 0xFFFFF) << 44)
    if channels is not None:
        packed = (packed & ~(0x7 << 41)) | (((channels - 1) & 0x7) << 41)
    if total_samples is not None:
        packed = (packed & ~((1 << 36) - 1)) | (total_samples & ((1 << 36) - 1))
    info[base : base + 8] = packed.to_bytes(8, "big")
    return bytes(info)


PNG = (
    b"\x89PNG\r\n\x1a\n"
    + struct.pack(">I", 13)
    + b"IHDR"
    + struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    + struct.pack(">I", zlib.crc32(b"IHDR" + struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)))
    + struct.pack(">I", 12)
    + b"IDAT"
    + zlib.compress(b"\x00\xff\x00\x00")
    + b"\x00" * 4
    + struct.pack(">I", 0)
    + b"IEND"
    + struct.pack(">I", zlib.crc32(b"IEND"))
)


# ---------------------------------------------------------------- the corpus
def make_corpus(root: Path) -> list[Case]:
    """Write every case under ``root`` (created); returns them in a stable order."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(name: str, filename: str, data: bytes | None, expect: str, why: str, error: str = "") -> Path:
        path = root / filename
        if data is not None:
            path.write_bytes(data)
        cases.append(Case(name, path, expect, why, error))
        return path

    y = speech(1.0)
    # --- not audio at all
    add("empty-file", "empty.wav", b"", "error", "0 bytes", r"empty")
    add(
        "zero-length-wav",
        "zero-length.wav",
        wav_header(channels=1, rate=SR, bits=16, data_bytes=0),
        "error",
        "valid WAV header, no samples",
        r"no samples|contains no|empty",
    )
    add(
        "text",
        "notes.wav",
        b"This is not audio, just some text.\n" * 20,
        "error",
        "plain text named .wav",
        r"not audio|supported format",
    )
    add("png", "picture.wav", PNG, "error", "a PNG image named .wav", r"not audio|supported format")

    # --- truncated containers: the first 60 % of a real 1 s file
    for fmt, suffix in (
        ("wav-pcm16", "wav"),
        ("flac", "flac"),
        ("mp3", "mp3"),
        ("ogg-vorbis", "ogg"),
        ("webm-opus", "webm"),
        ("m4a-aac", "m4a"),
    ):
        full = encode_audio(y, sample_rate_hz=SR, format=fmt)
        # MP3 carries no length header: a cut MP3 is a shorter MP3 (players play it), so either is right.
        expect = "either" if fmt == "mp3" else "error"
        add(
            f"truncated-{suffix}",
            f"truncated.{suffix}",
            full[: int(len(full) * 0.6)],
            expect,
            f"{fmt} cut at 60 % of its bytes",
            r"truncated|corrupt",
        )

    # --- headers that lie
    add(
        "wav-claims-hours",
        "claims-hours.wav",
        wav_header(channels=1, rate=SR, bits=16, data_bytes=0x7FFFFFF0) + b"\x01\x02" * 200,
        "error",
        "WAV header declares 2 GiB (18.6 h) of samples, 400 bytes follow",
        r"truncated|corrupt",
    )
    add(
        "wav-absurd-channels",
        "absurd-channels.wav",
        wav_header(channels=65535, rate=SR, bits=16, data_bytes=65535 * 2 * 4) + b"\x00" * (65535 * 8),
        "error",
        "WAV declaring 65535 channels",
        r"channel|not audio|supported|corrupt|truncated",
    )
    add(
        "wav-absurd-rate",
        "absurd-rate.wav",
        wav_header(channels=1, rate=0xFFFFFFF0, bits=16, data_bytes=3200) + b"\x00\x10" * 1600,
        "either",
        "WAV declaring a 4.29 GHz sample rate",
        r"rate|corrupt|supported|short|truncated",
    )
    add(
        "wav-zero-rate",
        "zero-rate.wav",
        wav_header(channels=1, rate=0, bits=16, data_bytes=3200) + b"\x00\x10" * 1600,
        "error",
        "WAV declaring a 0 Hz sample rate",
        r"rate|corrupt|supported|truncated",
    )
    flac = encode_audio(y, sample_rate_hz=SR, format="flac")
    add(
        "flac-8-channels-declared",
        "declares-8ch.flac",
        patch_flac_streaminfo(flac, channels=8),
        "either",
        "mono FLAC whose STREAMINFO declares 8 channels",
        r"corrupt|truncated|channel",
    )
    add(
        "flac-absurd-rate",
        "absurd-rate.flac",
        patch_flac_streaminfo(flac, rate=0xFFFFF),
        "either",
        "FLAC whose STREAMINFO declares 1 048 575 Hz",
        r"corrupt|truncated|rate|short",
    )
    add(
        "flac-zero-rate",
        "zero-rate.flac",
        patch_flac_streaminfo(flac, rate=0),
        "either",
        "FLAC whose STREAMINFO declares 0 Hz",
        r"corrupt|truncated|rate|supported",
    )
    add(
        "flac-unknown-length",
        "unknown-length.flac",
        patch_flac_streaminfo(flac, total_samples=0),
        "ok",
        "FLAC whose STREAMINFO gives 0 (unknown) total samples, as a FLAC written to a pipe",
    )
    vorbis = encode_audio(y, sample_rate_hz=SR, format="ogg-vorbis")
    at = _vorbis_id_offset(vorbis)
    add(
        "ogg-255-channels",
        "255-channels.ogg",
        patch_ogg(vorbis, at + 11, b"\xff"),
        "error",
        "Ogg Vorbis whose identification header declares 255 channels (CRC fixed)",
        r"corrupt|truncated|channel|supported",
    )
    add(
        "ogg-absurd-rate",
        "absurd-rate.ogg",
        patch_ogg(vorbis, at + 12, struct.pack("<I", 0xFFFFFFFF)),
        "either",
        "Ogg Vorbis declaring a 4.29 GHz sample rate (CRC fixed)",
        r"corrupt|truncated|rate|supported",
    )
    add(
        "ogg-zero-rate",
        "zero-rate.ogg",
        patch_ogg(vorbis, at + 12, struct.pack("<I", 0)),
        "error",
        "Ogg Vorbis declaring 0 Hz (CRC fixed)",
        r"corrupt|truncated|rate|supported",
    )

    # --- bad samples
    bad = y.copy()
    bad[100:110] = np.nan
    add(
        "nan-float-wav",
        "nan.wav",
        wav_bytes(bad, subtype="FLOAT"),
        "error",
        "float WAV with NaN samples",
        r"NaN|infinite",
    )
    bad = y.copy()
    bad[5000] = np.inf
    bad[5001] = -np.inf
    add(
        "inf-float-wav",
        "inf.wav",
        wav_bytes(bad, subtype="FLOAT"),
        "error",
        "float WAV with ±inf samples",
        r"NaN|infinite",
    )

    # --- odd but valid audio: a correct answer
    add("10ms-clip", "10ms.wav", wav_bytes(speech(0.01)), "either", "10 ms of speech", r"short|minimum|longer")
    add(
        "silence",
        "silence.wav",
        wav_bytes(np.zeros(SR, np.float32)),
        "either",
        "1 s of digital silence",
        r"silen|speech|quiet",
    )
    clipped = np.clip(speech(1.0, seed=2) * 8.0, -1.0, 1.0)
    add("clipping", "clipping.wav", wav_bytes(clipped), "ok", "speech driven 18 dB into clipping")
    add("dc-offset", "dc-offset.wav", wav_bytes(0.4 + 0.5 * speech(1.0, seed=3)), "ok", "speech on a +0.4 DC offset")
    add("8khz", "8khz.wav", wav_bytes(speech(1.0, 8000, seed=4), 8000), "ok", "8 kHz telephone-rate speech")
    add("192khz", "192khz.flac", None, "ok", "192 kHz speech (24-bit FLAC)")
    sf.write(root / "192khz.flac", speech(1.0, 192000, seed=5), 192000, subtype="PCM_24")
    for channels in range(1, 9):
        mono = speech(1.0, seed=10 + channels)
        multi = np.stack([mono * (0.9**c) for c in range(channels)], axis=1)
        add(f"{channels}-channels", f"{channels}ch.wav", wav_bytes(multi), "ok", f"{channels}-channel WAV")

    # --- file-system oddities
    loop = root / "loop.wav"
    os.symlink(loop.name, loop)  # a link to itself: open() fails with ELOOP
    cases.append(
        Case(
            "symlink-loop",
            loop,
            "error",
            "a symbolic link pointing to itself",
            r"symbolic links|cannot read|loop|does not exist",
        )
    )
    folder = root / "folder.wav"
    folder.mkdir()
    cases.append(Case("directory-named-like-a-file", folder, "error", "a folder named folder.wav", r"folder|no audio"))
    odd = root / "my recordings" / "ångström ☺ 音声 (take 2).wav"
    odd.parent.mkdir()
    odd.write_bytes(wav_bytes(speech(1.0, seed=7)))
    cases.append(Case("spaces-and-non-ascii-path", odd, "ok", "path with spaces, accents, emoji and CJK"))
    return cases


def write_one_hour_flac(path: Path, *, seconds: int = 3600, sample_rate_hz: int = SR) -> Path:
    """A long, cheap file: low-amplitude noise with a speech-like burst every minute, as 16-bit FLAC.

    Written in blocks (bounded memory); about 40 MB for an hour at 16 kHz.
    """
    rng = np.random.default_rng(0)
    burst = speech(2.0, sample_rate_hz, seed=1)
    with sf.SoundFile(path, "w", samplerate=sample_rate_hz, channels=1, format="FLAC", subtype="PCM_16") as fh:
        for minute in range(0, seconds, 60):
            n = min(60, seconds - minute) * sample_rate_hz
            block = (0.002 * rng.standard_normal(n)).astype(np.float32)
            block[: burst.size] += burst[: min(burst.size, n)]
            fh.write(block)
    return path


# ---------------------------------------------------------------- running the real CLI
@dataclass
class CliResult:
    """Outcome of one ``emovox`` process."""

    returncode: int
    stdout: str
    stderr: str
    peak_mb: float
    seconds: float

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


CLI = ("-c", "import sys; from emovox.cli.main import main; sys.exit(main())")


def run_cli(
    args, *, cwd=None, timeout_s: float = 300.0, stdin: bytes | None = None, env: dict | None = None
) -> CliResult:
    """Run ``emovox ARGS`` in a fresh interpreter; peak RSS from ``wait4`` (this child only).

    A run longer than ``timeout_s`` is killed and reported as a hang (AssertionError).
    """
    import subprocess
    import sys
    import tempfile
    import threading
    import time

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, *CLI, *map(str, args)],
            cwd=cwd,
            stdout=out,
            stderr=err,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        )
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        try:
            if stdin is not None:
                try:
                    proc.stdin.write(stdin)
                except BrokenPipeError:
                    pass
                proc.stdin.close()
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        result = CliResult(
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            usage.ru_maxrss / 1024,
            seconds,
        )
    assert seconds < timeout_s, f"emovox {' '.join(map(str, args))} hung (killed after {timeout_s:.0f} s)"
    return result


def model_args() -> list[str]:
    """``--model cnn`` when emovox ships a model by that name (fast), else the default model."""
    try:
        from emovox.inference.predictor import shipped_models

        if "cnn" in shipped_models():
            return ["--model", "cnn"]
    except ImportError:
        pass
    return []
