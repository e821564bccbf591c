"""Inference: one :class:`Predictor` core over a torch or ONNX backend.

``load_model(path=None, backend="auto")`` gives a predictor; ``predict`` takes
a signal, a file, bytes or a file object and returns a :class:`Prediction`
(``{start_s, end_s, label, confidence, scores}``); ``predict_timeline`` turns
a long recording into a :class:`Timeline`. Importing this package does not
import torch (only the torch backend does, when used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emovox.inference.predictor import Predictor, default_model_dir, load_model
from emovox.inference.results import Prediction, Timeline

if TYPE_CHECKING:
    from emovox.inference.streaming import StreamEngine, StreamEvent

__all__ = ["Prediction", "Timeline", "Predictor", "load_model", "default_model_dir", "StreamEngine", "StreamEvent"]


def __getattr__(name: str) -> type:
    # the streaming engine imports the audio layer (soxr): only on first use
    if name in ("StreamEngine", "StreamEvent"):
        from emovox.inference import streaming

        return getattr(streaming, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
