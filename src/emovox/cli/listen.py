"""``emovox listen``: the emotion of live audio, event by event.

Audio comes from the microphone through PortAudio (``sounddevice``, the
``emovox[live]`` extra) or, with ``--input FILE``, from a file fed through the
same engine (at its real pace with ``--realtime``, else as fast as possible).
Every hop (default 0.5 s) the :class:`~emovox.inference.streaming.StreamEngine`
emits one event for the last window (default 3 s). Output on stdout: one line
per event (``t s  label  confidence  speech S s  top-3 scores``, then the
reason of a non-answer in brackets and the window's raised quality flags in
square brackets; ``no_speech`` windows say ``(no speech)``); ``--json`` one
JSON object per line (flushed at once), :meth:`StreamEvent.to_dict` and the
model that answered: ``{t, start_s, end_s, speech, label, confidence, scores,
speech_s, reason, quality, model, model_version}``; on a terminal, live
probability bars redrawn in place (``--plain`` for lines). ``--fast`` (or
``--model cnn``) runs the small CNN, as for ``emovox predict``.

Exit codes: 0 done (end of file, ``--duration-s`` reached); 2 usage error, no
input device, unsupported rate, a device that stops delivering audio; 130
Ctrl-C (the stream is flushed first).
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time
from collections.abc import Iterator
from typing import TextIO

import numpy as np

from emovox.cli import add_model_choice
from emovox.errors import AudioError, ConfigError

#: Seconds of audio per block read from the microphone or the file.
BLOCK_S = 0.1
#: Blocks the microphone may run ahead of the engine before blocks are dropped.
MAX_QUEUED_BLOCKS = 600
#: A device silent for this long is taken as gone.
STALL_S = 3.0
INSTALL_HINT = "pip install 'emovox[live]'"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "listen",
        help="classify live audio (microphone or a file) every hop",
        description="Classify the emotion of live audio: the microphone (PortAudio) or --input FILE, "
        "one event per hop over the last window.",
        epilog="exit codes: 0 done; 2 usage error, no input device, unsupported rate or a device "
        "that stopped; 130 interrupted (Ctrl-C; the stream is flushed first).\n"
        "examples:\n  emovox listen\n  emovox listen --json --duration-s 60 > events.jsonl\n"
        "  emovox listen --input clip.wav --realtime\n"
        "  emovox listen --input clip.wav --fast --json   # the small CNN\n  emovox listen --list-devices",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", metavar="FILE", help="stream this audio file instead of the microphone")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="with --input: feed the file at its real pace (default: as fast as possible)",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per event and line")
    out.add_argument("--plain", action="store_true", help="one text line per event even on a terminal")
    add_model_choice(p)
    p.add_argument(
        "--backend",
        choices=("auto", "torch", "onnx"),
        default="auto",
        help="inference engine (default: onnx when the artifact has model.onnx)",
    )
    p.add_argument("--window-s", type=float, default=3.0, help="analysis window in seconds (default 3)")
    p.add_argument("--hop-s", type=float, default=0.5, help="one event every HOP seconds (default 0.5)")
    p.add_argument(
        "--smoothing",
        type=int,
        default=3,
        help="average over this many consecutive speech windows (default 3; 1 = off)",
    )
    p.add_argument(
        "--vad",
        choices=("auto", "silero", "webrtc", "off"),
        default="auto",
        help="voice activity detector (off: every window is classified)",
    )
    p.add_argument(
        "--adapt",
        action="append",
        metavar="PATH",
        help="speaker adaptation: unlabelled recordings of the speaker (file, folder or glob; "
        "repeatable; at least 5 clips, about 20 recommended; default model only)",
    )
    p.add_argument(
        "--min-confidence",
        type=float,
        default=None,
        metavar="P",
        help="answer 'unknown' under this calibrated confidence (default: the model's threshold)",
    )
    p.add_argument("--device", metavar="ID", help="input device index or name (see --list-devices)")
    p.add_argument(
        "--sample-rate", type=int, default=None, metavar="HZ", help="microphone rate (default: the device's own)"
    )
    p.add_argument("--list-devices", action="store_true", help="list audio input devices and exit")
    p.add_argument("--duration-s", type=float, default=None, metavar="S", help="stop after S seconds of audio")
    p.add_argument("--threads", type=int, default=1, help="CPU threads of the model (default 1)")
    p.set_defaults(func=handle)


# ---------------------------------------------------------------------- audio sources
def _sounddevice():
    try:
        import sounddevice as sd
    except ImportError:
        raise ConfigError(f"the microphone needs sounddevice: {INSTALL_HINT}") from None
    except OSError as error:  # sounddevice imports, but libportaudio is missing
        raise ConfigError(
            f"PortAudio is not available ({error}): install it "
            "(Debian/Ubuntu: apt-get install libportaudio2), or use --input FILE"
        ) from None
    return sd


def _short(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _device(value: str | None):
    if value is None:
        return None
    return int(value) if value.strip().lstrip("-").isdigit() else value


def list_devices(fh: TextIO) -> int:
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        default_in = sd.default.device[0]
    except sd.PortAudioError as error:
        raise AudioError(f"cannot list audio devices: {_short(error)}") from None
    inputs = [(i, d) for i, d in enumerate(devices) if d["max_input_channels"] > 0]
    if not inputs:
        fh.write("no audio input devices found (connect a microphone, or use --input FILE)\n")
        return 0
    for i, d in inputs:
        mark = "*" if i == default_in else " "
        fh.write(f"{mark}{i:3d}  {d['name']}  ({d['max_input_channels']} ch, {d['default_samplerate']:g} Hz)\n")
    return 0


def microphone_blocks(
    device,
    sample_rate_hz: int | None,
    *,
    block_s: float = BLOCK_S,
) -> Iterator[tuple[np.ndarray, int]]:
    """``(block (n,) float32, rate)`` from a PortAudio input device until the caller stops.

    Raises :class:`AudioError` (one line) when there is no input device, the
    rate is not supported, or the device stops delivering audio.
    """
    sd = _sounddevice()
    name = "the default input device" if device is None else f"input device {device!r}"
    try:
        info = sd.query_devices(device, kind="input")
    except (sd.PortAudioError, ValueError) as error:
        raise AudioError(
            f"no audio input device ({name}: {_short(error)}): connect a microphone, pick one with "
            "--device (see --list-devices), or stream a file with --input FILE --realtime"
        ) from None
    rate = int(sample_rate_hz or info["default_samplerate"])
    try:
        sd.check_input_settings(device=device, samplerate=rate, channels=1, dtype="float32")
    except (sd.PortAudioError, ValueError) as error:
        raise AudioError(
            f"{info['name']!r} does not record at {rate} Hz ({_short(error)}): omit --sample-rate "
            f"to use its own rate ({info['default_samplerate']:g} Hz)"
        ) from None
    blocks: queue.Queue = queue.Queue(maxsize=MAX_QUEUED_BLOCKS)
    dropped = 0

    def callback(indata, frames, when, status):  # PortAudio's thread: copy and hand over
        nonlocal dropped
        try:
            blocks.put_nowait(indata[:, 0].copy())
        except queue.Full:
            dropped += 1

    def finished():
        try:
            blocks.put_nowait(None)
        except queue.Full:
            pass

    try:
        stream = sd.InputStream(
            device=device,
            samplerate=rate,
            channels=1,
            dtype="float32",
            blocksize=max(1, int(rate * block_s)),
            callback=callback,
            finished_callback=finished,
        )
        stream.start()
    except (sd.PortAudioError, ValueError) as error:
        raise AudioError(f"cannot open {info['name']!r} at {rate} Hz: {_short(error)}") from None
    print(f"emovox: listening on {info['name']!r} at {rate} Hz (Ctrl-C to stop)", file=sys.stderr)
    try:
        while True:
            try:
                block = blocks.get(timeout=STALL_S)
            except queue.Empty:
                raise AudioError(
                    f"{info['name']!r} delivered no audio for {STALL_S:g} s: was it disconnected?"
                ) from None
            if block is None:
                raise AudioError(f"{info['name']!r} stopped delivering audio: was it disconnected?")
            yield block, rate
    finally:
        _close_stream(stream, sd)
        if dropped:
            print(
                f"emovox: warning: {dropped} audio blocks dropped (the model ran slower than "
                "real time: try --hop-s 1 or a faster --model)",
                file=sys.stderr,
            )


def _close_stream(stream, sd, *, timeout_s: float = 2.0) -> None:
    """Abort and close a PortAudio stream without hanging on a stuck device.

    A device that stopped mid-read can block ``abort`` (and PortAudio's exit
    handler) until it returns; the stream is then left to the process exit.
    """

    def close():
        try:
            stream.abort()
            stream.close()
        except sd.PortAudioError:
            pass

    import threading

    closer = threading.Thread(target=close, name="emovox-close-audio", daemon=True)
    closer.start()
    closer.join(timeout_s)
    if closer.is_alive():  # stuck in the driver: PortAudio's exit handler would wait for it forever
        import atexit

        handler = getattr(sd, "_exit_handler", None)
        if handler is not None:
            atexit.unregister(handler)


def file_blocks(
    path: str, sample_rate_hz: int, *, realtime: bool, block_s: float = BLOCK_S
) -> Iterator[tuple[np.ndarray, int]]:
    """``(block, rate)`` of a decoded file, paced at its real speed when ``realtime``."""
    from emovox.audio import stream_audio

    start, fed = time.monotonic(), 0.0
    for block in stream_audio(path, sample_rate_hz=sample_rate_hz, block_s=block_s):
        if realtime:  # a block is available once its last sample has "arrived"
            fed += block.size / sample_rate_hz
            delay = start + fed - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield block, sample_rate_hz


# ---------------------------------------------------------------------- output
def _notes(e) -> str:
    """The reason of a non-answer and the raised flags of an event: ``" (low_confidence) [narrowband]"``."""
    out = ""
    if e.reason and e.reason != e.label:  # "no_speech" says it already
        out += f" ({e.reason})"
    flags = tuple(e.quality.flags) if e.quality is not None else ()
    if flags:
        out += f" [{', '.join(flags)}]"
    return out


class _Lines:
    """One line per event: JSON or text."""

    def __init__(self, fh: TextIO, *, as_json: bool, model: tuple[str, str] = ("", "")) -> None:
        self.fh, self.as_json = fh, as_json
        self.model = {"model": model[0], "model_version": model[1]}

    def event(self, e) -> None:
        if self.as_json:
            self.fh.write(json.dumps({**e.to_dict(), **self.model}) + "\n")
        else:
            head = f"{e.t:8.1f} s  {e.label:<10} {e.confidence:.2f}  speech {e.speech_s:3.1f} s"
            if e.speech:
                top = sorted(e.scores.items(), key=lambda kv: -kv[1])[:3]
                body = "  ".join(f"{k} {v:.2f}" for k, v in top)
            else:
                body = "(no speech)"
            self.fh.write(f"{head}   {body}{_notes(e)}\n")
        self.fh.flush()

    def done(self) -> None:
        self.fh.flush()


class _Bars:
    """Probability bars of the latest event, redrawn in place on a terminal."""

    WIDTH = 32

    def __init__(self, fh: TextIO, labels: tuple[str, ...]) -> None:
        self.fh, self.labels = fh, labels
        self.drawn = False
        self.pad = max(len(k) for k in labels)

    def event(self, e) -> None:
        lines = []
        speech = f"speech {e.speech_s:.1f} s"
        if e.speech:
            lines.append(f"\x1b[1m{e.t:7.1f} s  {e.label}  {e.confidence:.2f}\x1b[0m  {speech}{_notes(e)}")
        else:
            lines.append(f"{e.t:7.1f} s  \x1b[2m(no speech)\x1b[0m  {speech}{_notes(e)}")
        for k in self.labels:
            v = float(e.scores.get(k, 0.0))
            n = int(round(v * self.WIDTH))
            bar = "█" * n + "\x1b[2m" + "·" * (self.WIDTH - n) + "\x1b[0m"
            lines.append(f"  {k:<{self.pad}} {bar} {v:4.2f}")
        if self.drawn:
            self.fh.write(f"\x1b[{len(lines)}F")  # back to the first line of the block
        self.fh.write("".join(f"\x1b[2K{line}\n" for line in lines))
        self.fh.flush()
        self.drawn = True

    def done(self) -> None:
        self.fh.flush()


# ---------------------------------------------------------------------- command
def _check_args(args: argparse.Namespace) -> None:
    if args.realtime and not args.input:
        raise ConfigError("--realtime applies to --input FILE (the microphone is always real time)")
    if args.input and (args.device is not None or args.sample_rate is not None):
        raise ConfigError("--device and --sample-rate apply to the microphone, not to --input FILE")
    if args.duration_s is not None and not args.duration_s > 0:
        raise ConfigError(f"--duration-s {args.duration_s}: must be a positive number of seconds")
    if args.sample_rate is not None and not 1000 <= args.sample_rate <= 384000:
        raise ConfigError(f"--sample-rate {args.sample_rate}: expected 1000 to 384000 Hz")
    if args.threads < 1:
        raise ConfigError(f"--threads {args.threads}: must be at least 1")
    if args.input:
        import os

        if not os.path.isfile(args.input):
            raise ConfigError(f"--input {args.input!r}: no such file")


def handle(args: argparse.Namespace) -> int:
    if args.list_devices:
        return list_devices(sys.stdout)
    _check_args(args)
    from emovox.inference import load_model
    from emovox.inference.predictor import FAST_MODEL
    from emovox.inference.streaming import StreamEngine

    model = load_model(
        FAST_MODEL if args.fast else args.model,
        backend=args.backend,
        min_confidence=args.min_confidence,
        num_threads=args.threads,
    )
    if args.adapt:
        from emovox.cli.predict import adapt_to_speaker

        adapt_to_speaker(model, args.adapt)
    engine = StreamEngine(model, window_s=args.window_s, hop_s=args.hop_s, vad=args.vad, smoothing=args.smoothing)
    tty = sys.stdout.isatty()
    show = (
        _Bars(sys.stdout, model.labels)
        if tty and not (args.json or args.plain)
        else _Lines(sys.stdout, as_json=args.json, model=(model.model_name, model.model_version))
    )
    if args.input:
        blocks = file_blocks(args.input, model.sample_rate_hz, realtime=args.realtime)
    else:
        blocks = microphone_blocks(_device(args.device), args.sample_rate)
    limit = args.duration_s
    try:
        for block, rate in blocks:
            if limit is not None:
                left = int(round((limit - engine.seconds_fed) * rate))
                block = block[: max(0, left)]
            for event in engine.feed(block, rate):
                show.event(event)
            if limit is not None and engine.seconds_fed >= limit - 1e-9:
                break
    except (KeyboardInterrupt, AudioError):
        _finish(engine, show, blocks)  # print what the audio so far gave, then the error
        raise  # emovox.cli.main: "interrupted" (exit 130) or one error line (exit 2)
    _finish(engine, show, blocks)
    return 0


def _finish(engine, show, blocks) -> None:
    """Stop the source, flush the engine's tail, finish the display."""
    close = getattr(blocks, "close", None)
    if close is not None:
        close()  # runs the generator's cleanup: the microphone stream is closed
    for event in engine.close():
        show.event(event)
    show.done()
