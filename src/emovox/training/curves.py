"""Per-epoch logs (CSV + JSON) and accuracy/loss curves (PNG)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from emovox.training.checkpoint import atomic_write_bytes, atomic_write_text

#: Columns of ``log.csv``, in order; records may carry more keys (kept in JSON).
LOG_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_uar", "lr", "best", "time_s")


def write_logs(history: Sequence[dict], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``log.json`` and ``log.csv`` (both atomically) into ``out_dir``."""
    out_dir = Path(out_dir)
    json_path = atomic_write_text(out_dir / "log.json", json.dumps(list(history), indent=1) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(LOG_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for record in history:
        writer.writerow(record)
    csv_path = atomic_write_text(out_dir / "log.csv", buffer.getvalue())
    return json_path, csv_path


def plot_curves(history: Sequence[dict], path: str | Path, *, title: str | None = None) -> Path:
    """Plot loss (left) and accuracy/UAR (right) per epoch into a PNG.

    Parameters
    ----------
    history : sequence of dict
        Records with ``epoch``, ``train_loss``, ``val_loss``, ``train_accuracy``,
        ``val_accuracy`` and ``val_uar``; the best epoch (``best`` true) is marked.
    path : path-like
        Destination ``.png`` (written atomically).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(9, 3.6), dpi=100)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for key, style in (("train_loss", "-"), ("val_loss", "--")):
        ax_loss.plot(epochs, [r.get(key) for r in history], style, marker=".", label=key.replace("_", " "))
    for key, style in (("train_accuracy", "-"), ("val_accuracy", "--"), ("val_uar", ":")):
        ax_acc.plot(epochs, [r.get(key) for r in history], style, marker=".", label=key.replace("_", " "))
    best = [r["epoch"] for r in history if r.get("best")]
    if best:
        for ax in (ax_loss, ax_acc):
            ax.axvline(best[-1], color="grey", linewidth=0.8, alpha=0.6)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("fraction")
    ax_acc.set_ylim(0, 1)
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return atomic_write_bytes(path, buffer.getvalue())
