"""The feature set ``hf:PATH``: mean and standard deviation over frames of every hidden state
of a Hugging Face speech encoder in a local folder (:mod:`emovox.models.hf_encoder`).

Listed by the features layer as a prefix
(:data:`emovox.features.registry.PREFIX_FEATURE_SETS`), so that the features
layer imports no model code: ``emovox evaluate --features hf:/models/wavlm-base-plus``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import torch

from emovox.errors import ConfigError, FeatureError
from emovox.models.hf_encoder import (
    FAMILIES,
    HF_PREFIX,
    MIN_DURATION_S,
    SAMPLE_RATE_HZ,
    STATS,
    WINDOW_S,
    HFEncoder,
    cache_identity,
    check_model_type,
    load_hf_encoder,
    read_json_file,
    require_transformers,
    resolve_hf_folder,
    weights_sha256,
)

__all__ = ["hf_embedding", "hf_feature_set"]


@lru_cache(maxsize=2)
def _cached_encoder(folder: str) -> HFEncoder:
    return load_hf_encoder(folder)


@lru_cache(maxsize=8)
def _revision(folder: str) -> str:
    cached = cache_identity(Path(folder))
    return cached[1] if cached else weights_sha256(folder)


def _versions(folder: str) -> dict[str, str]:
    return {
        "torch": ".".join(torch.__version__.split(".")[:2]),
        "transformers": str(require_transformers(FeatureError).__version__),
        "revision": _revision(folder),
    }


def hf_embedding(
    y: np.ndarray,
    *,
    sample_rate_hz: int,
    model: str,
    layers: Sequence[int] | None = None,
    stats: Sequence[str] = STATS,
) -> np.ndarray:
    """Mean and std over frames of a Hugging Face encoder's hidden states.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono float waveform at 16 kHz, at least 0.1 s long. Clips over 30 s are
        encoded in 30 s windows whose frames are pooled together.
    sample_rate_hz : int
        Must be 16000.
    model : str
        The model folder.
    layers : sequence of int, optional
        Hidden states to keep (default: all ``n_layers + 1``).
    stats : sequence of str
        ``"mean"`` and/or ``"std"`` (population) over frames.

    Returns
    -------
    np.ndarray [shape=(len(layers) * len(stats) * d_model,)], float32
        Layer-major, then statistic, then channel.

    Raises
    ------
    FeatureError
        Wrong sample rate, too short a clip, bad layers or stats, transformers missing.
    """
    from emovox.features.checks import check_signal

    name = f"hf:{model}"
    if sample_rate_hz != SAMPLE_RATE_HZ:
        raise FeatureError(f"feature set {name!r} needs 16 kHz audio, got {sample_rate_hz} Hz")
    y = check_signal(y, sample_rate_hz, min_samples=int(MIN_DURATION_S * sample_rate_hz), what=f"{name} (0.1 s)")
    try:
        encoder = _cached_encoder(model)
    except ConfigError as error:
        raise FeatureError(str(error)) from None
    chosen = list(range(encoder.n_states)) if layers is None else [int(i) for i in layers]
    if not chosen or any(not 0 <= i < encoder.n_states for i in chosen) or not stats or not set(stats) <= set(STATS):
        raise FeatureError(
            f"{name}: layers must be in 0..{encoder.n_layers} and stats in {list(STATS)}; got {chosen}, {list(stats)}"
        )
    window = int(WINDOW_S * sample_rate_hz)
    if encoder.max_samples is not None:
        window = min(window, encoder.max_samples)
    chunks = [y[i : i + window] for i in range(0, len(y), window)]
    if len(chunks) > 1 and len(chunks[-1]) < MIN_DURATION_S * sample_rate_hz:
        chunks = chunks[:-1]  # a tail shorter than 0.1 s adds nothing
    with torch.inference_mode():
        h = torch.cat(
            [encoder.hidden_states(torch.from_numpy(np.ascontiguousarray(c, np.float32)))[0] for c in chunks], dim=1
        )[chosen].double()  # (n_layers, frames, d)
        pooled = {"mean": h.mean(dim=1), "std": h.std(dim=1, unbiased=False)}
        out = torch.stack([pooled[s] for s in stats], dim=1)
    return out.flatten().float().numpy()


def hf_feature_set(argument: str):
    """The feature set ``hf:ARGUMENT`` (the registry's prefix entry): ``ARGUMENT`` is a folder or cached name.

    The folder is resolved now (a missing one is a one-line :class:`ConfigError`);
    the encoder is loaded on the first clip. :meth:`~emovox.features.FeatureSet.config`
    holds the resolved folder and its revision (Hugging Face cache commit or
    SHA-256 of the weight files), so cached features change with the weights.
    """
    from emovox.features.feature_set import FeatureSet

    require_transformers()
    folder = resolve_hf_folder(argument)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{str(folder)!r} has no config.json: it is not a Hugging Face model folder")
    model_type = check_model_type(read_json_file(folder / "config.json").get("model_type"), str(folder / "config.json"))
    return FeatureSet(
        f"{HF_PREFIX}{argument}",
        hf_embedding,
        {"model": str(folder), "layers": None, "stats": STATS},
        f"{FAMILIES[model_type]} encoder in {folder}: mean+std over frames of every hidden state (needs transformers)",
        partial(_versions, str(folder)),
    )
