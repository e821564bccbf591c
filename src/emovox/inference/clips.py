"""Clips -> logits in batches: windows of several clips share backend calls, then pool back per clip.

:func:`pool_clips` is the batching behind
:meth:`~emovox.inference.predictor.Predictor.iter_clip_logits`: each
:class:`PreparedClip` brings its windows (or ``None`` where the speech gate
found no speech, or the error it met); windows are gathered across clips until
a batch holds at least ``batch_size`` of them, classified together, and each
clip's window logits are pooled into a :class:`ClipLogits`, in input order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emovox.errors import EmovoxError
from emovox.inference.gate import SpeechCheck

__all__ = ["ClipLogits", "PreparedClip", "pool_clips"]


@dataclass(frozen=True)
class ClipLogits:
    """What the model made of one clip (:meth:`~emovox.inference.predictor.Predictor.iter_clip_logits`).

    Attributes
    ----------
    logits : np.ndarray [shape=(n_classes,), dtype=float32] or None
        Pre-softmax class scores in the model's class order, pooled over the
        clip's windows (:func:`~emovox.inference.scores.pool_logits`); the
        prediction's scores are ``softmax(logits / T)``. ``None`` when the
        speech gate found no speech (the model is not run; ``predict``
        answers ``no_speech``).
    duration_s : float
        The decoded clip's length in seconds (the prediction's ``end_s``).
    check : SpeechCheck or None
        The speech gate's findings (``None`` for a predictor without a gate).
    window_logits : np.ndarray [shape=(n_windows, n_classes), dtype=float32] or None
        The raw logits of the clip's windows, before pooling (``None`` with
        ``logits``): what calibration needs, since pooling depends on ``T``.
    """

    logits: np.ndarray | None
    duration_s: float
    check: SpeechCheck | None
    window_logits: np.ndarray | None = None


@dataclass(frozen=True)
class PreparedClip:
    """One input clip ready for the model.

    Attributes
    ----------
    source : Any
        The input as the caller gave it (returned beside its result).
    windows : list of np.ndarray [shape=(n,)], EmovoxError or None
        The model's windows of the clip (at least one); ``None``: no speech
        (the model is not run); an error: the clip could not be read.
    duration_s : float
        The decoded clip's length in seconds (0 after an error).
    check : SpeechCheck or None
        The speech gate's findings.
    """

    source: Any
    windows: list[np.ndarray] | EmovoxError | None
    duration_s: float
    check: SpeechCheck | None


def pool_clips(
    clips: Iterable[PreparedClip],
    logits: Callable[[Sequence[np.ndarray]], np.ndarray],
    pool: Callable[[np.ndarray], np.ndarray],
    *,
    batch_size: int,
) -> Iterator[tuple[Any, ClipLogits | EmovoxError]]:
    """``(source, ClipLogits or error)`` per clip, in order, classifying windows across clips.

    Parameters
    ----------
    clips : iterable of PreparedClip
        Consumed lazily: a batch is classified as soon as it holds
        ``batch_size`` windows or more.
    logits : callable
        ``logits(windows) -> (n_windows, n_classes)``.
    pool : callable
        ``pool(window_logits (k, n_classes)) -> (n_classes,)``: one clip's logits.
    batch_size : int
        Windows gathered before a call of ``logits``.
    """
    pending: list[PreparedClip] = []
    n_windows = 0

    def flush() -> Iterator[tuple[Any, ClipLogits | EmovoxError]]:
        good = [x for clip in pending if isinstance(clip.windows, list) for x in clip.windows]
        z = logits(good) if good else None
        i = 0
        for clip in pending:
            w = clip.windows
            if isinstance(w, list):
                assert z is not None  # a clip has at least one window, so good is not empty
                window_logits = z[i : i + len(w)]
                yield clip.source, ClipLogits(pool(window_logits), clip.duration_s, clip.check, window_logits)
                i += len(w)
            elif w is None:
                yield clip.source, ClipLogits(None, clip.duration_s, clip.check)
            else:
                yield clip.source, w
        pending.clear()

    for clip in clips:
        pending.append(clip)
        n_windows += len(clip.windows) if isinstance(clip.windows, list) else 0
        if n_windows >= batch_size:
            yield from flush()
            n_windows = 0
    yield from flush()
