"""Progress of long work on a terminal, by seconds of audio (``emovox predict`` on a long recording).

Bars are drawn only on a terminal: :func:`bars_wanted` is false when stderr
is a pipe or a file (logs get no bars) and with ``-q``. A bar is one line on
stderr, erased when its recording is done, so stdout (the table, JSON or
CSV) is never mixed with it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["bars_wanted", "audio_progress", "clock", "REDRAW_S"]

#: The files bar's postfix is redrawn at most this often (seconds), as tqdm redraws its own bars.
REDRAW_S = 0.1


def bars_wanted(*, quiet: bool, stream: TextIO | None = None) -> bool:
    """Whether to draw progress bars: not ``quiet`` and ``stream`` (default stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return not quiet and bool(isatty and isatty())


def clock(seconds: float) -> str:
    """Seconds as ``m:ss`` or ``h:mm:ss``."""
    s = int(round(max(0.0, seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@contextmanager
def audio_progress(name: str, *, enabled: bool, files_bar=None, stream: TextIO | None = None) -> Iterator:
    """A ``progress(done_s, total_s)`` callback for one recording (``None`` when not ``enabled``).

    Alone, it draws a one-line bar of the recording's audio seconds
    (``meeting.wav: 27:00/1:00:00 of audio  45%|████▌     | [00:40<00:49]``);
    with ``files_bar`` (the bar counting several inputs) it shows the same
    figures in that bar's postfix instead, so there is still one line. The
    bar is erased when the block ends, whatever way it ends.
    """
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    stream = sys.stderr if stream is None else stream
    short = name if len(name) <= 30 else "…" + name[-29:]
    bar = None
    drawn = [0.0]  # when the files bar was last redrawn

    def progress(done_s: float, total_s: float | None) -> None:
        nonlocal bar
        last = total_s is not None and done_s >= total_s  # drawn whatever the rate limit: the bar ends full
        if files_bar is not None:
            of = f"/{clock(total_s)} ({100 * done_s / total_s:.0f} %)" if total_s else ""
            files_bar.set_postfix_str(f"{short} {clock(done_s)}{of} of audio", refresh=False)
            now = time.monotonic()
            if last or now - drawn[0] >= REDRAW_S:
                drawn[0] = now
                files_bar.refresh()
            return
        figures = f"{clock(done_s)}/{clock(total_s)}" if total_s else clock(done_s)
        if bar is None:
            layout = (
                "{desc} of audio {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]"
                if total_s
                else "{desc} of audio [{elapsed}]"
            )
            bar = tqdm(
                total=total_s,
                desc=f"{short}: {figures}",
                file=stream,
                leave=False,
                dynamic_ncols=True,
                bar_format=layout,
            )
        if total_s and bar.total != total_s:  # the decoded length replaces the header's at the end
            bar.total = total_s
        bar.set_description_str(f"{short}: {figures}", refresh=False)
        bar.update(done_s - bar.n)
        if last:
            bar.refresh()

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()
        elif files_bar is not None:
            files_bar.set_postfix_str(short, refresh=False)
