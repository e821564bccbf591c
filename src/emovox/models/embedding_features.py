"""Frozen-encoder embeddings as an utterance-level feature set: ``whisper-base``.

The shipped default model (``src/emovox/pretrained/default``, architecture
``whisper-linear``) holds the first 4 of the 6 blocks of the frozen OpenAI
Whisper *base* encoder (its head reads hidden states 0..4, so later blocks were
cut off). This module runs that encoder (Whisper log-mel front end, then the
encoder, float32 compute on the stored float16 weights) on a waveform and
summarises each hidden state by its mean and standard deviation over frames:
the same vector the default head reads (:meth:`WhisperEmotionClassifier.embedding`),
``5 states x 2 stats x 512 = 5,120`` values per clip. Only the encoder is
used, never the emotion head (which was trained on the corpora). Nothing is
downloaded.

Clips of more than 30 s are cut into 30 s windows whose frames are pooled
together. Cost: about 85 ms of one CPU thread per 2 s clip (EMO-DB's 535
clips in 45 s on a shared 2-core machine), plus loading the
encoder once per process (a few seconds with the torch import). Needs torch;
the features layer lists the set lazily
(:data:`emovox.features.registry.LAZY_FEATURE_SETS`), so this module imports
torch only when a clip is encoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from emovox.errors import FeatureError

__all__ = ["WHISPER_BASE_LAYERS", "default_encoder_dir", "whisper_base_embedding", "whisper_base_feature_set"]

#: Hidden states the default head reads (0 = after the positions, 4 = output of block 4).
WHISPER_BASE_LAYERS: tuple[int, ...] = (0, 1, 2, 3, 4)
STATS = ("mean", "std")
WINDOW_S = 30.0
MIN_DURATION_S = 0.1
TORCH_HINT = 'feature set "whisper-base" needs PyTorch: pip install "torch==2.13.*" (see the README)'


def default_encoder_dir() -> Path:
    """The shipped default model's folder (its ``model.safetensors`` holds the encoder)."""
    return Path(str(resources.files("emovox"))) / "pretrained" / "default"


@lru_cache(maxsize=1)
def _weights_sha256() -> str:
    from emovox.features.cache import file_fingerprint

    return file_fingerprint(default_encoder_dir() / "model.safetensors")


@lru_cache(maxsize=1)
def _encoder():
    """(front end, encoder, n_states) of the default model, loaded once per process."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise FeatureError(TORCH_HINT) from None
    from emovox.models.artifact import load_artifact

    module, _ = load_artifact(default_encoder_dir())
    encoder = getattr(module, "encoder", None)
    if encoder is None:
        raise FeatureError(f"the model in {default_encoder_dir()} has no Whisper encoder; reinstall emovox")
    return module.frontend, encoder, encoder.config.n_layers + 1


def _versions() -> dict[str, str]:
    try:
        import torch

        torch_version = ".".join(torch.__version__.split(".")[:2])
    except ImportError:
        torch_version = "missing"
    return {"torch": torch_version, "encoder_sha256": _weights_sha256()}


def whisper_base_embedding(
    y: np.ndarray, *, sample_rate_hz: int, layers: Sequence[int] = WHISPER_BASE_LAYERS, stats: Sequence[str] = STATS
) -> np.ndarray:
    """Mean and std over frames of the frozen Whisper base encoder's hidden states.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono float waveform at 16 kHz, at least 0.1 s long.
    sample_rate_hz : int
        Must be 16000 (Whisper's rate).
    layers : sequence of int
        Hidden states to keep, in ``0..4``.
    stats : sequence of str
        ``"mean"`` and/or ``"std"`` (population) over frames.

    Returns
    -------
    np.ndarray [shape=(len(layers) * len(stats) * 512,)], float32
        Layer-major, then statistic, then channel (the default head's order).

    Raises
    ------
    FeatureError
        Wrong sample rate, too short a clip, torch missing.
    """
    from emovox.features.checks import check_signal

    if sample_rate_hz != 16000:
        raise FeatureError(f"feature set 'whisper-base' needs 16 kHz audio, got {sample_rate_hz} Hz")
    y = check_signal(
        y,
        sample_rate_hz,
        min_samples=int(MIN_DURATION_S * sample_rate_hz),
        what=f"feature set 'whisper-base' ({MIN_DURATION_S} s)",
    )
    frontend, encoder, n_states = _encoder()  # FeatureError when torch is missing
    import torch

    layers = [int(i) for i in layers]
    if not layers or any(not 0 <= i < n_states for i in layers) or not set(stats) <= set(STATS) or not stats:
        raise FeatureError(
            f"whisper-base: layers must be in 0..{n_states - 1} and stats in {list(STATS)}; got {layers}, {list(stats)}"
        )
    window = int(WINDOW_S * sample_rate_hz)
    chunks = [y[i : i + window] for i in range(0, len(y), window)]
    if len(chunks) > 1 and len(chunks[-1]) < MIN_DURATION_S * sample_rate_hz:
        chunks = chunks[:-1]  # a tail shorter than 0.1 s adds nothing
    states = []
    with torch.inference_mode():
        for chunk in chunks:
            x = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32))[None]
            hidden = encoder(frontend(x))
            states.append(torch.stack([hidden[i][0] for i in layers]))  # (n_layers, frames, d)
        h = torch.cat(states, dim=1).double()
        pooled = {"mean": h.mean(dim=1), "std": h.std(dim=1, unbiased=False)}
        out = torch.stack([pooled[s] for s in stats], dim=1)  # (n_layers, n_stats, d)
    return out.flatten().float().numpy()


def whisper_base_feature_set():
    """The ``"whisper-base"`` :class:`~emovox.features.FeatureSet` (the registry's lazy entry)."""
    from emovox.features.registry import FeatureSet

    return FeatureSet(
        "whisper-base",
        whisper_base_embedding,
        {"layers": WHISPER_BASE_LAYERS, "stats": STATS},
        "frozen Whisper base encoder of the default model: mean+std over frames of hidden states "
        "0..4 (5,120 values; needs torch)",
        _versions,
    )
