"""From corpus entries to what the fold runner needs: records, class labels, splits and features.

Behind ``emovox evaluate``, studies, targets and ``emovox explore``: the
``--corpus`` entries (a name, or ``LAYOUT:PATH`` for data elsewhere or a
user's own), the label scheme, the protocol's splits, and features through the
features layer's disk cache.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emovox.errors import ConfigError
from emovox.evaluation.protocols import (
    PROTOCOLS,
    Split,
    cross_corpus,
    leave_one_speaker_out,
    random_stratified,
    speaker_kfold,
)

if TYPE_CHECKING:
    from emovox.features import FeatureSet
    from emovox.labels import LabelScheme
from emovox.evaluation.spec import EvaluationSpec

__all__ = [
    "default_cache_dir",
    "keep_first_speakers",
    "load_corpus_entry",
    "load_entries",
    "make_splits",
    "prepare_labels",
    "spec_features",
]


def default_cache_dir() -> Path:
    """``$EMOVOX_CACHE/features`` if set, else ``~/.cache/emovox/features``."""
    base = os.environ.get("EMOVOX_CACHE")
    return Path(base) / "features" if base else Path.home() / ".cache" / "emovox" / "features"


def prepare_labels(records: Sequence, scheme_name: str | LabelScheme) -> tuple[list, np.ndarray, tuple[str, ...]]:
    """Map records through a label scheme (a name, or a scheme object); drop what it drops.

    Returns
    -------
    records : list of Record
        Those the scheme keeps.
    y : np.ndarray [shape=(n,), dtype=int64]
        Class indices into ``classes``.
    classes : tuple of str
        The scheme's classes present in the data, in scheme order.
    """
    from emovox.labels import apply_scheme, resolve_scheme

    scheme = resolve_scheme(scheme_name)
    kept, indices = apply_scheme(records, scheme)  # the one label mapping: indices into scheme.classes
    if not kept:
        raise ConfigError(f"label scheme {scheme.name!r} keeps none of the {len(records)} recordings")
    present = np.unique(indices)  # sorted: the present classes keep the scheme's order
    classes = tuple(scheme.classes[i] for i in present)
    y = np.searchsorted(present, indices).astype(np.int64)
    return kept, y, classes


def make_splits(
    protocol: str,
    records: Sequence,
    y: np.ndarray,
    *,
    folds: int = 6,
    seed: int = 0,
    train_corpora: Sequence[str] = (),
    test_corpora: Sequence[str] = (),
    test_fraction: float = 0.2,
) -> list[Split]:
    """The splits of a named protocol over ``records`` (see :data:`PROTOCOLS`)."""
    speakers = [r.speaker_key for r in records]
    if protocol == "loso":
        return leave_one_speaker_out(speakers)
    if protocol == "speaker-kfold":
        return speaker_kfold(speakers, k=folds, seed=seed, labels=y, strata=[r.gender or "" for r in records])
    if protocol == "cross-corpus":
        return cross_corpus([r.corpus for r in records], train=tuple(train_corpora), test=tuple(test_corpora))
    if protocol == "random":
        return random_stratified(y, test_fraction=test_fraction, seed=seed)
    if protocol == "leave-one-corpus-out":
        from emovox.evaluation.cross_corpus import leave_one_corpus_out

        return leave_one_corpus_out([r.corpus for r in records])
    raise ConfigError(f"unknown protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")


def keep_first_speakers(records: Sequence, max_speakers: int | None) -> list:
    """The records of the first ``max_speakers`` speakers (sorted ids) of one corpus; all when ``None``."""
    if max_speakers is None:
        return list(records)
    keep = set(sorted({r.speaker for r in records})[:max_speakers])
    return [r for r in records if r.speaker in keep]


def load_entries(spec: EvaluationSpec) -> tuple[list[tuple[str, list]], tuple[str, ...], tuple[str, ...]]:
    """The records of every corpus entry, and the corpus names of the training / test entries.

    An entry is a corpus name (read from its folder under the corpora root) or
    ``LAYOUT:PATH``: a corpus in a given folder (``ravdess:/data/RAVDESS``), a
    CSV manifest (``csv:/data/mine.csv``) or a folder-per-label tree
    (``folder:/data/mine``), so a user's own data is evaluated the same way.

    Returns
    -------
    loaded : list of (entry, list of Record)
        Each entry once, in ``corpora`` then ``test_corpus`` order, cut to
        ``max_speakers``.
    train, test : tuple of str
        Corpus names on the training / test side (``test`` empty unless cross-corpus).
    """
    entries = list(dict.fromkeys([*spec.corpora, *spec.test_corpus]))  # each corpus once
    names: dict[str, set[str]] = {}
    loaded = []
    for entry in entries:
        records = keep_first_speakers(load_corpus_entry(entry, spec.corpora_root), spec.max_speakers)
        names[entry] = {r.corpus for r in records}
        loaded.append((entry, records))
    train = tuple(sorted(set().union(*(names[e] for e in spec.corpora))))
    test = tuple(sorted(set().union(*(names[e] for e in spec.test_corpus)))) if spec.test_corpus else ()
    if set(train) & set(test):
        raise ConfigError(
            f"cross-corpus: corpus {sorted(set(train) & set(test))[0]!r} is on both the training "
            "and the test side; give it to --corpus or --test-corpus, not both"
        )
    return loaded, train, test


def spec_features(
    records: Sequence, feature_set: str | FeatureSet, spec: EvaluationSpec, *, progress_bars: bool = False
) -> np.ndarray:
    """Features ``(n, d)`` of ``records`` through the spec's disk cache (16 kHz input)."""
    from emovox.features import featurize_records

    cache = Path(spec.cache_dir) if spec.cache_dir else default_cache_dir()
    return featurize_records(
        records, feature_set, sample_rate_hz=16000, cache_dir=cache, n_jobs=spec.n_jobs, progress=progress_bars
    )


def load_corpus_entry(entry: str, corpora_root: str | os.PathLike[str] | None = None) -> list:
    """Records of one ``--corpus`` entry: ``NAME`` (its folder under the corpora root) or ``LAYOUT:PATH``.

    Raises :class:`ConfigError` for an unknown layout or a missing path, and
    :class:`CorpusError` (from the loader) for a folder it cannot read.
    """
    from emovox.corpora import corpus_names, default_corpora_root, get_corpus_info, load_corpus

    known = corpus_names()
    name, sep, path = entry.partition(":")
    if name not in known:
        raise ConfigError(
            f"unknown corpus {entry!r}: expected one of {', '.join(known)}, "
            "optionally as LAYOUT:PATH (e.g. csv:/data/mine.csv, folder:/data/mine)"
        )
    if sep:
        if not path:
            raise ConfigError(f"corpus {entry!r} has an empty path: write {name}:PATH")
        return load_corpus(name, os.path.expanduser(path))  # Path.expanduser raises on ~unknown-user
    folder = get_corpus_info(name).default_dir
    if folder is None:
        raise ConfigError(
            f"corpus {name!r} needs its path: write {name}:PATH "
            f"(e.g. --corpus {name}:/data/mine{'.csv' if name == 'csv' else ''})"
        )
    root = Path(corpora_root) if corpora_root is not None else default_corpora_root()
    return load_corpus(name, root / folder)
