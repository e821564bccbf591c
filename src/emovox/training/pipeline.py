"""The input pipeline shared by training and artifact evaluation.

Training (``emovox train``) and evaluation of a saved model over features
(:class:`emovox.training.predict.ArtifactModel`) must turn a recording into
a model input in exactly the same way; both go through this module, driven by
the artifact's ``preprocessing`` section::

    {"sample_rate_hz": 16000, "clip_s": 1.0, "normalize": "peak",
     "trim_silence": false, "crop": "center", "feature": null,
     "normalization": null | {"mean": [...], "std": [...]}}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from emovox.corpora.registry import corpus_licence
from emovox.errors import ConfigError, FeatureError
from emovox.training.data import fix_length


def load_waveforms(
    records: Sequence,
    *,
    sample_rate_hz: int,
    normalize: str | None = None,
    trim_silence: bool = False,
    progress: bool = False,
) -> list[np.ndarray]:
    """Load every record's audio as float32 mono at ``sample_rate_hz``.

    Parameters
    ----------
    records : sequence of emovox.corpora.Record (anything with ``.path``) or paths
    """
    # the only layer that reads audio files
    from emovox.audio import load_audio, normalize_loudness, normalize_peak, trim_for_model

    paths = [getattr(r, "path", r) for r in records]
    iterator: Iterable = paths
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(paths, desc="loading audio", unit="clip", leave=False)
    waves = [load_audio(p, sample_rate_hz=sample_rate_hz) for p in iterator]
    if trim_silence:  # the same rule as the predictor's (never below 0.5 s)
        waves = [trim_for_model(y, sample_rate_hz=sample_rate_hz) for y in waves]
    if normalize == "peak":
        waves = [normalize_peak(y) for y in waves]
    elif normalize == "loudness":
        waves = [normalize_loudness(y, sample_rate_hz=sample_rate_hz) for y in waves]
    elif normalize is not None:
        raise ConfigError(f"normalize={normalize!r} is unknown: expected None, 'peak' or 'loudness'")
    return waves


def feature_inputs(waveforms: Sequence[np.ndarray], *, feature: str, sample_rate_hz: int) -> np.ndarray:
    """Extract feature set ``feature`` from each whole clip.

    The extractor owns any windowing (offset, crop, pad) of its input, so
    clips are passed as loaded; it must return one fixed shape.

    Returns
    -------
    np.ndarray [shape=(n, *feature_dims)] float32
    """
    from emovox.features import extract_features

    _ensure_feature_set(feature)
    rows = [
        np.asarray(
            extract_features(feature, np.asarray(y, dtype=np.float32), sample_rate_hz=sample_rate_hz), dtype=np.float32
        )
        for y in waveforms
    ]
    shapes = {r.shape for r in rows}
    if len(shapes) != 1:
        raise FeatureError(f"feature set {feature!r} gave inputs of shapes {sorted(shapes)}: expected one shape")
    return np.stack(rows)


def _ensure_feature_set(name: str) -> None:
    """Recipes may register feature sets (``seed-s0`` ...): import them before a lookup."""
    from emovox.features import feature_set_names

    if name not in feature_set_names():
        from emovox.training.recipes import recipe_names

        recipe_names()  # imports the recipe modules, which register their feature sets


def fit_normalization(x: np.ndarray) -> dict:
    """Per-dimension mean and std of training inputs ``(n, ...)`` (std floored at 1e-8)."""
    x = np.asarray(x, dtype=np.float64)
    return {"mean": x.mean(axis=0).tolist(), "std": np.maximum(x.std(axis=0), 1e-8).tolist()}


def apply_normalization(x: np.ndarray, stats: Mapping | None) -> np.ndarray:
    """``(x - mean) / std`` with statistics from :func:`fit_normalization`; ``None`` is identity."""
    if not stats:
        return np.asarray(x, dtype=np.float32)
    mean = np.asarray(stats["mean"], dtype=np.float32)
    std = np.asarray(stats["std"], dtype=np.float32)
    if mean.shape != np.asarray(x).shape[1:]:
        raise FeatureError(
            f"normalisation statistics of shape {mean.shape} do not fit inputs of shape {np.asarray(x).shape[1:]}"
        )
    return ((x - mean) / std).astype(np.float32)


def prepare_inputs(waveforms: Sequence[np.ndarray], task: Mapping, preprocessing: Mapping) -> np.ndarray:
    """Model inputs for evaluation: fixed-length waveforms, or features + normalisation.

    Parameters
    ----------
    waveforms : sequence of np.ndarray [shape=(n_i,)]
        Already loaded with the artifact's ``load_audio`` options.
    task : Mapping
        ``TaskSpec.to_dict()``.
    preprocessing : Mapping
        The artifact's ``preprocessing`` section.

    Returns
    -------
    np.ndarray [shape=(n, *input_shape)] float32
    """
    sample_rate_hz = int(task["sample_rate_hz"])
    n_samples = int(round(float(task["clip_s"]) * sample_rate_hz))
    if task["input_kind"] == "waveform":
        crop = preprocessing.get("crop", "center")
        x = np.stack([fix_length(np.asarray(y, dtype=np.float32), n_samples, crop=crop) for y in waveforms])
    elif task["input_kind"] == "features":
        x = feature_inputs(waveforms, feature=task["feature"], sample_rate_hz=sample_rate_hz)
    else:
        raise ConfigError(f"input_kind={task['input_kind']!r} is unknown")
    return apply_normalization(x, preprocessing.get("normalization"))


def data_card(records: Sequence, *, classes: Sequence[str], labels: Sequence[int] | np.ndarray) -> dict:
    """Describe training data for an artifact: corpora, speakers, counts, licences."""
    corpora = sorted({r.corpus for r in records})
    speakers = sorted({r.speaker_key for r in records})
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(classes))
    return {
        "corpora": corpora,
        "speakers": speakers,
        "n_speakers": len(speakers),
        "n_clips": len(records),
        "class_counts": {c: int(n) for c, n in zip(classes, counts)},
        "licences": {c: corpus_licence(c) for c in corpora},  # each corpus module's LICENCE
    }
