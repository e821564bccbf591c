"""Corpus exploration plots: class distribution, one waveform and spectrogram per emotion.

Behind ``emovox explore``. Writes PNGs and an ``index.md`` that links them.
matplotlib is imported here only (lazily).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emovox.errors import CorpusError
from emovox.fileio import atomic_write_bytes, atomic_write_text
from emovox.labels import EMOTIONS

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _save(fig: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    return atomic_write_bytes(path, buffer.getvalue())


def plot_class_distribution(counts: dict[str, int], path: str | Path, *, title: str) -> Path:
    """Bar chart of clips per class, each bar in its emotion's colour (:mod:`emovox.palette`)."""
    from emovox.palette import colour_of

    fig = _figure(max(4.0, 0.8 * len(counts) + 1.5), 3.5)
    ax = fig.subplots()
    names = list(counts)
    bars = ax.bar(names, [counts[n] for n in names], color=[colour_of(n) for n in names])
    ax.bar_label(bars, fontsize=8)
    ax.set_ylabel("clips")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    return _save(fig, Path(path))


def plot_waveform(y: np.ndarray, path: str | Path, *, sample_rate_hz: int, title: str) -> Path:
    """Amplitude over time of ``y`` ``(n,)``."""
    fig = _figure(7.0, 2.4)
    ax = fig.subplots()
    ax.plot(np.arange(len(y)) / sample_rate_hz, y, linewidth=0.5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude")
    ax.set_title(title)
    ax.set_xlim(0, max(len(y) / sample_rate_hz, 1e-3))
    return _save(fig, Path(path))


def plot_spectrogram(y: np.ndarray, path: str | Path, *, sample_rate_hz: int, title: str) -> Path:
    """Power spectrogram (dB) of ``y`` ``(n,)``, 25 ms windows, 10 ms hop."""
    fig = _figure(7.0, 3.0)
    ax = fig.subplots()
    n_fft = 512 if sample_rate_hz <= 24000 else 1024
    win = int(0.025 * sample_rate_hz)
    hop = int(0.010 * sample_rate_hz)
    pad = np.pad(np.asarray(y, dtype=np.float64), (0, max(0, win - len(y))))
    frames = np.lib.stride_tricks.sliding_window_view(pad, win)[::hop] * np.hanning(win)
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2
    db = 10 * np.log10(power.T + 1e-10)
    image = ax.imshow(
        db,
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=db.max() - 80,
        extent=(0, len(frames) * hop / sample_rate_hz, 0, sample_rate_hz / 2000),
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (kHz)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="dB")
    return _save(fig, Path(path))


def explore_records(
    records: Sequence,
    out_dir: str | Path,
    *,
    name: str = "corpus",
    sample_rate_hz: int = 16000,
    seed: int = 0,
    load: Callable[..., np.ndarray] | None = None,
) -> Path:
    """Write exploration plots of ``records`` into ``out_dir``; return ``index.md``.

    Parameters
    ----------
    records : sequence of emovox.corpora.Record
    out_dir : path-like
    name : str
        Title used in the plots and the index.
    sample_rate_hz : int
        Rate audio is loaded at for the plots.
    seed : int
        Which clip represents each emotion.
    load : callable, optional
        ``load(path, sample_rate_hz=...) -> (n,)``; defaults to ``emovox.audio.load_audio``.
    """
    if not records:
        raise CorpusError(f"{name}: no records to explore")
    if load is None:
        from emovox.audio import load_audio

        load = load_audio
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = Counter(r.emotion for r in records)
    ordered = {e: counts[e] for e in EMOTIONS if counts.get(e)}
    speakers = sorted({r.speaker_key for r in records})
    plot_class_distribution(
        ordered, out_dir / "class_distribution.png", title=f"{name}: {len(records)} clips, {len(speakers)} speakers"
    )
    rng = np.random.default_rng(seed)
    lines = [
        f"# {name}",
        "",
        f"{len(records)} clips, {len(speakers)} speakers, {len(ordered)} emotions.",
        "",
        "## Class distribution",
        "",
        "| emotion | clips |",
        "|---|---|",
    ]
    lines += [f"| {e} | {n} |" for e, n in ordered.items()]
    lines += ["", "![class distribution](class_distribution.png)", "", "## One example per emotion", ""]
    for emotion in ordered:
        pool = [r for r in records if r.emotion == emotion]
        record = pool[int(rng.integers(len(pool)))]
        y = np.asarray(load(record.path, sample_rate_hz=sample_rate_hz), dtype=np.float32)
        label = f"{emotion} ({Path(record.path).name}, speaker {record.speaker_key})"
        plot_waveform(y, out_dir / f"waveform_{emotion}.png", sample_rate_hz=sample_rate_hz, title=label)
        plot_spectrogram(y, out_dir / f"spectrogram_{emotion}.png", sample_rate_hz=sample_rate_hz, title=label)
        lines += [
            f"### {emotion}",
            "",
            f"`{record.path}` — {len(y) / sample_rate_hz:.2f} s",
            "",
            f"![waveform {emotion}](waveform_{emotion}.png)",
            f"![spectrogram {emotion}](spectrogram_{emotion}.png)",
            "",
        ]
    return atomic_write_text(out_dir / "index.md", "\n".join(lines) + "\n")
