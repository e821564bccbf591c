"""Per-clip statistics of Whisper hidden states, shared by every head over a frozen Whisper encoder.

Both the linear probe (:mod:`emovox.models.whisper_classifier`) and the
other heads (:mod:`emovox.models.whisper_heads`) read these statistics; the
function lives here so that neither module imports the other's internals.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["pool_hidden_states"]


def pool_hidden_states(states: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean and std over frames of every hidden state.

    Parameters
    ----------
    states : sequence of torch.Tensor [shape=(batch, frames, d_model)]
        The encoder's ``n_states`` hidden states.

    Returns
    -------
    torch.Tensor [shape=(batch, n_states, 2, d_model)]
        Axis 2: mean, population standard deviation over frames.
    """
    h = torch.stack(tuple(states), dim=1)  # (batch, n_states, frames, d_model)
    return torch.stack([h.mean(dim=2), h.std(dim=2, unbiased=False)], dim=2)
