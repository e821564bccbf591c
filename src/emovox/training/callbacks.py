"""Training hooks: the engine reports progress through these, never by printing."""

from __future__ import annotations

from typing import Any


class Callback:
    """Base class; override the hooks you need. All are no-ops here.

    Hooks are called in this order: ``on_train_start`` once; per epoch
    ``on_epoch_start``, ``on_batch_end`` per training batch, ``on_epoch_end``
    with the epoch's log record, ``on_checkpoint`` after the checkpoint is
    safely on disk; ``on_train_end`` once with the result.
    """

    def on_train_start(self, *, start_epoch: int, epochs: int) -> None: ...

    def on_epoch_start(self, epoch: int, *, n_batches: int) -> None: ...

    def on_batch_end(self, epoch: int, batch: int, *, loss: float) -> None: ...

    def on_epoch_end(self, epoch: int, record: dict) -> None: ...

    def on_checkpoint(self, epoch: int, path: Any) -> None: ...

    def on_train_end(self, result: Any) -> None: ...


class TqdmProgress(Callback):
    """One tqdm bar per epoch (on stderr); ``disable=True`` shows nothing."""

    def __init__(self, *, disable: bool = False, leave: bool = False) -> None:
        self.disable = disable
        self.leave = leave
        self._bar = None
        self._epochs = 0

    def on_train_start(self, *, start_epoch: int, epochs: int) -> None:
        self._epochs = epochs

    def on_epoch_start(self, epoch: int, *, n_batches: int) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=n_batches,
            desc=f"epoch {epoch + 1}/{self._epochs}",
            disable=self.disable,
            leave=self.leave,
            unit="batch",
        )

    def on_batch_end(self, epoch: int, batch: int, *, loss: float) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    def on_epoch_end(self, epoch: int, record: dict) -> None:
        if self._bar is not None:
            shown = {k: f"{record[k]:.3f}" for k in ("train_loss", "val_uar") if record.get(k) is not None}
            self._bar.set_postfix(refresh=True, **shown)
            self._bar.close()
            self._bar = None
