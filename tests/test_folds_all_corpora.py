"""The documented speaker folds (``emovox.evaluation.folds_all_corpora``)."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.corpora.records import Record
from emovox.errors import ConfigError
from emovox.evaluation import speaker_kfold
from emovox.evaluation.folds_all_corpora import ALL_CORPORA, all_corpora_folds, ravdess_actor_folds
from emovox.evaluation.robustness import speaker_folds

EMOTIONS = ("neutral", "happy", "sad", "angry")


def _record(corpus: str, speaker: str, i: int) -> Record:
    emotion = EMOTIONS[i % len(EMOTIONS)]
    return Record(f"/{corpus}/{speaker}/{i}.wav", corpus, speaker, emotion, emotion, "en")


def _pooled() -> tuple[list[Record], np.ndarray]:
    speakers = {"ravdess": 24, "emodb": 10, "emovo": 6, "turev": 6}
    records = [
        _record(corpus, f"{s + 1:02d}", i) for corpus in ALL_CORPORA for s in range(speakers[corpus]) for i in range(8)
    ]
    return records, np.array([EMOTIONS.index(r.emotion) for r in records])


def test_all_corpora_folds_partition_the_clips_with_no_speaker_on_both_sides() -> None:
    records, y = _pooled()
    folds = all_corpora_folds(records, y)
    assert len(folds) == 6
    tested = np.sort(np.concatenate([f.test_idx for f in folds]))
    assert np.array_equal(tested, np.arange(len(records)))
    keys = np.array([r.speaker_key for r in records])
    corpora = np.array([r.corpus for r in records])
    for fold in folds:
        assert not set(keys[fold.train_idx]) & set(keys[fold.test_idx])
        # stratified by corpus: every fold tests an EMOVO and a TurEV-DB speaker (6 of each, 6 folds)
        assert {"emovo", "turev"} <= set(corpora[fold.test_idx])


def test_all_corpora_folds_are_the_documented_speaker_kfold_and_the_model_card_folds() -> None:
    records, y = _pooled()
    expected = speaker_kfold(
        [r.speaker_key for r in records], k=3, seed=0, labels=list(y), strata=[r.corpus for r in records]
    )
    for got in (all_corpora_folds(records, y, k=3), speaker_folds(records, y)):
        assert [f.name for f in got] == [f.name for f in expected]
        for a, b in zip(got, expected, strict=True):
            assert np.array_equal(a.test_idx, b.test_idx)


def test_all_corpora_folds_refuse_labels_of_another_length() -> None:
    records, y = _pooled()
    with pytest.raises(ConfigError, match="one label per record"):
        all_corpora_folds(records, y[:-1])


def test_ravdess_actor_folds_test_four_consecutive_actors_each() -> None:
    records = [_record("ravdess", f"{a:02d}", i) for a in range(1, 25) for i in range(3)]
    folds = ravdess_actor_folds(records)
    assert [f.name for f in folds] == [f"actors{4 * j + 1:02d}-{4 * j + 4:02d}" for j in range(6)]
    for j, fold in enumerate(folds):
        assert {int(records[i].speaker) for i in fold.test_idx} == set(range(4 * j + 1, 4 * j + 5))
        assert {int(records[i].speaker) for i in fold.train_idx}.isdisjoint(range(4 * j + 1, 4 * j + 5))


def test_ravdess_actor_folds_refuse_other_corpora() -> None:
    with pytest.raises(ConfigError, match="RAVDESS only"):
        ravdess_actor_folds([_record("ravdess", "01", 0), _record("emodb", "03", 1)])
