"""Long recordings as an emotion timeline: windows over speech, smoothing, plot.

The predictor streams a recording through voice activity detection
(:mod:`emovox.audio.vad`); each speech segment is cut into windows here
(:func:`window_starts`), each window is classified, neighbouring calibrated
probabilities are averaged (:func:`smooth_probabilities`) and the result is a
:class:`~emovox.inference.results.Timeline`. :func:`plot_timeline` draws it and
:func:`summary_text` says in one line what its summary found (the wording the
plot title and ``emovox predict`` share).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emovox.errors import ConfigError
from emovox.fileio import atomic_write_png
from emovox.inference.results import NO_SPEECH, NON_ANSWERS, UNKNOWN, Timeline

__all__ = ["window_starts", "window_spans", "smooth_probabilities", "SmoothingStream", "plot_timeline", "summary_text"]


def window_starts(n_samples: int, *, window: int, hop: int) -> np.ndarray:
    """Start samples of windows of ``window`` samples every ``hop`` covering ``n_samples``.

    A segment no longer than one window gets one window (start 0; the caller
    pads it). Otherwise windows start every ``hop`` and the last one is moved
    back to end exactly at the end of the segment.
    """
    if hop <= 0 or window <= 0 or hop > window:
        raise ConfigError(f"hop={hop} must lie in (0, window={window}] samples")
    if n_samples <= window:
        return np.zeros(1, dtype=np.int64)
    k = int(np.ceil((n_samples - window) / hop)) + 1
    starts = np.arange(k, dtype=np.int64) * hop
    starts[-1] = n_samples - window
    return np.unique(starts)


def window_spans(starts: np.ndarray, *, window: int, n_samples: int) -> list[tuple[int, int]]:
    """The part of the segment each window reports on: a partition of ``[0, n_samples)``.

    Boundaries sit halfway between the centres of consecutive windows; the
    first span starts at 0 and the last ends at ``n_samples``.
    """
    centres = starts + min(window, n_samples) / 2.0
    bounds = [0] + [int(round((a + b) / 2)) for a, b in zip(centres[:-1], centres[1:])] + [n_samples]
    return list(zip(bounds[:-1], bounds[1:]))


def smooth_probabilities(
    probs: np.ndarray, spans_s: Sequence[tuple[float, float]], *, size: int = 3, max_gap_s: float = 1.0
) -> np.ndarray:
    """Average each row of ``probs`` with its neighbours.

    Parameters
    ----------
    probs : np.ndarray [shape=(n, n_classes)]
        Calibrated probabilities in time order.
    spans_s : sequence of (start_s, end_s)
        Time span of each row.
    size : int
        Odd window of rows averaged (1 = no smoothing).
    max_gap_s : float
        Rows separated by a longer pause are not neighbours.
    """
    if size < 1 or size % 2 == 0:
        raise ConfigError(f"smoothing size={size!r} must be a positive odd number")
    p = np.asarray(probs, dtype=np.float64)
    if size == 1 or len(p) < 2:
        return p.copy()
    # group ids: a new group after each gap longer than max_gap_s
    gaps = np.array([b[0] - a[1] for a, b in zip(spans_s[:-1], spans_s[1:])])
    group = np.concatenate([[0], np.cumsum(gaps > max_gap_s)])
    half = size // 2
    out = np.empty_like(p)
    for i in range(len(p)):
        lo, hi = max(0, i - half), min(len(p), i + half + 1)
        idx = [j for j in range(lo, hi) if group[j] == group[i]]
        out[i] = p[idx].mean(axis=0)
    return out


class SmoothingStream:
    """:func:`smooth_probabilities` row by row, as windows are classified.

    Rows come in time order through :meth:`add`; :meth:`pop_final` returns
    the rows whose smoothed value can no longer change, i.e. those followed by
    ``size // 2`` rows (all of them once ``end=True``). Every row popped equals
    the same row of :func:`smooth_probabilities` over all the rows, to the
    last bit: the same neighbours are averaged in the same order (groups split
    by pauses are decided by the gaps between rows, which never change once
    the rows are known).

    Parameters
    ----------
    size : int
        Odd window of rows averaged (1 = no smoothing).
    max_gap_s : float
        Rows separated by a longer pause are not neighbours.
    """

    def __init__(self, *, size: int = 3, max_gap_s: float = 1.0) -> None:
        if size < 1 or size % 2 == 0:
            raise ConfigError(f"smoothing size={size!r} must be a positive odd number")
        self.size, self.max_gap_s = int(size), float(max_gap_s)
        self._rows: list[np.ndarray] = []
        self._spans: list[tuple[float, float]] = []
        self.n_final = 0

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, probs: np.ndarray, spans_s: Sequence[tuple[float, float]]) -> None:
        """Append rows ``(n, n_classes)`` with their time spans (in time order, after the earlier rows)."""
        probs = np.asarray(probs)
        if len(probs) != len(spans_s):
            raise ConfigError(f"{len(probs)} rows of probabilities for {len(spans_s)} spans")
        self._rows.extend(probs)
        self._spans.extend(spans_s)

    def pop_final(self, *, end: bool = False, limit: int | None = None) -> list[tuple[int, np.ndarray]]:
        """``(row index, smoothed row)`` of the rows that became final since the last call, in order.

        ``end`` says no row follows; ``limit`` holds back rows from that index on.
        """
        half = self.size // 2
        n = len(self._rows)
        upto = n if end else n - half
        if limit is not None:
            upto = min(upto, limit)
        if upto <= self.n_final:
            return []
        lo, hi = max(0, self.n_final - half), min(n, upto + half)
        block = smooth_probabilities(
            np.stack(self._rows[lo:hi]), self._spans[lo:hi], size=self.size, max_gap_s=self.max_gap_s
        )
        out = [(i, block[i - lo]) for i in range(self.n_final, upto)]
        self.n_final = upto
        return out


def summary_text(summary: dict) -> str:
    """One line describing a timeline's :attr:`~emovox.inference.results.Timeline.summary` by its shares.

    An emotion: ``"angry (62% of confident speech; sad 30%, happy 8%); unknown 12% of speech;
    no speech 35% of 42.0 s"``. ``mixed``, ``unknown``: the label and the summary's
    ``detail`` in brackets, then the same shares. No speech at all:
    ``"no_speech (no speech was found in 42.0 s)"``.
    """
    label, duration_s = summary["label"], float(summary["duration_s"])
    if label == NO_SPEECH:
        return f"{NO_SPEECH} ({summary['detail']} in {duration_s:.1f} s)"
    shares = summary.get("emotion_share") or {}
    if label in NON_ANSWERS:
        head = f"{label} ({summary['detail']})"
    else:
        others = ", ".join(f"{k} {v:.0%}" for k, v in shares.items() if k != label)
        head = f"{label} ({shares.get(label, 1.0):.0%} of confident speech{'; ' + others if others else ''})"
    parts = [head]
    if label != UNKNOWN:
        parts.append(f"unknown {summary['unknown_share']:.0%} of speech")
    parts.append(f"no speech {summary['no_speech_share']:.0%} of {duration_s:.1f} s")
    return "; ".join(parts)


def plot_timeline(timeline: Timeline, path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Draw ``timeline`` as a PNG (atomic write): stacked probabilities and labels over time.

    Top panel: each segment's class probabilities stacked over its span, the
    rejection threshold dashed. Bottom: the label of each merged segment
    (:meth:`Timeline.merged`); stretches without speech (and segments the
    speech gate called ``no_speech``) are left blank. Colours are
    :mod:`emovox.palette`'s, the web page's (``unknown`` light grey; no emotion
    is grey). The bottom title is :func:`summary_text` of the summary.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from emovox.palette import palette_for, rgb

    labels = list(timeline.labels)
    colours = {k: rgb(c) for k, c in palette_for(labels).items() if k != NO_SPEECH}
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 4.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for seg in timeline.segments:
        if seg.label == NO_SPEECH or not seg.scores:
            continue
        bottom = 0.0
        for k in labels:
            v = float(seg.scores.get(k, 0.0))
            ax1.bar(seg.start_s, v, width=seg.duration_s, bottom=bottom, align="edge", color=colours[k], linewidth=0)
            bottom += v
    for seg in timeline.merged():
        if seg.label in colours:  # no_speech: blank, like the silences
            ax2.barh(0, seg.duration_s, left=seg.start_s, color=colours[seg.label], height=0.8)
    ax1.axhline(timeline.threshold, color="black", lw=0.8, ls="--")
    ax1.set_ylim(0, 1)
    ax1.set_ylabel("probability")
    ax1.set_xlim(0, max(timeline.duration_s, 1e-3))
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[k]) for k in labels + [UNKNOWN]]
    ax1.legend(
        handles,
        labels + [UNKNOWN],
        ncol=min(9, len(labels) + 1),
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, 1.25),
        frameon=False,
    )
    ax2.set_yticks([])
    ax2.set_xlabel("time (s)")
    ax2.set_title(summary_text(timeline.summary), fontsize=9)
    if title:
        fig.suptitle(title, y=1.02, fontsize=10)
    fig.tight_layout()
    try:
        return atomic_write_png(path, fig, dpi=110)
    finally:
        plt.close(fig)
