"""Evaluation protocols: which samples train and which test, fold by fold.

Every protocol returns a list of :class:`Split`, each holding integer index
arrays into the caller's sample list. Speaker-independent protocols work on
speaker *keys* unique across corpora (``Record.speaker_key``, e.g.
``"emodb/03"``), so two corpora's speaker ``"01"`` are never confused.

Protocols
---------
:func:`leave_one_speaker_out`
    One fold per speaker; every sample is tested exactly once.
:func:`speaker_kfold`
    ``k`` speaker-disjoint folds with balanced speaker counts, stratified by
    label (and optionally by a speaker attribute such as gender) where
    possible. RAVDESS with ``k=6`` gives 6 folds of 4 actors.
:func:`cross_corpus`
    Train on some corpora, test on another.
:func:`random_stratified`
    One random, label-stratified split that ignores speakers. It leaks the
    speaker into the test set; use it only to compare with systems that report
    such figures (see ``DESIGN.md``, "Honest evaluation").
:func:`stratified_kfold`
    ``k`` label-stratified folds over samples, ignoring speakers: for data
    without speaker labels (or of one speaker), where nothing better exists.
    Not speaker-independent.
:func:`speaker_validation_split`
    A validation set carved out of the *training* speakers of one split, for
    early stopping / model selection without touching the test speakers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

from emovox.errors import ConfigError

__all__ = [
    "PROTOCOLS",
    "Split",
    "check_speaker_disjoint",
    "cross_corpus",
    "leave_one_speaker_out",
    "random_stratified",
    "speaker_kfold",
    "speaker_validation_split",
    "stratified_kfold",
]

#: Protocol names understood by the experiment runner and the CLI.
PROTOCOLS: tuple[str, ...] = ("loso", "speaker-kfold", "cross-corpus", "leave-one-corpus-out", "random")

#: One value per sample (speaker keys, labels, corpus names): a sequence or a 1-D array.
SampleValues: TypeAlias = "Sequence[Any] | np.ndarray"


@dataclass(frozen=True)
class Split:
    """One train/test partition of a sample list.

    Attributes
    ----------
    name : str
        Fold name, e.g. ``"emodb/03"`` (LOSO) or ``"fold-2"``.
    train_idx : np.ndarray [shape=(n_train,), dtype=int64]
        Sorted indices of the training samples.
    test_idx : np.ndarray [shape=(n_test,), dtype=int64]
        Sorted indices of the test samples.
    """

    name: str
    train_idx: np.ndarray
    test_idx: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "train_idx", _as_index(self.train_idx))
        object.__setattr__(self, "test_idx", _as_index(self.test_idx))

    def to_dict(self) -> dict:
        return {"name": self.name, "train_idx": self.train_idx.tolist(), "test_idx": self.test_idx.tolist()}


def _as_index(idx: Iterable[int] | np.ndarray) -> np.ndarray:
    return np.sort(np.asarray(list(idx) if not isinstance(idx, np.ndarray) else idx, dtype=np.int64))


def _as_strings(values: SampleValues, what: str) -> np.ndarray:
    array = np.asarray([str(v) for v in values], dtype=object)
    if array.size == 0:
        raise ConfigError(f"no {what} given: the protocol needs at least one sample")
    return array


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def check_speaker_disjoint(split: Split, speakers: SampleValues) -> list[str]:
    """Speakers present on both sides of ``split`` (empty when it is speaker-independent)."""
    keys = np.asarray([str(s) for s in speakers], dtype=object)
    both = set(keys[split.train_idx]) & set(keys[split.test_idx])
    return sorted(both)


def leave_one_speaker_out(speakers: SampleValues) -> list[Split]:
    """One fold per speaker: test on that speaker, train on all the others.

    Parameters
    ----------
    speakers : sequence of str [shape=(n,)]
        Speaker key of each sample (unique across corpora).

    Returns
    -------
    list of Split
        One split per distinct speaker, in sorted speaker order, named after
        the speaker.
    """
    keys = _as_strings(speakers, "speakers")
    unique = sorted(set(keys))
    if len(unique) < 2:
        raise ConfigError(
            f"leave-one-speaker-out needs at least 2 speakers, got {len(unique)} ({unique}): "
            "add a corpus or use --protocol random"
        )
    index = np.arange(len(keys))
    return [Split(s, index[keys != s], index[keys == s]) for s in unique]


def speaker_kfold(
    speakers: SampleValues,
    *,
    k: int,
    seed: int | np.random.Generator | None = 0,
    labels: SampleValues | None = None,
    strata: SampleValues | None = None,
) -> list[Split]:
    """``k`` speaker-disjoint folds, balanced in speakers, stratified where possible.

    Speakers are assigned greedily, largest first (ties shuffled by ``seed``),
    each to the fold that (1) has the fewest speakers, (2) then the fewest
    speakers of the same stratum (e.g. gender), (3) then whose label counts,
    once the speaker is added, stay closest to the corpus label distribution,
    (4) then has the fewest samples. Fold sizes in speakers differ by at most
    one. RAVDESS (24 actors, 12 per gender) with ``k=6`` and
    ``strata=genders`` gives 6 folds of 2 female + 2 male actors.

    Parameters
    ----------
    speakers : sequence of str [shape=(n,)]
        Speaker key of each sample.
    k : int
        Number of folds, ``2 <= k <= number of speakers``.
    seed : int or numpy.random.Generator
        Breaks ties between equally sized speakers.
    labels : sequence [shape=(n,)], optional
        Class of each sample, for label stratification.
    strata : sequence [shape=(n,)], optional
        A per-speaker attribute (e.g. gender) to spread evenly over folds. The
        value of a speaker's first sample is used.

    Returns
    -------
    list of Split
        ``k`` splits named ``fold-1`` … ``fold-k``; every sample is in exactly
        one test set.
    """
    keys = _as_strings(speakers, "speakers")
    n = len(keys)
    unique = sorted(set(keys))
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise ConfigError(f"speaker k-fold needs k >= 2 folds, got {k!r}")
    if k > len(unique):
        raise ConfigError(
            f"speaker k-fold with k={k} needs at least {k} speakers, got {len(unique)}: "
            f"lower --folds to at most {len(unique)} or use --protocol loso"
        )
    for name, values in (("labels", labels), ("strata", strata)):
        if values is not None and len(values) != n:
            raise ConfigError(f"{name} has {len(values)} entries but speakers has {n}: give one per sample")

    label_ids = np.zeros(n, dtype=np.int64)
    if labels is not None:
        _, label_ids = np.unique(np.asarray([str(v) for v in labels]), return_inverse=True)
    n_labels = int(label_ids.max()) + 1
    target = np.bincount(label_ids, minlength=n_labels) / n  # label distribution to keep

    by_speaker = {s: np.flatnonzero(keys == s) for s in unique}
    stratum_of = {s: (str(strata[idx[0]]) if strata is not None else "") for s, idx in by_speaker.items()}
    counts_of = {s: np.bincount(label_ids[idx], minlength=n_labels) for s, idx in by_speaker.items()}

    rng = _rng(seed)
    tiebreak = dict(zip(unique, rng.permutation(len(unique))))
    # Strata in turn (so each stratum is dealt round the folds), largest speakers first.
    order = sorted(unique, key=lambda s: (stratum_of[s], -len(by_speaker[s]), tiebreak[s]))

    fold_speakers: list[list[str]] = [[] for _ in range(k)]
    fold_counts = np.zeros((k, n_labels))
    for s in order:

        def cost(f: int, s: str = s) -> tuple:
            counts = fold_counts[f] + counts_of[s]
            mismatch = float(np.sum((counts / counts.sum() - target) ** 2))
            same_stratum = sum(stratum_of[t] == stratum_of[s] for t in fold_speakers[f])
            return (len(fold_speakers[f]), same_stratum, round(mismatch, 12), fold_counts[f].sum(), f)

        best = min(range(k), key=cost)
        fold_speakers[best].append(s)
        fold_counts[best] += counts_of[s]

    index = np.arange(n)
    splits = []
    for f, members in enumerate(fold_speakers):
        test = np.isin(keys, members)
        splits.append(Split(f"fold-{f + 1}", index[~test], index[test]))
    return splits


def cross_corpus(
    corpora: SampleValues,
    *,
    train: Sequence[str] | str,
    test: Sequence[str] | str,
) -> list[Split]:
    """Train on the ``train`` corpora, test on each ``test`` corpus.

    Parameters
    ----------
    corpora : sequence of str [shape=(n,)]
        Corpus name of each sample.
    train : str or sequence of str
        Corpora to train on.
    test : str or sequence of str
        Corpora to test on: one split per test corpus, named
        ``"ravdess+emodb->emovo"``. Must not overlap ``train``.

    Returns
    -------
    list of Split
    """
    names = _as_strings(corpora, "corpora")
    train = (train,) if isinstance(train, str) else tuple(train)
    test = (test,) if isinstance(test, str) else tuple(test)
    if not train or not test:
        raise ConfigError("cross-corpus needs at least one training and one test corpus (--test-corpus)")
    overlap = sorted(set(train) & set(test))
    if overlap:
        raise ConfigError(
            f"cross-corpus: {', '.join(overlap)} is both a training and a test corpus; "
            "a corpus is either trained on or tested on"
        )
    present = set(names)
    missing = [c for c in (*train, *test) if c not in present]
    if missing:
        raise ConfigError(
            f"cross-corpus: no samples of corpus {', '.join(missing)}; samples come from {', '.join(sorted(present))}"
        )
    index = np.arange(len(names))
    train_idx = index[np.isin(names, train)]
    return [Split(f"{'+'.join(train)}->{name}", train_idx, index[names == name]) for name in test]


def random_stratified(
    labels: SampleValues,
    *,
    test_fraction: float = 0.2,
    seed: int | np.random.Generator | None = 0,
) -> list[Split]:
    """One random split, stratified by label, ignoring speakers.

    .. warning:: The same speakers (and, with acted corpora, the same
       sentences) land on both sides, which inflates the figures. Report it
       only beside a speaker-independent result.

    Parameters
    ----------
    labels : sequence [shape=(n,)]
        Class of each sample.
    test_fraction : float
        Fraction of each class sent to the test set, in (0, 1). Each class
        with at least two samples gets at least one test and one training
        sample.
    seed : int or numpy.random.Generator

    Returns
    -------
    list of Split
        A single split named ``"random"``.
    """
    classes = _as_strings(labels, "labels")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    rng = _rng(seed)
    test: list[np.ndarray] = []
    for value in sorted(set(classes)):
        members = rng.permutation(np.flatnonzero(classes == value))
        n_test = int(round(test_fraction * len(members)))
        if len(members) >= 2:
            n_test = min(max(n_test, 1), len(members) - 1)
        test.append(members[:n_test])
    test_idx = np.concatenate(test)
    mask = np.zeros(len(classes), dtype=bool)
    mask[test_idx] = True
    index = np.arange(len(classes))
    return [Split("random", index[~mask], index[mask])]


def stratified_kfold(labels: SampleValues, *, k: int, seed: int | np.random.Generator | None = 0) -> list[Split]:
    """``k`` folds over samples, each class dealt round the folds in a random order; speakers ignored.

    .. warning:: Not speaker-independent: a speaker's samples land in several
       folds. Use it only where the speakers are unknown (or there is one).

    Parameters
    ----------
    labels : sequence [shape=(n,)]
        Class of each sample.
    k : int
        Number of folds, ``2 <= k <= n``.
    seed : int or numpy.random.Generator

    Returns
    -------
    list of Split
        ``k`` splits named ``fold-1`` … ``fold-k``; every sample is in exactly
        one test set; class counts per fold differ by at most one.
    """
    classes = _as_strings(labels, "labels")
    if not isinstance(k, (int, np.integer)) or not 2 <= k <= len(classes):
        raise ConfigError(f"stratified k-fold needs 2 <= k <= {len(classes)} (the samples), got {k!r}")
    rng = _rng(seed)
    fold_of = np.empty(len(classes), dtype=np.int64)
    offset = 0
    for value in sorted(set(classes)):
        members = rng.permutation(np.flatnonzero(classes == value))
        fold_of[members] = (offset + np.arange(members.size)) % k
        offset += members.size  # the next class starts where this one stopped: fold sizes stay even
    index = np.arange(len(classes))
    return [Split(f"fold-{f + 1}", index[fold_of != f], index[fold_of == f]) for f in range(k)]


def speaker_validation_split(
    speakers: SampleValues,
    train_idx: Sequence[int] | np.ndarray,
    *,
    fraction: float = 0.2,
    seed: int | np.random.Generator | None = 0,
    labels: SampleValues | None = None,
) -> Split:
    """Carve a validation set out of the training speakers of a split.

    Whole speakers move to validation, so early stopping and model selection
    never see a test speaker nor a validation speaker's other recordings.

    Parameters
    ----------
    speakers : sequence of str [shape=(n,)]
        Speaker key of every sample (the full list the split indexes).
    train_idx : sequence of int
        The training indices of the outer split.
    fraction : float
        Approximate fraction of training *speakers* held out, in (0, 1); at
        least one speaker is held out and at least one is kept.
    seed : int or numpy.random.Generator
    labels : sequence [shape=(n,)], optional
        Passed to :func:`speaker_kfold` for label stratification.

    Returns
    -------
    Split
        ``train_idx`` = samples to fit on, ``test_idx`` = validation samples;
        both are subsets of the given ``train_idx`` (indices into the full
        list).
    """
    keys = _as_strings(speakers, "speakers")
    outer_train = _as_index(train_idx)
    if not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), got {fraction!r}")
    inner = keys[outer_train]
    n_speakers = len(set(inner))
    if n_speakers < 2:
        raise ConfigError(f"a speaker-disjoint validation split needs at least 2 training speakers, got {n_speakers}")
    k = min(n_speakers, max(2, int(round(1.0 / float(fraction)))))
    inner_labels = None if labels is None else [labels[i] for i in outer_train]
    fold = speaker_kfold(inner, k=k, seed=seed, labels=inner_labels)[0]
    return Split("validation", outer_train[fold.train_idx], outer_train[fold.test_idx])
