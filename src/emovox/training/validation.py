"""A model evaluated on a dataset: its logits, UAR and accuracy (the validation pass of the engine).

:func:`predict_logits` runs a model over a dataset (or an input array);
:func:`uar_accuracy` scores predictions with the evaluation layer's formulas
(:mod:`emovox.evaluation.metrics`); :func:`validation_logits` is the engine's
validation pass, one slice per process under torchrun.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from emovox.training.data import collate
from emovox.training.distributed import DistContext, gather_rows, shard_range

__all__ = ["predict_logits", "uar_accuracy", "validation_logits"]


def uar_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """(unweighted average recall over classes present in ``y_true``, accuracy): the evaluation layer's formulas."""
    from emovox.evaluation.metrics import accuracy_of_confusion, confusion_matrix, uar_of_confusion

    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if len(y_true) == 0:
        return float("nan"), float("nan")
    cm = confusion_matrix(y_true, y_pred, n_classes=int(max(y_true.max(), y_pred.max())) + 1)
    return float(uar_of_confusion(cm)), float(accuracy_of_confusion(cm))


@torch.no_grad()
def predict_logits(model: torch.nn.Module, data: Dataset | np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Logits of ``model`` on a dataset (or an input array), ``(n, n_classes)`` float32."""
    was_training = model.training
    model.eval()
    outputs = []
    try:
        if isinstance(data, np.ndarray):
            for start in range(0, len(data), batch_size):
                outputs.append(
                    model(torch.from_numpy(np.ascontiguousarray(data[start : start + batch_size], dtype=np.float32)))
                )
        else:
            loader = DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate)
            for x, _ in loader:
                outputs.append(model(x))
    finally:
        model.train(was_training)
    if not outputs:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(outputs).float().numpy()


def validation_logits(model, val_data, config, ctx: DistContext, n_classes: int) -> np.ndarray:
    """Validation logits ``(n_val, n_classes)``: one pass, or a slice per process gathered on all."""
    if not ctx.enabled:
        return predict_logits(model, val_data, batch_size=config.eval_batch_size)
    rows = shard_range(len(val_data), ctx)
    local = np.zeros((0, n_classes), dtype=np.float32)
    if len(rows):
        local = predict_logits(model, Subset(val_data, list(rows)), batch_size=config.eval_batch_size)
    return gather_rows(torch.from_numpy(local), n_total=len(val_data), n_cols=n_classes, ctx=ctx).numpy()
