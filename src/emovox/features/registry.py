"""Named utterance-level feature sets and the one call that computes them.

A :class:`FeatureSet` is a name, an extractor ``f(y, *, sample_rate_hz, **params)
-> (d,)`` and its parameters. :data:`FEATURE_SETS` holds the built-in ones:

``"mfcc-functionals"``
    40 MFCC (librosa, ``n_fft=2048``, ``hop_length=512``, 128 mel bands) with
    Δ and ΔΔ (120 rows), summarised by the 8 default functionals
    (mean, std, min, max, p10, p50, p90, slope): 960 values.
``"classic"``
    The seed systems' per-file librosa pipeline: 40 MFCC, ZCR, RMS, chroma (12),
    spectral contrast (7) — 61 rows — by the same 8 functionals: 488 values.
``"egemaps"``
    openSMILE eGeMAPS v02 functionals: 88 values (optional extra).
``"compare"``
    openSMILE ComParE 2016 functionals: 6,373 values (same optional extra).
``"whisper-base"``
    The frozen Whisper base encoder of the shipped default model: mean and std
    over frames of hidden states 0..4, 5,120 values (needs torch). Defined in
    the models layer (:mod:`emovox.models.embedding_features`) and registered
    lazily through :data:`LAZY_FEATURE_SETS`, so the features layer imports no
    model code.
``"file:PATH"``
    Features a user computed elsewhere, looked up by clip path in a CSV or NPZ
    (:mod:`emovox.features.imported`).
``"hf:PATH"``
    A Hugging Face speech encoder in a local folder (wav2vec 2.0, HuBERT,
    WavLM, data2vec-audio, Whisper): mean and std over frames of every hidden
    state (needs transformers). Defined in :mod:`emovox.models.hf_features` and
    listed by prefix in :data:`PREFIX_FEATURE_SETS`.

Every name resolves through :func:`get_feature_set`, whatever was imported
before (lazy entries are imported on first lookup).

``FeatureSet.config()`` is the full, JSON-able description (name, parameters,
:data:`FEATURES_VERSION`, library versions) that feature caches and model
artifacts key on; ``with_params`` makes a variant.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np

from emovox.errors import ConfigError
from emovox.features.classic import classic_frames, mfcc
from emovox.features.feature_set import FEATURES_VERSION, FeatureSet
from emovox.features.functionals import DEFAULT_STATS, functionals
from emovox.registry import Registry


def _mfcc_functionals(
    y: np.ndarray,
    *,
    sample_rate_hz: int,
    n_mfcc: int = 40,
    n_mels: int = 128,
    n_fft: int = 2048,
    hop_length: int = 512,
    stats: Sequence[str] = DEFAULT_STATS,
) -> np.ndarray:
    m = mfcc(
        y, sample_rate_hz=sample_rate_hz, n_mfcc=n_mfcc, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length, deltas=True
    )
    return functionals(m, stats=stats)


def _classic(
    y: np.ndarray,
    *,
    sample_rate_hz: int,
    n_mfcc: int = 40,
    n_mels: int = 128,
    n_fft: int = 2048,
    hop_length: int = 512,
    stats: Sequence[str] = DEFAULT_STATS,
) -> np.ndarray:
    frames = classic_frames(
        y, sample_rate_hz=sample_rate_hz, n_mfcc=n_mfcc, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length
    )
    stacked = np.concatenate([frames[k] for k in ("mfcc", "zcr", "rms", "chroma", "contrast")], axis=0)
    return functionals(stacked, stats=stats)


def _egemaps(y: np.ndarray, *, sample_rate_hz: int) -> np.ndarray:
    from emovox.features.egemaps import egemaps

    return egemaps(y, sample_rate_hz=sample_rate_hz)


def _compare(y: np.ndarray, *, sample_rate_hz: int) -> np.ndarray:
    from emovox.features.compare import compare

    return compare(y, sample_rate_hz=sample_rate_hz)


def _librosa_versions() -> dict[str, str]:
    from librosa.version import version as librosa_version  # librosa.__version__ (absent from its stubs)

    return {"librosa": librosa_version, "numpy": np.__version__.split(".")[0]}


def _opensmile_versions() -> dict[str, str]:
    from emovox.features.egemaps import opensmile_version

    return {"opensmile": opensmile_version()}


FEATURE_SETS: dict[str, FeatureSet] = {
    fs.name: fs
    for fs in (
        FeatureSet(
            "mfcc-functionals",
            _mfcc_functionals,
            {"n_mfcc": 40, "n_mels": 128, "n_fft": 2048, "hop_length": 512, "stats": DEFAULT_STATS},
            "40 MFCC + delta + delta-delta, 8 functionals each (960 values)",
            _librosa_versions,
        ),
        FeatureSet(
            "classic",
            _classic,
            {"n_mfcc": 40, "n_mels": 128, "n_fft": 2048, "hop_length": 512, "stats": DEFAULT_STATS},
            "MFCC + ZCR + RMS + chroma + spectral contrast, 8 functionals each (488 values)",
            _librosa_versions,
        ),
        FeatureSet(
            "egemaps",
            _egemaps,
            {},
            "openSMILE eGeMAPS v02 functionals (88 values; needs emovox[egemaps])",
            _opensmile_versions,
        ),
        FeatureSet(
            "compare",
            _compare,
            {},
            "openSMILE ComParE 2016 functionals (6,373 values; needs emovox[egemaps])",
            _opensmile_versions,
        ),
    )
}

#: Feature sets defined elsewhere, imported on first lookup: name -> ``"module:function"``, the function
#: returning the :class:`FeatureSet` (how a set defined above this layer is listed without importing it).
LAZY_FEATURE_SETS: dict[str, str] = {
    "whisper-base": "emovox.models.embedding_features:whisper_base_feature_set",
}
#: Prefix of the feature sets read from a user's file (``file:/data/feats.csv``).
FILE_PREFIX = "file:"
#: Feature sets named by a prefix and an argument, defined above this layer: prefix -> ``"module:function"``,
#: the function taking the argument (``hf:/models/wavlm-base-plus`` -> ``"/models/wavlm-base-plus"``).
PREFIX_FEATURE_SETS: dict[str, str] = {
    "hf:": "emovox.models.hf_features:hf_feature_set",
}


#: Modules above this layer that register feature sets when imported (the seed
#: replicas' ``seed-s0`` ... ``seed-s4``): imported on the first unknown name, so
#: that a lookup never depends on what the caller happened to import.
REGISTERING_MODULES: tuple[str, ...] = ("emovox.recipes",)
_REGISTERING = Registry(
    "feature set", lookup_error=ConfigError, modules=REGISTERING_MODULES, entries=lambda: FEATURE_SETS
)


def _load_registering_modules() -> bool:
    """Import :data:`REGISTERING_MODULES` once; ``False`` when they cannot be imported (a partial install)."""
    try:
        _REGISTERING.load_known()
    except ImportError:
        return False
    return True


def feature_set_names() -> list[str]:
    """Names of the registered feature sets, lazy ones included (``file:PATH`` is not listed)."""
    return sorted({*FEATURE_SETS, *LAZY_FEATURE_SETS})


def _load_lazy(name: str) -> FeatureSet:
    import importlib

    module, _, function = LAZY_FEATURE_SETS[name].partition(":")
    feature_set = getattr(importlib.import_module(module), function)()
    if feature_set.name != name:
        raise ConfigError(f"{LAZY_FEATURE_SETS[name]} returned feature set {feature_set.name!r}, expected {name!r}")
    FEATURE_SETS.setdefault(name, feature_set)
    return FEATURE_SETS[name]


def get_feature_set(name: str | FeatureSet) -> FeatureSet:
    """Look a feature set up by name (a :class:`FeatureSet` is returned as is).

    ``"file:PATH"`` reads a user's features file (:func:`emovox.features.imported.imported_feature_set`);
    a name with a prefix of :data:`PREFIX_FEATURE_SETS` (``"hf:DIR"``) is built by that entry's function.
    """
    if isinstance(name, FeatureSet):
        return name
    if isinstance(name, str) and name.startswith(FILE_PREFIX):
        from emovox.features.imported import imported_feature_set

        return imported_feature_set(name[len(FILE_PREFIX) :])
    for prefix, target in PREFIX_FEATURE_SETS.items():
        if isinstance(name, str) and name.startswith(prefix):
            import importlib

            module, _, function = target.partition(":")
            return getattr(importlib.import_module(module), function)(name[len(prefix) :])
    try:
        return FEATURE_SETS[name]
    except (KeyError, TypeError):
        if isinstance(name, str) and name in LAZY_FEATURE_SETS:
            return _load_lazy(name)
        if isinstance(name, str) and _load_registering_modules() and name in FEATURE_SETS:
            return FEATURE_SETS[name]
        text = str(name).lower()
        names = feature_set_names()
        close = [n for n in names if text and text in n] or difflib.get_close_matches(text, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"unknown feature set {name!r}; {hint}known: {', '.join(names)}, "
            f"or {FILE_PREFIX}PATH (a CSV/NPZ of your own), hf:DIR (a Hugging Face speech encoder folder)"
        ) from None


def register_feature_set(feature_set: FeatureSet, *, overwrite: bool = False) -> None:
    """Add a feature set to :data:`FEATURE_SETS` (``overwrite=True`` to replace one)."""
    if (feature_set.name in FEATURE_SETS or feature_set.name in LAZY_FEATURE_SETS) and not overwrite:
        raise ConfigError(f"feature set {feature_set.name!r} is already registered; pass overwrite=True to replace it")
    FEATURE_SETS[feature_set.name] = feature_set


def extract_features(name: str | FeatureSet, y: np.ndarray, *, sample_rate_hz: int) -> np.ndarray:
    """Utterance-level features of one clip.

    Parameters
    ----------
    name : str or FeatureSet
        A registered name (``"mfcc-functionals"``, ``"classic"``, ``"egemaps"``) or a set.
    y : np.ndarray [shape=(n,)]
        Mono float waveform.
    sample_rate_hz : int
        Its sample rate in Hz.

    Returns
    -------
    np.ndarray [shape=(d,)], float32, all finite

    Raises
    ------
    ConfigError
        Unknown feature set name.
    FeatureError
        The clip is invalid or too short for the set.
    """
    return get_feature_set(name)(y, sample_rate_hz=sample_rate_hz)


__all__ = [
    "FEATURES_VERSION",
    "FEATURE_SETS",
    "FILE_PREFIX",
    "LAZY_FEATURE_SETS",
    "PREFIX_FEATURE_SETS",
    "FeatureSet",
    "extract_features",
    "feature_set_names",
    "get_feature_set",
    "register_feature_set",
]
