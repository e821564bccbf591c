"""Every trainer goes through the one training loop, :func:`emovox.training.engine.train_model` (issue 17).

The flagship's cached-log-mel recipe, a Whisper head and the ``default``
recipe's closed-form head each report their epochs to the engine's
callbacks and learn a small separable problem; a flagship run killed after an
epoch and resumed ends where an uninterrupted run ends.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.training.callbacks import Callback


class _Epochs(Callback):
    """Records what the engine reports."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.started: list[int] = []
        self.records: list[dict] = []
        self.ended = 0
        self.stop_after = stop_after

    def on_train_start(self, *, start_epoch: int, epochs: int) -> None:
        self.started.append(start_epoch)

    def on_epoch_end(self, epoch: int, record: dict) -> None:
        self.records.append(dict(record))

    def on_checkpoint(self, epoch: int, path) -> None:
        if self.stop_after is not None and epoch + 1 >= self.stop_after:
            raise KeyboardInterrupt  # a kill right after the checkpoint is on disk

    def on_train_end(self, result) -> None:
        self.ended += 1


def _logmels(n: int = 36, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Three classes, each a band of mel bins that pulses every 8 frames; clips of different lengths.

    (The flagship normalises each band over time, so a steady brighter band would vanish.)
    """
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(n):
        c = i % 3
        frames = int(rng.integers(50, 90))
        x = rng.normal(0.0, 1.0, size=(64, frames)).astype(np.float32)
        x[c * 20 : c * 20 + 16] += 3.0 * np.sin(2 * np.pi * np.arange(frames) / 8.0 + rng.uniform(0, 6.3))
        xs.append(x)
        ys.append(c)
    return xs, np.array(ys)


def _small_flagship(**changes):
    from emovox.recipes.flagship import FlagshipRecipe

    settings = {"epochs": 8, "batch_size": 6, "crop_frames": 40, "lr": 3e-3, "model": {"dropout": 0.0}, "seed": 1}
    settings.update(changes)
    return FlagshipRecipe(**settings)


def test_flagship_recipe_trains_through_the_engine_and_learns():
    from emovox.recipes.flagship import predict_logits, train_flagship

    xs, ys = _logmels()
    seen = _Epochs()
    lines: list[str] = []
    model = train_flagship(xs, ys, 3, _small_flagship(), callbacks=[seen], log=lines.append)
    assert len(seen.records) == 8 and seen.ended == 1
    assert [r["epoch"] for r in seen.records] == list(range(1, 9))
    assert len(lines) == 8 and lines[0].startswith("epoch 1/8 loss ")
    # the one-cycle schedule, stepped per batch: near the peak after the first epoch's warm-up, then annealed
    lrs = [r["lr"] for r in seen.records]
    assert 0.9 * 3e-3 < lrs[0] <= 3e-3 and lrs[-1] < 0.01 * lrs[0]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    assert seen.records[-1]["train_loss"] < seen.records[0]["train_loss"]
    test_x, test_y = _logmels(seed=7)
    accuracy = float(np.mean(predict_logits(model, test_x).argmax(1) == test_y))
    assert accuracy >= 0.9


def test_flagship_run_killed_and_resumed_ends_like_an_uninterrupted_run(tmp_path):
    import torch

    from emovox.recipes.flagship import train_flagship

    xs, ys = _logmels(n=18)
    recipe = _small_flagship(epochs=3, model={})  # dropout on: its random state must be checkpointed too
    straight = train_flagship(xs, ys, 3, recipe, out_dir=tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        train_flagship(xs, ys, 3, recipe, out_dir=tmp_path / "killed", callbacks=[_Epochs(stop_after=1)])
    seen = _Epochs()
    resumed = train_flagship(xs, ys, 3, recipe, out_dir=tmp_path / "killed", resume=True, callbacks=[seen])
    assert seen.started == [1] and len(seen.records) == 2
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_whisper_head_trains_through_the_engine_and_learns(monkeypatch):
    from emovox.training import engine, whisper_fit

    calls: list[int] = []
    real = engine.train_model

    def counting(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(len(result.history))
        return result

    monkeypatch.setattr(engine, "train_model", counting)
    rng = np.random.default_rng(0)
    n, classes = 120, 3
    y = np.arange(n) % classes
    pooled = rng.normal(0.0, 1.0, size=(n, 3, 2, 8)).astype(np.float32)
    pooled[np.arange(n), :, 0, y] += 3.0
    speakers = [f"s{i % 4}" for i in range(n)]
    fit = whisper_fit.fit_pooled_head(
        pooled, y, speakers, n_classes=classes, kind="weighted", hidden=16, epoch_grid=(10, 30), lr=1e-2
    )
    assert calls == [30, 30, 30, 30, fit.epochs]  # 4 inner folds to the largest count, then the final head
    assert fit.inner_uar > 0.8
    test = rng.normal(0.0, 1.0, size=(30, 3, 2, 8)).astype(np.float32)
    test_y = np.arange(30) % classes
    test[np.arange(30), :, 0, test_y] += 3.0
    assert np.mean(fit.logits(test).argmax(1) == test_y) > 0.8


def _tone_corpus(folder: Path) -> Path:
    """Three 'emotions' as three tone frequencies, spoken by three 'speakers' (pitch offsets)."""
    rows = []
    for speaker, offset in (("a", 1.0), ("b", 1.06), ("c", 0.94)):
        for label, f0 in (("angry", 1800.0), ("sad", 220.0), ("neutral", 700.0)):
            for k in range(2):
                t = np.arange(16000) / 16000.0
                wave = 0.3 * np.sin(2 * np.pi * f0 * offset * (1 + 0.02 * k) * t)
                path = folder / f"{speaker}_{label}_{k}.wav"
                sf.write(path, wave.astype(np.float32), 16000)
                rows.append({"path": str(path), "label": label, "speaker": speaker})
    manifest = folder / "tones.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def test_default_recipe_is_a_closed_form_trainer_the_engine_runs(tmp_path):
    from emovox.corpora import load_corpus
    from emovox.training.recipes import get_recipe
    from emovox.training.run import run_recipe

    records = load_corpus("csv", _tone_corpus(tmp_path))
    seen = _Epochs()
    summary = run_recipe(
        get_recipe("default"), records, out_dir=tmp_path / "run", settings={"progress": False}, callbacks=[seen]
    )
    assert seen.started == [0] and seen.ended == 1
    assert len(seen.records) == 1 and seen.records[0]["closed_form"] is True
    assert summary["heldout"]["uar"] > 0.8  # each speaker's tones scored by a head fitted without them
    assert (tmp_path / "run" / "model" / "config.json").is_file()
