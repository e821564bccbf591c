"""The speaker folds the documented figures use, defined once.

Every figure in ``docs/accurate_model.md``, ``docs/robustness.md``,
``docs/flagship_experiments.md`` and ``docs/whisper_backbone.md`` is measured
on one of these fixed, speaker-disjoint partitions:

- :func:`all_corpora_folds`: the four shared corpora pooled (``emovox7``
  labels), ``k`` speaker-disjoint folds stratified by corpus, seed 0. With
  ``k=6`` (the default recipe's table, ``bench/default_model_table.py``) each
  fold tests one EMOVO and one TurEV-DB speaker, four RAVDESS actors and one
  or two EMO-DB speakers; with ``k=3`` they are the model card's folds
  (:func:`emovox.evaluation.robustness.speaker_folds`).
- :func:`ravdess_actor_folds`: RAVDESS alone, 6 folds of 4 consecutive actors
  (fold ``j`` tests actors ``4j+1 .. 4j+4``: two female and two male), the
  flagship's and the single-corpus Whisper tables' RAVDESS protocol.

EMO-DB and EMOVO alone use :func:`emovox.evaluation.leave_one_speaker_out`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from emovox.errors import ConfigError
from emovox.evaluation.protocols import Split, leave_one_speaker_out, speaker_kfold

if TYPE_CHECKING:
    from emovox.corpora.records import Record

__all__ = ["ALL_CORPORA", "ALL_CORPORA_SCHEME", "all_corpora_folds", "ravdess_actor_folds"]

#: The four shared corpora of the default model, in the documented order.
ALL_CORPORA: tuple[str, ...] = ("ravdess", "emodb", "emovo", "turev")
#: The label scheme of the all-corpora protocol (calm counted as neutral, boredom dropped).
ALL_CORPORA_SCHEME = "emovox7"
_ACTORS_PER_FOLD = 4
_RAVDESS_ACTORS = 24


def all_corpora_folds(records: Sequence[Record], y: np.ndarray | Sequence[int], *, k: int = 6) -> list[Split]:
    """Speaker-disjoint folds over pooled corpora, stratified by corpus (seed 0).

    Parameters
    ----------
    records : sequence of Record [shape=(n,)]
        The clips, e.g. from :func:`emovox.evaluation.robustness.corpus_clips`
        (the four :data:`ALL_CORPORA` under :data:`ALL_CORPORA_SCHEME`).
    y : array_like of int [shape=(n,)]
        Class id of each clip; the greedy assignment balances label counts.
    k : int, default 6
        Number of folds: 6 for the default recipe's table, 3 for the model card.

    Returns
    -------
    list of Split
        ``k`` splits whose test sides partition the clips; no speaker is on
        both sides of any split.

    Raises
    ------
    ConfigError
        If ``records`` and ``y`` differ in length, or ``k`` is not
        between 2 and the number of speakers.
    """
    if len(records) != len(y):
        raise ConfigError(f"{len(records)} records but {len(y)} labels: give one label per record")
    return speaker_kfold(
        [r.speaker_key for r in records], k=k, seed=0, labels=list(y), strata=[r.corpus for r in records]
    )


def ravdess_actor_folds(records: Sequence[Record]) -> list[Split]:
    """RAVDESS's 6 folds of 4 consecutive actors (fold ``j`` tests actors ``4j+1 .. 4j+4``).

    Parameters
    ----------
    records : sequence of Record [shape=(n,)]
        RAVDESS clips (``record.speaker`` is the actor number, ``"01"`` to ``"24"``).

    Returns
    -------
    list of Split
        One split per group of four actors present, named ``"actors01-04"`` …
        ``"actors21-24"``, in that order.

    Raises
    ------
    ConfigError
        If a record is not a RAVDESS clip with an actor number from 1 to 24.
    """
    groups = []
    for r in records:
        if r.corpus != "ravdess" or not r.speaker.isdigit() or not 1 <= int(r.speaker) <= _RAVDESS_ACTORS:
            raise ConfigError(
                f"{r.path}: not a RAVDESS clip with an actor number 01-24 "
                f"(corpus {r.corpus!r}, speaker {r.speaker!r}); the actor folds are for RAVDESS only"
            )
        first = (int(r.speaker) - 1) // _ACTORS_PER_FOLD * _ACTORS_PER_FOLD + 1
        groups.append(f"actors{first:02d}-{first + _ACTORS_PER_FOLD - 1:02d}")
    return leave_one_speaker_out(groups)
