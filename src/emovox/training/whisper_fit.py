"""Fit the Whisper heads: choose and train them on pooled encoder statistics by inner speaker CV.

The heads themselves (modules, fitted-head records, their loading) are in the
models layer: :class:`~emovox.models.whisper_classifier.HeadFit` and
:class:`~emovox.models.whisper_classifier.WhisperEmotionClassifier` (the linear
probe), :class:`~emovox.models.whisper_heads.PooledHead`,
:class:`~emovox.models.whisper_heads.PooledHeadFit` and
:class:`~emovox.models.whisper_heads.WhisperHeadClassifier`. What is here
*chooses* and *trains* them, so it sits above evaluation (the inner
speaker-disjoint k-fold and its UAR) and uses the one training loop:

- :func:`fit_linear_head`: multinomial logistic regression on the standardised
  statistics of a layer set; the layer set and ``C`` are chosen by an inner
  speaker-disjoint k-fold on the training speakers only, then the head is
  refitted on every row (out-of-fold logits of the chosen pair kept for
  calibration);
- :func:`fit_pooled_head`: a ``weighted`` / ``mlp`` / ``linear``
  :class:`~emovox.models.whisper_heads.PooledHead` trained with AdamW and
  class-balanced cross-entropy through :func:`emovox.training.engine.train_model`;
  the number of epochs is chosen by an inner speaker-disjoint k-fold (one run
  per inner fold, scored at every candidate epoch count), which also yields the
  out-of-fold logits used for calibration.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import TypedDict

import numpy as np
import torch

from emovox.errors import ConfigError
from emovox.models.whisper_classifier import C_GRID, HeadFit, fit_standardised_logistic, flatten_layers
from emovox.models.whisper_heads import EPOCH_GRID, PooledHead, PooledHeadFit
from emovox.training.callbacks import Callback
from emovox.training.config import TrainConfig
from emovox.training.data import ArrayDataset

__all__ = ["fit_linear_head", "fit_pooled_head"]


def _check_rows(pooled: np.ndarray, y: np.ndarray, speakers: Sequence[str]) -> None:
    """One-line errors for rows a head cannot be chosen on: shapes that disagree, fewer than 2 speakers."""
    if pooled.ndim != 4 or len(pooled) != len(y) or len(speakers) != len(y):
        raise ConfigError(f"pooled features {pooled.shape}, labels {y.shape} and {len(speakers)} speakers disagree")
    if len(set(speakers)) < 2:
        raise ConfigError(
            f"the head is chosen by a speaker-disjoint inner CV, which needs at least 2 training "
            f"speakers (got {len(set(speakers))}); give each clip its speaker (e.g. a 'speaker' column)"
        )


def fit_linear_head(
    pooled: np.ndarray,
    y: np.ndarray,
    speakers: Sequence[str],
    *,
    n_classes: int,
    layer_sets: Sequence[Sequence[int]] | None = None,
    Cs: Sequence[float] = C_GRID,
    inner_folds: int = 4,
    seed: int = 0,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
    augmented: Sequence[np.ndarray] = (),
) -> HeadFit:
    """Choose (layer set, ``C``) by inner speaker k-fold on these rows, then fit on all of them.

    Parameters
    ----------
    pooled : np.ndarray [shape=(n, n_states, 2, d_model)]
        :func:`~emovox.models.whisper_pooling.pool_hidden_states` of the training clips.
    y : np.ndarray [shape=(n,)]
        Class ids in ``0..n_classes - 1``.
    speakers : sequence of str
        Speaker of each row; inner folds never split a speaker.
    layer_sets : sequence of sequences of int, optional
        Candidates; default: each hidden state alone, and all of them.
    Cs : sequence of float
        Candidate inverse regularisation strengths.
    extra : (pooled, y), optional
        Rows from other corpora (already mapped to these classes) added to every
        training set, inner ones included; inner validation stays on ``pooled``'s
        speakers, so the choice is made for the target corpus.
    augmented : sequence of np.ndarray [shape=(n, n_states, 2, d_model)]
        Augmented copies aligned with ``pooled``'s rows: a row's copies join a
        training set exactly when the row does (never an inner validation set).

    Returns
    -------
    HeadFit, with the inner mean UAR and out-of-fold logits of the chosen pair.
    """
    from emovox.evaluation import compute_metrics, speaker_kfold

    pooled, y = np.asarray(pooled), np.asarray(y)
    _check_rows(pooled, y, speakers)
    n_states = pooled.shape[1]
    extra_x, extra_y = (np.zeros((0, *pooled.shape[1:])), np.zeros(0, np.int64)) if extra is None else extra
    candidates = [tuple(s) for s in (layer_sets or [*([i] for i in range(n_states)), range(n_states)])]
    inner = speaker_kfold(list(speakers), k=min(inner_folds, len(set(speakers))), seed=seed, labels=y)
    best: tuple = (candidates[0], float(Cs[0]), None, None)
    best_uar = -1.0
    for layers in candidates:
        x, xe = flatten_layers(pooled, layers), flatten_layers(extra_x, layers)
        xa = [flatten_layers(a, layers) for a in augmented]
        for C in Cs:
            oof, uars = np.zeros((len(y), n_classes)), []
            for split in inner:
                tr = split.train_idx
                mean, scale, coef, intercept = fit_standardised_logistic(
                    np.concatenate([x[tr], *(a[tr] for a in xa), xe]),
                    np.concatenate([y[tr]] * (1 + len(xa)) + [extra_y]),
                    C,
                    n_classes,
                )
                oof[split.test_idx] = (x[split.test_idx] - mean) / scale @ coef.T + intercept
                uars.append(
                    compute_metrics(
                        y[split.test_idx],
                        oof[split.test_idx].argmax(axis=1),
                        classes=[str(k) for k in range(n_classes)],
                    )["uar"]
                )
            if np.mean(uars) > best_uar:
                best_uar, best = float(np.mean(uars)), (layers, float(C), float(np.mean(uars)), oof)
    layers, C, inner_uar, oof_logits = best
    rows = [flatten_layers(a, layers) for a in (pooled, *augmented, extra_x)]
    mean, scale, coef, intercept = fit_standardised_logistic(
        np.concatenate(rows), np.concatenate([y] * (1 + len(augmented)) + [extra_y]), C, n_classes
    )
    return HeadFit(
        layers=tuple(layers),
        C=C,
        mean=mean.astype(np.float32),
        scale=scale.astype(np.float32),
        coef=coef.astype(np.float32),
        intercept=intercept.astype(np.float32),
        inner_uar=inner_uar,
        oof_logits=oof_logits,
    )


class _HeadSettings(TypedDict):
    """:class:`PooledHead` keyword settings shared by every head :func:`fit_pooled_head` trains."""

    kind: str
    hidden: int
    dropout: float


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    return mean.astype(np.float32), scale.astype(np.float32)


class _ValidationLogits(Callback):
    """Engine callback: the head's logits of ``val`` after each epoch count in ``epochs``."""

    def __init__(self, head: PooledHead, val: np.ndarray, epochs: Sequence[int]) -> None:
        self.head = head
        self.val = torch.from_numpy(np.ascontiguousarray(val, np.float32))
        self.epochs = set(epochs)
        self.logits: dict[int, np.ndarray] = {}

    def on_epoch_end(self, epoch: int, record: dict) -> None:
        if epoch + 1 in self.epochs:
            was = self.head.training
            self.head.eval()
            with torch.inference_mode():
                self.logits[epoch + 1] = self.head(self.val).numpy()
            self.head.train(was)


def _train(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    settings: dict,
    *,
    epochs: Sequence[int],
    seed: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    val: np.ndarray | None = None,
) -> tuple[PooledHead, dict]:
    """Train on rows ``x (n, L, 2, d)`` through the engine; the head after ``max(epochs)`` and validation logits per epoch count.

    Engine options: AdamW, class-balanced cross-entropy, ``cosine_steps``
    (linear warm-up over 10 % of the steps, cosine decay to 0), one
    ``rng.permutation`` per epoch split into near-equal batches, no
    validation-driven selection (the last weights).
    """
    from emovox.training.engine import train_model  # looked up per call: tests count the engine's runs

    torch.manual_seed(seed)
    head = PooledHead(x.shape[1], x.shape[3], n_classes, **settings)
    mean, scale = _standardiser(x)
    head.feature_mean.copy_(torch.from_numpy(mean))
    head.feature_scale.copy_(torch.from_numpy(scale))
    config = TrainConfig(
        epochs=max(epochs),
        batch_size=batch_size,
        optimizer="adamw",
        lr=lr,
        weight_decay=weight_decay,
        class_weights="balanced",
        scheduler="cosine_steps",
        warmup_fraction=0.1,
        early_stop_patience=None,
        seed=seed,
        threads=torch.get_num_threads(),
        shuffle="numpy",
        last_batch="spread",
        progress=False,
    )
    watch = None if val is None else _ValidationLogits(head, val, epochs)
    with tempfile.TemporaryDirectory(prefix="emovox-head-") as scratch:
        train_model(
            head,
            ArrayDataset(np.ascontiguousarray(x, np.float32), y),
            None,
            config,
            out_dir=scratch,
            n_classes=n_classes,
            callbacks=[] if watch is None else [watch],
            plot=False,
        )
    return head.eval(), {} if watch is None else watch.logits


def fit_pooled_head(
    pooled: np.ndarray,
    y: np.ndarray,
    speakers: Sequence[str],
    *,
    n_classes: int,
    kind: str = "weighted",
    layers: Sequence[int] | None = None,
    hidden: int = 256,
    dropout: float = 0.3,
    n_members: int = 1,
    epoch_grid: Sequence[int] = EPOCH_GRID,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    batch_size: int = 64,
    inner_folds: int = 4,
    seed: int = 0,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
    augmented: Sequence[np.ndarray] = (),
) -> PooledHeadFit:
    """Choose the epoch count by inner speaker k-fold on these rows, then train on all of them.

    Parameters
    ----------
    pooled : np.ndarray [shape=(n, n_states, 2, d_model)]
        :func:`~emovox.models.whisper_pooling.pool_hidden_states` of the training clips.
    y : np.ndarray [shape=(n,)]
        Class ids in ``0..n_classes - 1``.
    speakers : sequence of str
        Speaker of each row; inner folds never split a speaker.
    kind, hidden, dropout, n_members : head settings (see :class:`PooledHead`).
    layers : sequence of int, optional
        Hidden states read by the head (default: all).
    epoch_grid : sequence of int
        Candidate epoch counts; each inner fold trains once to the largest and
        is scored at each.
    extra : (pooled, y), optional
        Rows of other corpora (mapped to these classes) added to every training
        set, inner ones included; inner validation stays on ``pooled``'s speakers.
    augmented : sequence of np.ndarray [shape=(n, n_states, 2, d_model)]
        Augmented copies aligned with ``pooled``: a copy trains exactly when its row does.

    Returns
    -------
    PooledHeadFit
        The final head (trained on every row with the chosen epoch count; an
        ensemble of ``n_members`` heads), the inner mean UAR per epoch count
        and the chosen count's out-of-fold logits (single-member heads).
    """
    from emovox.evaluation import compute_metrics, speaker_kfold

    pooled, y = np.asarray(pooled), np.asarray(y, dtype=np.int64)
    _check_rows(pooled, y, speakers)
    layers = tuple(range(pooled.shape[1])) if layers is None else tuple(int(i) for i in layers)
    epoch_grid = tuple(sorted({int(e) for e in epoch_grid}))
    settings: _HeadSettings = {"kind": kind, "hidden": int(hidden), "dropout": float(dropout)}
    x = pooled[:, list(layers)]
    xa = [np.asarray(a)[:, list(layers)] for a in augmented]
    xe = np.zeros((0, *x.shape[1:]), np.float32) if extra is None else np.asarray(extra[0])[:, list(layers)]
    ye = np.zeros(0, np.int64) if extra is None else np.asarray(extra[1], dtype=np.int64)
    classes = [str(c) for c in range(n_classes)]
    inner = speaker_kfold(list(speakers), k=min(inner_folds, len(set(speakers))), seed=seed, labels=y)
    oof = {e: np.zeros((len(y), n_classes), np.float32) for e in epoch_grid}
    uars: dict[int, list[float]] = {e: [] for e in epoch_grid}
    for f, split in enumerate(inner):
        tr, te = split.train_idx, split.test_idx
        rows = np.concatenate([x[tr], *(a[tr] for a in xa), xe])
        labels = np.concatenate([y[tr]] * (1 + len(xa)) + [ye])
        _, val = _train(
            rows,
            labels,
            n_classes,
            {**settings, "n_members": 1},
            epochs=epoch_grid,
            seed=seed + f,
            val=x[te],
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
        )
        for e in epoch_grid:
            oof[e][te] = val[e]
            uars[e].append(compute_metrics(y[te], val[e].argmax(1), classes=classes)["uar"])
    by_epochs = {e: float(np.mean(u)) for e, u in uars.items()}
    best = max(epoch_grid, key=lambda e: (by_epochs[e], -e))
    rows = np.concatenate([x, *xa, xe])
    labels = np.concatenate([y] * (1 + len(xa)) + [ye])
    members = []
    for m in range(n_members):
        head, _ = _train(
            rows,
            labels,
            n_classes,
            {**settings, "n_members": 1},
            epochs=(best,),
            seed=seed + 1000 + m,
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
        )
        members.append(head)
    final = PooledHead(len(layers), x.shape[3], n_classes, **settings, n_members=n_members)
    final.feature_mean.copy_(members[0].feature_mean)
    final.feature_scale.copy_(members[0].feature_scale)
    for target, source in zip(final.members, members):
        target.load_state_dict(source.members[0].state_dict())
    state = {k: v.detach().clone() for k, v in final.state_dict().items()}
    return PooledHeadFit(
        layers=layers,
        n_classes=n_classes,
        settings={**settings, "n_members": n_members},
        state=state,
        epochs=best,
        inner_uar=by_epochs[best],
        inner_uar_by_epochs=by_epochs,
        oof_logits=oof[best],
    )
