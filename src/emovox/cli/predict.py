"""``emovox predict``: emotion of files, folders, globs or stdin.

Inputs are expanded in order: ``-`` reads audio bytes from stdin, a folder is
searched recursively for audio files, a pattern with ``*``/``?``/``[`` is a
glob (``**`` recursive), anything else is a file. Each input is predicted on
its own: a file that fails prints one ``emovox: error: FILE: reason`` line on
stderr and the batch goes on; the exit code is then 1 (2 for usage and model
errors). ``--adapt PATH`` (recordings of the inputs' one speaker) switches
to the model's speaker-adapted head. Recordings longer than ``--auto-timeline-s`` (or all, with
``--timeline``) are analysed as a timeline: speech segments, a prediction per
window, an overall summary.

Every input passes the speech gate first: one without speech is answered
``no_speech`` (no scores), one with too little speech or a low confidence
``unknown`` with its reason; each answer carries its seconds of speech and the
input's quality flags (``narrowband``, ``clipping``, ``low_snr``, ``low_level``).

Output (stdout, or ``--output FILE`` written atomically):

- a table by default: ``file, start_s, end_s, speech_s, label, conf, scores``,
  the scores followed by the reason of a non-answer in brackets and the raised
  flags in square brackets (``[narrowband, low_snr]``), each warning on an
  indented ``warning:`` line below; a timeline shows its overall answer, its
  merged segments (adjacent agreeing segments joined, ``└ N``) and a summary
  line ``= FILE: angry (62% of confident speech; sad 30%); unknown 12% of
  speech; no speech 35% of 42.0 s``;
- ``--json``: a list of ``{file, model, model_version, start_s, end_s, label,
  confidence, scores, speech_s, reason, quality, warnings}``
  (:meth:`Prediction.to_dict` after the input and the model's name and
  version), timelines adding ``timeline: {duration_s, summary, quality,
  warnings, segments, merged}``; failures ``{file, model, model_version, error}``;
- ``--csv``: the result rows of :mod:`emovox.inference.records`, the same
  columns as ``emovox batch --csv``: ``file, input_index, kind, segment,
  start_s, end_s, label, confidence, speech_s, reason, flags,
  score_<label>..., model, model_version, error`` (``flags`` the raised
  quality flags joined by ``;``; empty ``score_`` cells for ``no_speech``);
  ``kind`` is ``file`` for an input's answer (a clip's prediction, a
  timeline's overall answer, an input that failed) and ``segment`` for each
  segment of a timeline (``segment`` numbered from 0; their flags are the
  recording's), which follow their ``file`` row;
- ``--timeline --format srt|vtt|audacity|elan``: each timeline as SubRip or
  WebVTT subtitles, an Audacity label track or an ELAN document
  (:mod:`emovox.export.timeline_formats`; one cue per merged segment, its text
  the label, confidence and reason). One input: stdout, or ``-o FILE``. Several
  inputs: ``-o DIR/`` (an existing folder or a path ending in ``/``), one file
  per input named after it (``DIR/<input stem>.srt``; ``.vtt``, ``.txt``,
  ``.eaf``; ``stdin.srt`` for ``-``; a repeated stem gets ``-2``, ``-3``).
  Every file is written atomically, and only for an input that succeeded.

Progress goes to stderr, and only when stderr is a terminal (never into a log
or a pipe; ``-q`` turns it off): a long recording (a timeline) gets a
one-line bar of its audio seconds, fed by ``predict_timeline(progress=)``;
several inputs get a bar counting them, with the current recording's seconds
beside it.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TextIO

from emovox.cli import add_model_choice
from emovox.errors import ConfigError, EmovoxError
from emovox.fileio import atomic_output

#: Extensions collected from folders (any format the audio layer decodes).
AUDIO_EXTENSIONS = frozenset(
    [
        ".wav",
        ".flac",
        ".mp3",
        ".ogg",
        ".oga",
        ".opus",
        ".m4a",
        ".aac",
        ".mp4",
        ".webm",
        ".wma",
        ".aiff",
        ".aif",
        ".au",
        ".caf",
        ".mka",
        ".amr",
    ]
)
STDIN = "-"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict the emotion of audio files, folders, globs or stdin",
        description="Predict the emotion of audio files, folders (recursive), glob patterns or stdin (-).\n"
        "Recordings longer than --auto-timeline-s become a timeline. An input without speech\n"
        "is answered no_speech; too little speech or a low confidence is unknown (with its\n"
        "reason); quality flags (narrowband, clipping, low_snr, low_level) and warnings come\n"
        "with every answer.",
        epilog="exit codes: 0 all inputs predicted; 1 some input failed (one 'emovox: error: FILE: "
        "reason' line each, the others are still predicted); 2 usage or model error.\n"
        "examples:\n  emovox predict clip.wav\n  emovox predict calls/ --csv -o scores.csv\n"
        "  cat clip.mp3 | emovox predict - --json\n"
        "  emovox predict clip.wav --fast        # the small CNN (about 10x faster)\n"
        "  emovox predict call.wav --adapt speaker_clips/   # adapted to one speaker\n"
        "  emovox predict meeting.m4a --timeline-png meeting.png\n"
        "  emovox predict interview.mp3 --timeline --format srt -o interview.srt   # subtitles\n"
        "  emovox predict sessions/ --timeline --format elan -o annotations/      # one .eaf per file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="audio file, folder (recursive), glob pattern, or - for stdin"
    )
    add_model_choice(p)
    p.add_argument(
        "--backend",
        choices=("auto", "torch", "onnx"),
        default="auto",
        help="inference engine (default: onnx when the artifact has model.onnx)",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument(
        "--json",
        action="store_true",
        help="JSON output: a list of {file, model, model_version, start_s, end_s, label, confidence, "
        "scores, speech_s, reason, quality, warnings}, timelines with 'timeline'",
    )
    fmt.add_argument(
        "--csv",
        action="store_true",
        help="CSV output, the columns of 'emovox batch --csv': file, input_index, kind (file or "
        "segment), segment, start_s, end_s, label, confidence, speech_s, reason, flags "
        "(';'-joined), score_<label>..., model, model_version, error; one row per input, "
        "then one per segment of a timeline",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=None,
        metavar="K",
        help="scores shown per prediction (default: 3 in the table, all in JSON/CSV)",
    )
    p.add_argument(
        "--min-confidence",
        type=float,
        default=None,
        metavar="P",
        help="answer 'unknown' under this calibrated confidence (default: the model's threshold)",
    )
    p.add_argument(
        "--adapt",
        action="append",
        metavar="PATH",
        help="speaker adaptation: unlabelled recordings of the one speaker of all INPUTs (file, "
        "folder or glob; repeatable; at least 5 clips, about 20 recommended). The model then "
        "predicts with its speaker-adapted head (default model only)",
    )
    p.add_argument("--timeline", action="store_true", help="analyse every input as a timeline")
    p.add_argument(
        "--format",
        metavar="FORMAT",
        dest="export_format",
        help="with --timeline: write each timeline as srt (SubRip subtitles), vtt (WebVTT), audacity "
        "(Audacity label track, tab-separated) or elan (ELAN .eaf document) instead of the table; "
        "one cue per merged segment: label, confidence, reason. One input: stdout or -o FILE; "
        "several: -o DIR/ (one file per input, named after it)",
    )
    p.add_argument(
        "--auto-timeline-s",
        type=float,
        default=6.0,
        metavar="S",
        help="inputs longer than this are analysed as a timeline (default: 6)",
    )
    p.add_argument("--timeline-png", metavar="PATH", help="plot timelines to PATH (several: PATH-stem-<input>.png)")
    p.add_argument(
        "--window-s", type=float, default=None, help="timeline window in seconds (default: the model's clip, or 3 s)"
    )
    p.add_argument("--hop-s", type=float, default=None, help="timeline hop in seconds (default: half a window)")
    p.add_argument(
        "--vad", choices=("auto", "silero", "webrtc"), default="auto", help="voice activity detector for timelines"
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the output here (atomically); with --format and several inputs a folder (existing, or ending in /)",
    )
    p.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar (bars are drawn only when stderr is a terminal)"
    )
    p.add_argument("--threads", type=int, default=None, help="CPU threads of the model")
    p.set_defaults(func=handle)


# ---------------------------------------------------------------------- inputs
def expand_inputs(inputs: list[str]) -> Iterator[tuple[str, Any]]:
    """``(display name, source)`` per input: files, folder contents, glob matches, stdin.

    A missing file or a pattern matching nothing yields ``(name, ConfigError)``.
    """
    for item in inputs:
        if item == STDIN:
            yield "<stdin>", STDIN
        elif os.path.isdir(item):
            found = sorted(
                str(p) for p in Path(item).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
            )
            if not found:
                yield (
                    item,
                    ConfigError(
                        f"folder {item!r} holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS)[:6])}, ...)"
                    ),
                )
            for f in found:
                yield f, f
        elif any(c in item for c in "*?[") and not os.path.exists(item):
            matches = sorted(m for m in glob.glob(item, recursive=True) if os.path.isfile(m))
            if not matches:
                yield item, ConfigError(f"pattern {item!r} matches no files")
            for m in matches:
                yield m, m
        elif not os.path.exists(item):
            if os.path.islink(item):  # exists() follows links: a dangling or looping link is not "missing"
                yield (
                    item,
                    ConfigError(
                        f"{item!r} is a symbolic link that loops or points to nothing "
                        f"({os.readlink(item)!r}): fix or remove the link"
                    ),
                )
            else:
                yield item, ConfigError(f"no such file {item!r}")
        else:
            yield item, item


# ---------------------------------------------------------------------- output
class OutputError(ConfigError):
    """The output (``-o FILE``, ``--timeline-png``) could not be written: the whole run stops."""


def _output_error(path: str, error: OSError) -> OutputError:
    reason = error.strerror or str(error)
    if path == "<stdout>":
        return OutputError(f"cannot write standard output: {reason}; the output is incomplete")
    return OutputError(
        f"cannot write {path!r}: {reason}; free some space or choose another path "
        "(an existing file there is left as it was)"
    )


class _GuardedFile:
    """A text file whose write failures (disk full, file too large) become :class:`OutputError`.

    Without it an output failure surfaced inside the per-input handler as
    ``FILE: cannot read: File too large`` for the input being written, and at
    the final close as a traceback.
    """

    def __init__(self, fh: TextIO, path: str) -> None:
        self._fh, self._path = fh, path

    @contextmanager
    def _failures_as_output_errors(self) -> Iterator[None]:
        try:
            yield
        except BrokenPipeError:
            raise  # a reader such as `head` closed the pipe: emovox.cli.main ends quietly
        except OSError as error:
            raise _output_error(self._path, error) from None

    def write(self, text: str) -> int:
        with self._failures_as_output_errors():
            return self._fh.write(text)

    def flush(self) -> None:
        with self._failures_as_output_errors():
            self._fh.flush()

    def close(self) -> None:
        with self._failures_as_output_errors():
            self._fh.close()


class _AtomicOutput:
    """stdout, or a temporary file from :func:`emovox.fileio.atomic_output`, renamed onto ``path`` only when complete."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._writer: AbstractContextManager[Path] | None = None
        if path is None:
            self.fh = _GuardedFile(sys.stdout, "<stdout>")
            return
        writer = atomic_output(path)
        try:
            tmp = writer.__enter__()
        except OSError as error:
            raise _output_error(path, error) from None
        try:
            handle = open(tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed by commit/abort
        except OSError as error:
            writer.__exit__(type(error), error, error.__traceback__)  # removes the temporary file
            raise _output_error(path, error) from None
        self._writer = writer
        self.fh = _GuardedFile(handle, path)

    def commit(self) -> None:
        if self._writer is not None:
            assert self.path is not None  # a temporary file is made only for a path
            writer, self._writer = self._writer, None
            try:
                self.fh.close()
            except BaseException as error:
                writer.__exit__(type(error), error, error.__traceback__)
                raise
            try:
                writer.__exit__(None, None, None)
            except OSError as error:
                raise _output_error(self.path, error) from None
        else:
            self.fh.flush()

    def abort(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                self.fh.close()
            except OutputError:
                pass  # already failing; the temporary file goes either way
            stop = _Aborted()
            writer.__exit__(_Aborted, stop, None)  # removes the temporary file; `path` is left as it was


class _Aborted(Exception):
    """Thrown into :func:`~emovox.fileio.atomic_output` to drop an unfinished output."""


def _error_text(name: str, error: Exception) -> str:
    """An input's error without the input's name when the message starts with it (the output names it already)."""
    text = str(error)
    for prefix in (f"{name}: ", "<bytes>: "):  # stdin is decoded from bytes
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def _flags_text(flags) -> str:
    """Raised quality flags as a compact ``[narrowband, low_snr]`` (empty when none)."""
    return f"[{', '.join(flags)}]" if flags else ""


class _Writer:
    """Writes predictions, timelines and errors as a table, JSON or CSV (see the module docstring)."""

    TABLE_HEADER = f"{'file':40}  {'start_s':>8}  {'end_s':>8}  {'speech_s':>8}  {'label':10}  {'conf':>5}  scores\n"

    def __init__(
        self,
        fh: _GuardedFile,
        labels: tuple[str, ...],
        *,
        mode: str,
        top_k: int | None,
        model: tuple[str, str] = ("", ""),
    ) -> None:
        self.fh, self.labels, self.mode, self.top_k, self.model = fh, labels, mode, top_k, model
        self.first = True
        if mode == "csv":
            from emovox.inference.records import CsvRows

            self.csv = CsvRows(fh, labels)
        elif mode == "json":
            fh.write("[")
        else:
            fh.write(self.TABLE_HEADER)

    def _row(self, name: str, seg: str, p, *, flags: tuple[str, ...] | None = None, warnings: bool = True) -> None:
        flags = p.flags if flags is None else flags
        k = self.top_k or 3
        scores = " ".join(f"{lab}={v:.2f}" for lab, v in p.top_k(k)) or "-"
        notes = [scores]
        if p.reason and p.reason != p.label:  # no_speech says it already
            notes.append(f"({p.reason})")
        if flags:
            notes.append(_flags_text(flags))
        shown = name if len(name) <= 40 else "…" + name[-39:]
        if seg:
            shown = f"  └ {seg}"
        self.fh.write(
            f"{shown:40}  {p.start_s:8.2f}  {p.end_s:8.2f}  {p.speech_s:8.2f}  {p.label:10}  "
            f"{p.confidence:5.2f}  {' '.join(notes)}\n"
        )
        if warnings:
            for sentence in p.warnings:
                self.fh.write(f"    warning: {sentence}\n")

    def _json(self, obj: dict) -> None:
        self.fh.write(("\n" if self.first else ",\n") + json.dumps(obj, ensure_ascii=False))
        self.first = False

    def _head(self, name: str) -> dict:
        return {"file": name, "model": self.model[0], "model_version": self.model[1]}

    def prediction(self, name: str, p, *, index: int | None = None) -> None:
        if self.mode == "json":
            self._json({**self._head(name), **p.to_dict(top_k=self.top_k)})
        elif self.mode == "csv":
            from emovox.inference.records import prediction_row

            self.csv.write(prediction_row(p, labels=self.labels, file=name, input_index=index, model=self.model))
        else:
            self._row(name, "", p)

    def timeline(self, name: str, t, *, index: int | None = None) -> None:
        if self.mode == "json":
            self._json(
                {**self._head(name), **t.overall().to_dict(top_k=self.top_k), "timeline": t.to_dict(top_k=self.top_k)}
            )
            return
        if self.mode == "csv":  # CSV keeps every segment, after the recording's own row
            from emovox.inference.records import timeline_rows

            self.csv.write_all(timeline_rows(t, labels=self.labels, file=name, input_index=index, model=self.model))
            return
        self._row(name, "", t.overall())
        for i, seg in enumerate(t.merged()):  # the table shows what a reader follows: merged segments
            self._row(name, str(i), seg, flags=(), warnings=False)
        from emovox.inference.timeline import summary_text

        self.fh.write(f"  = {name}: {summary_text(t.summary)}\n")

    def error(self, name: str, error: Exception, *, index: int | None = None) -> None:
        if self.mode == "json":
            self._json({**self._head(name), "error": _error_text(name, error)})
        elif self.mode == "csv":
            from emovox.inference.records import error_row

            self.csv.write(
                error_row(
                    labels=self.labels, file=name, input_index=index, message=_error_text(name, error), model=self.model
                )
            )

    def close(self) -> None:
        if self.mode == "json":
            self.fh.write("\n]\n")


class _ExportWriter:
    """``--format``: each timeline as subtitles, labels or an ELAN document (see the module docstring).

    ``folder`` set: one file per input inside it; ``path`` set: the one input's
    file; neither: the text goes to ``fh`` (stdout). Files are written
    atomically once their timeline is complete, so a failed input leaves none.
    """

    def __init__(self, fmt: str, fh: _GuardedFile, *, path: str | None = None, folder: str | None = None) -> None:
        from emovox.export.timeline_formats import get_format

        self.format = get_format(fmt)
        self.fh, self.path, self.folder = fh, path, folder
        self._taken: set[str] = set()

    def _target(self, name: str) -> str | None:
        if self.folder is None:
            return self.path
        stem = "stdin" if name == "<stdin>" else Path(name).stem or "audio"
        candidate, n = stem, 1
        while candidate in self._taken:  # a/x.wav and b/x.wav: x.srt and x-2.srt
            n += 1
            candidate = f"{stem}-{n}"
        self._taken.add(candidate)
        return str(Path(self.folder) / f"{candidate}{self.format.extension}")

    def timeline(self, name: str, t, *, index: int | None = None) -> None:
        from emovox.export.timeline_formats import render_timeline
        from emovox.fileio import atomic_write_text

        target = self._target(name)
        media = None if name == "<stdin>" else os.path.abspath(name)
        text = render_timeline(t, self.format.name, title=Path(name).name, media=media, path=target)
        if target is None:
            self.fh.write(text)
            return
        try:
            atomic_write_text(target, text)
        except OSError as error:
            raise _output_error(target, error) from None

    def prediction(self, name: str, p, *, index: int | None = None) -> None:  # pragma: no cover
        raise ConfigError("--format needs --timeline")  # --format requires --timeline

    def error(self, name: str, error: Exception, *, index: int | None = None) -> None:
        pass  # the 'emovox: error:' line on stderr says it; no file is written for this input

    def close(self) -> None:
        pass


def _export_target(args: argparse.Namespace, n_inputs: int) -> tuple[str | None, str | None]:
    """``(file, folder)`` that ``--format`` writes to (both ``None``: stdout); usage errors raise ConfigError."""
    from emovox.export.timeline_formats import FORMATS, format_choices

    fmt = args.export_format
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is unknown: use {format_choices()}")
    if not args.timeline:
        raise ConfigError(f"--format {fmt} writes a timeline: add --timeline")
    for flag, given in (("--json", args.json), ("--csv", args.csv)):
        if given:
            raise ConfigError(f"--format {fmt} and {flag} are two outputs: choose one")
    out = args.output
    if out is not None and (os.path.isdir(out) or out.endswith(("/", os.sep))):
        return None, out
    if n_inputs > 1:
        where = f"-o {out} is a file" if out else "stdout would mix them"
        raise ConfigError(
            f"--format {fmt} writes one file per input and {n_inputs} inputs were given ({where}): "
            "name an output folder with -o DIR/"
        )
    return out, None


def _png_path(base: str, name: str, many: bool) -> str:
    if not many:
        return base
    b = Path(base)
    stem = Path(name).stem if name != "<stdin>" else "stdin"
    return str(b.with_name(f"{b.stem}-{stem}{b.suffix or '.png'}"))


# ---------------------------------------------------------------------- handler
def adapt_to_speaker(model, paths: list[str], *, quiet: bool = False) -> int:
    """``--adapt``: adapt ``model`` to the speaker of the recordings under ``paths`` (any error: exit 2).

    Says on stderr what it did, in one line (``-q``: nothing): how many clips
    and seconds of audio the adapted head rests on, as a warning under the
    recommended number of clips. On a terminal a status line shows while the
    clips are decoded and embedded (several seconds); the result or an error
    replaces it, so the output stays one line either way.
    """
    from emovox.inference.adaptation import RECOMMENDED_CLIPS

    sources = []
    for _name, source in expand_inputs(paths):
        if isinstance(source, Exception):
            raise ConfigError(f"--adapt: {source}")
        if source == STDIN:
            raise ConfigError("--adapt takes files, folders or globs, not '-' (stdin)")
        sources.append(source)
    status = not quiet and sys.stderr.isatty()
    if status:
        print(
            f"emovox: adapting to the speaker of {len(sources)} recording{'s' if len(sources) != 1 else ''} "
            "(decoding and embedding each clip)…",
            end="",
            file=sys.stderr,
            flush=True,
        )
    try:
        n = model.adapt(sources)
    finally:
        if status:
            print("\r\033[K", end="", file=sys.stderr, flush=True)  # erase the status line
    if quiet:
        return n
    done = f"adapted to the speaker from {n} clips ({model.adapted_audio_s:.1f} s of audio)"
    if n < RECOMMENDED_CLIPS:
        print(f"emovox: warning: {done}; about {RECOMMENDED_CLIPS} give reliable results", file=sys.stderr)
    else:
        print(f"emovox: {done}: predictions use the speaker-adapted head", file=sys.stderr)
    return n


def handle(args: argparse.Namespace) -> int:
    from emovox.inference import load_model

    if args.top_k is not None and args.top_k < 1:
        raise ConfigError(f"--top-k {args.top_k}: must be at least 1")
    if args.auto_timeline_s <= 0:
        raise ConfigError(f"--auto-timeline-s {args.auto_timeline_s}: must be positive")
    if sum(1 for i in args.inputs if i == STDIN) > 1:
        raise ConfigError("'-' (stdin) can be given only once")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads {args.threads}: must be at least 1")
    for flag, value in (("--window-s", args.window_s), ("--hop-s", args.hop_s)):
        if value is not None and value <= 0:
            raise ConfigError(f"{flag} {value}: must be a positive number of seconds")
    if args.window_s is not None and args.hop_s is not None and args.hop_s > args.window_s:
        raise ConfigError(f"--hop-s {args.hop_s} is longer than --window-s {args.window_s}: windows would leave gaps")
    items = list(expand_inputs(args.inputs))
    export_file = export_folder = None
    if args.export_format is not None:
        export_file, export_folder = _export_target(args, len(items))
    for flag, path in (("-o", None if args.export_format else args.output), ("--timeline-png", args.timeline_png)):
        if path and os.path.isdir(path):
            raise ConfigError(f"{flag} {path} is a folder: give a file path")
    from emovox.inference.predictor import FAST_MODEL

    model = load_model(
        FAST_MODEL if args.fast else args.model,
        backend=args.backend,
        min_confidence=args.min_confidence,
        num_threads=args.threads,
    )
    if args.adapt:
        adapt_to_speaker(model, args.adapt, quiet=args.quiet)
    mode = "json" if args.json else "csv" if args.csv else "table"
    writer: _ExportWriter | _Writer
    if args.export_format is not None:  # files are written per input; only stdout is kept open
        out = _AtomicOutput(None)
        writer = _ExportWriter(args.export_format, out.fh, path=export_file, folder=export_folder)
    else:
        out = _AtomicOutput(args.output)
        writer = _Writer(
            out.fh, model.labels, mode=mode, top_k=args.top_k, model=(model.model_name, model.model_version)
        )
    failed = 0
    n_timelines = sum(1 for _, s in items if not isinstance(s, Exception)) if args.timeline_png else 0

    from tqdm import tqdm

    from emovox.cli.progress import audio_progress, bars_wanted

    bars = bars_wanted(quiet=args.quiet)
    bar = tqdm(total=len(items), unit="file", file=sys.stderr, leave=False, disable=not bars or len(items) < 2)

    def fail(index: int, name: str, error: Exception) -> None:
        nonlocal failed
        failed += 1
        bar.clear()
        print(f"emovox: error: {name}: {_error_text(name, error)}", file=sys.stderr)
        writer.error(name, error, index=index)

    pending: list[tuple[int, str, Any]] = []  # short clips, scored in batches

    def flush() -> None:
        for (index, name, _), (_, result) in zip(pending, model.iter_predict([s for _, _, s in pending])):
            if isinstance(result, Exception):
                fail(index, name, result)
            else:
                writer.prediction(name, result, index=index)
            bar.update(1)
        pending.clear()

    try:
        for index, (name, source) in enumerate(items):
            bar.set_postfix_str(Path(name).name[-30:], refresh=False)
            try:
                if isinstance(source, Exception):
                    raise source
                if source == STDIN:
                    source = sys.stdin.buffer.read()
                if args.timeline:
                    long = True
                else:
                    from emovox.audio import audio_duration_s

                    long = audio_duration_s(source) > args.auto_timeline_s
                if not long:
                    pending.append((index, name, source))
                    if len(pending) >= model.batch_size:
                        flush()
                    continue
                flush()
                # a long recording: its own bar of audio seconds (or the files bar's postfix), on a terminal only
                with audio_progress(
                    Path(name).name, enabled=bars, files_bar=bar if not bar.disable else None
                ) as progress:
                    t = model.predict_timeline(
                        source, window_s=args.window_s, hop_s=args.hop_s, vad=args.vad, progress=progress
                    )
                writer.timeline(name, t, index=index)
                if args.timeline_png:
                    from emovox.inference.timeline import plot_timeline

                    png = _png_path(args.timeline_png, name, n_timelines > 1)
                    try:
                        plot_timeline(t, png, title=name)
                    except OSError as error:
                        raise _output_error(png, error) from None
            except OutputError:
                raise
            except EmovoxError as error:
                flush()
                fail(index, name, error)
            except OSError as error:
                flush()
                fail(index, name, ConfigError(f"cannot read: {error.strerror or error}"))
            bar.update(1)
        flush()
        writer.close()
        out.commit()
    except BaseException:
        out.abort()
        raise
    finally:
        bar.close()
    return 1 if failed else 0
