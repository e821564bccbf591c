"""Leave one corpus out on the emotions every corpus shares: the figure that predicts a user's own recordings.

:func:`shared_scheme` finds the classes all given corpora have (after merging
near-synonyms, by default calm into neutral, as the ``emovox7`` scheme does)
and returns a :class:`~emovox.labels.LabelScheme` mapping each canonical
emotion onto them (everything else dropped). :func:`leave_one_corpus_out`
gives one split per corpus: train on all the others, test on it. Both work on
plain sequences (corpus name and canonical emotion of each record), so any
model plugs in.

For RAVDESS, EMO-DB, EMOVO and TurEV-DB the shared classes are
``neutral`` (calm counted as neutral: TurEV-DB has calm but no neutral),
``happy``, ``sad`` and ``angry``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from emovox.errors import ConfigError
from emovox.evaluation.protocols import Split
from emovox.labels import EMOTIONS, LabelScheme

__all__ = ["DEFAULT_MERGE", "shared_classes", "shared_scheme", "leave_one_corpus_out"]

#: Emotions counted as another before intersecting (the ``emovox7`` merge).
DEFAULT_MERGE: Mapping[str, str] = {"calm": "neutral"}


def _merged(emotion: str, merge: Mapping[str, str]) -> str:
    return merge.get(emotion, emotion)


def shared_classes(
    corpora: Sequence[str], emotions: Sequence[str], *, merge: Mapping[str, str] = DEFAULT_MERGE
) -> tuple[str, ...]:
    """Classes present in every corpus, in :data:`~emovox.labels.EMOTIONS` order.

    Parameters
    ----------
    corpora, emotions : sequence of str [shape=(n,)]
        Corpus name and canonical emotion of each record.
    merge : mapping
        Emotion -> class it counts as (default: calm -> neutral).
    """
    if len(corpora) != len(emotions):
        raise ConfigError(f"{len(corpora)} corpus names but {len(emotions)} emotions: give one of each per record")
    names = sorted(set(corpora))
    if len(names) < 2:
        raise ConfigError(f"leave one corpus out needs at least 2 corpora, got {names}")
    per_corpus: dict[str, set[str]] = {c: set() for c in names}
    for c, e in zip(corpora, emotions):
        per_corpus[c].add(_merged(e, merge))
    shared = set.intersection(*per_corpus.values())
    if not shared:
        raise ConfigError(
            f"corpora {', '.join(names)} share no emotion: "
            + "; ".join(f"{c}: {', '.join(sorted(v))}" for c, v in per_corpus.items())
        )
    return tuple(e for e in EMOTIONS if e in shared)


def shared_scheme(
    corpora: Sequence[str], emotions: Sequence[str], *, merge: Mapping[str, str] = DEFAULT_MERGE, name: str = "shared"
) -> LabelScheme:
    """A label scheme onto :func:`shared_classes` (merged emotions included, the rest dropped)."""
    classes = shared_classes(corpora, emotions, merge=merge)
    mapping = {e: (_merged(e, merge) if _merged(e, merge) in classes else None) for e in EMOTIONS}
    return LabelScheme(name=name, classes=classes, mapping=mapping)


def leave_one_corpus_out(corpora: Sequence[str]) -> list[Split]:
    """One split per corpus (sorted by name): train on every other corpus, test on it.

    Splits are named ``"emodb+emovo+turev->ravdess"``.
    """
    corpus_of = np.asarray([str(c) for c in corpora], dtype=object)
    names = sorted(set(corpus_of))
    if len(names) < 2:
        raise ConfigError(f"leave one corpus out needs at least 2 corpora, got {names}")
    index = np.arange(len(corpus_of))
    return [
        Split(f"{'+'.join(c for c in names if c != held)}->{held}", index[corpus_of != held], index[corpus_of == held])
        for held in names
    ]
