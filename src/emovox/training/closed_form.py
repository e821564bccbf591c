"""Closed-form trainers (a logistic-regression head) as runs of the training engine.

The DESIGN's rule: a logistic-regression head is a trainer the engine runs,
not a side path. :func:`fit_closed_form` is that run: the fit is one step,
which the engine's callbacks see as one epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from emovox.errors import ModelError
from emovox.training.callbacks import Callback

__all__ = ["fit_closed_form"]


def fit_closed_form(fit: Callable[[], dict], *, callbacks: Sequence[Callback] = ()) -> dict:
    """Run a trainer fitted in closed form (a logistic-regression head) as the engine's one epoch.

    Such a trainer has no batches or epochs to iterate: ``fit()`` does the
    whole fit. The engine still runs it, so that the same callbacks see it as
    any other run: ``on_train_start(start_epoch=0, epochs=1)``,
    ``on_epoch_start(0, n_batches=1)``, ``on_batch_end``, ``on_epoch_end``
    with a record ``{"epoch": 1, "closed_form": True, "time_s": ...}`` plus
    ``fit``'s numeric summary entries, and ``on_train_end`` with ``fit``'s summary.

    Parameters
    ----------
    fit : callable
        ``fit() -> summary`` (a dict).
    callbacks : sequence of Callback

    Returns
    -------
    dict
        What ``fit`` returned.
    """
    started = time.perf_counter()
    for cb in callbacks:
        cb.on_train_start(start_epoch=0, epochs=1)
        cb.on_epoch_start(0, n_batches=1)
    summary = fit()
    if not isinstance(summary, dict):
        raise ModelError(f"a closed-form trainer returned {type(summary).__name__}, not a summary dict (a bug)")
    record: dict = {"epoch": 1, "closed_form": True, "time_s": round(time.perf_counter() - started, 3)}
    record.update({k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    for cb in callbacks:
        cb.on_batch_end(0, 0, loss=math.nan)
        cb.on_epoch_end(0, record)
        cb.on_train_end(summary)
    return summary
