"""Evaluation protocols: speaker independence, coverage, disjointness."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emovox.errors import ConfigError
from emovox.evaluation.protocols import (
    Split,
    check_speaker_disjoint,
    cross_corpus,
    leave_one_speaker_out,
    random_stratified,
    speaker_kfold,
    speaker_validation_split,
)


@st.composite
def layouts(draw, min_speakers=2):
    """Random speaker/label layouts: (speakers, labels) per sample, shuffled order."""
    n_speakers = draw(st.integers(min_speakers, 12))
    n_labels = draw(st.integers(1, 5))
    speakers, labels = [], []
    for s in range(n_speakers):
        n = draw(st.integers(1, 12))
        speakers += [f"c/{s:02d}"] * n
        labels += draw(st.lists(st.integers(0, n_labels - 1), min_size=n, max_size=n))
    order = draw(st.permutations(range(len(speakers))))
    return np.array(speakers, dtype=object)[list(order)], np.array(labels)[list(order)]


def _assert_partition(splits: list[Split], n: int) -> None:
    tested = np.concatenate([s.test_idx for s in splits])
    assert sorted(tested.tolist()) == list(range(n)), "every sample tested exactly once"
    for s in splits:
        assert set(s.train_idx.tolist()).isdisjoint(s.test_idx.tolist())
        assert len(s.train_idx) + len(s.test_idx) == n


@settings(max_examples=60, deadline=None)
@given(layouts())
def test_loso_is_speaker_disjoint_and_tests_everything_once(layout):
    speakers, _ = layout
    splits = leave_one_speaker_out(speakers)
    assert len(splits) == len(set(speakers))
    _assert_partition(splits, len(speakers))
    for split in splits:
        assert check_speaker_disjoint(split, speakers) == []
        assert set(speakers[split.test_idx]) == {split.name}


@settings(max_examples=80, deadline=None)
@given(layouts(), st.integers(2, 12), st.integers(0, 2**16))
def test_speaker_kfold_is_speaker_disjoint_balanced_and_complete(layout, k, seed):
    speakers, labels = layout
    n_speakers = len(set(speakers))
    if k > n_speakers:
        with pytest.raises(ConfigError, match="lower --folds"):
            speaker_kfold(speakers, k=k, seed=seed, labels=labels)
        return
    splits = speaker_kfold(speakers, k=k, seed=seed, labels=labels)
    assert len(splits) == k
    _assert_partition(splits, len(speakers))
    per_fold = [len(set(speakers[s.test_idx])) for s in splits]
    assert max(per_fold) - min(per_fold) <= 1, per_fold
    for split in splits:
        assert check_speaker_disjoint(split, speakers) == []


def test_speaker_kfold_is_deterministic_per_seed():
    speakers = np.repeat([f"s{i}" for i in range(10)], 5)
    a = speaker_kfold(speakers, k=5, seed=3)
    b = speaker_kfold(speakers, k=5, seed=3)
    assert all(np.array_equal(x.test_idx, y.test_idx) for x, y in zip(a, b))


def test_speaker_kfold_ravdess_shape_six_folds_of_four_gender_balanced():
    actors = [f"ravdess/{a:02d}" for a in range(1, 25)]
    speakers = np.repeat(actors, 60)
    genders = np.repeat(["male" if a % 2 else "female" for a in range(1, 25)], 60)
    labels = np.tile(np.repeat(np.arange(8), [4, 8, 8, 8, 8, 8, 8, 8]), 24)
    splits = speaker_kfold(speakers, k=6, seed=0, labels=labels, strata=genders)
    for split in splits:
        test_actors = sorted(set(speakers[split.test_idx]))
        assert len(test_actors) == 4
        assert sorted(set(genders[split.test_idx])) == ["female", "male"]
        assert (genders[split.test_idx] == "male").sum() == 120


def test_speaker_kfold_stratifies_labels_when_speakers_differ():
    # Speakers 0-3 only say class 0, 4-7 only class 1: a fold should get both.
    speakers = np.repeat([f"s{i}" for i in range(8)], 10)
    labels = np.repeat([0] * 4 + [1] * 4, 10)
    for split in speaker_kfold(speakers, k=4, seed=1, labels=labels):
        assert set(labels[split.test_idx]) == {0, 1}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["ravdess", "emodb", "emovo", "turev"]), min_size=2, max_size=60))
def test_cross_corpus_is_disjoint_by_corpus(corpora):
    corpora = np.array(corpora, dtype=object)
    present = sorted(set(corpora))
    if len(present) < 2:
        return
    test, train = present[0], present[1:]
    (split,) = cross_corpus(corpora, train=train, test=test)
    assert set(corpora[split.test_idx]) == {test}
    assert set(corpora[split.train_idx]) == set(train)
    assert len(split.train_idx) + len(split.test_idx) == len(corpora)


def test_cross_corpus_rejects_overlap_and_missing():
    corpora = ["a", "a", "b"]
    with pytest.raises(ConfigError, match="both a training and a test corpus"):
        cross_corpus(corpora, train=["a", "b"], test="b")
    with pytest.raises(ConfigError, match="no samples of corpus c"):
        cross_corpus(corpora, train="a", test="c")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=2, max_size=200), st.floats(0.05, 0.95), st.integers(0, 999))
def test_random_stratified_partitions_and_stratifies(labels, fraction, seed):
    labels = np.array(labels)
    (split,) = random_stratified(labels, test_fraction=fraction, seed=seed)
    both = np.concatenate([split.train_idx, split.test_idx])
    assert sorted(both.tolist()) == list(range(len(labels))), "each sample on exactly one side"
    for value in set(labels.tolist()):
        count = int((labels == value).sum())
        in_test = int((labels[split.test_idx] == value).sum())
        if count >= 2:
            assert 1 <= in_test <= count - 1
        assert abs(in_test - fraction * count) <= 1.0


def test_random_split_leaks_speakers_and_is_flagged():
    speakers = np.repeat(["a", "b", "c"], 20)
    labels = np.tile([0, 1], 30)
    (split,) = random_stratified(labels, test_fraction=0.3, seed=0)
    assert check_speaker_disjoint(split, speakers) == ["a", "b", "c"]


@settings(max_examples=60, deadline=None)
@given(layouts(min_speakers=3), st.floats(0.1, 0.6), st.integers(0, 999))
def test_validation_split_uses_training_speakers_only(layout, fraction, seed):
    speakers, labels = layout
    outer = leave_one_speaker_out(speakers)[0]
    val = speaker_validation_split(speakers, outer.train_idx, fraction=fraction, seed=seed, labels=labels)
    assert sorted(np.concatenate([val.train_idx, val.test_idx]).tolist()) == outer.train_idx.tolist()
    assert len(val.train_idx) and len(val.test_idx)
    fit_speakers, val_speakers = set(speakers[val.train_idx]), set(speakers[val.test_idx])
    assert not fit_speakers & val_speakers
    assert not (fit_speakers | val_speakers) & set(speakers[outer.test_idx])


def test_protocol_errors_say_what_to_do():
    with pytest.raises(ConfigError, match="at least 2 speakers"):
        leave_one_speaker_out(["a", "a"])
    with pytest.raises(ConfigError, match="k >= 2"):
        speaker_kfold(["a", "b"], k=1)
    with pytest.raises(ConfigError, match=r"test_fraction must be in \(0, 1\)"):
        random_stratified([0, 1], test_fraction=1.5, seed=0)
    with pytest.raises(ConfigError, match="at least 2 training speakers"):
        speaker_validation_split(["a", "a", "b"], [0, 1])
    with pytest.raises(ConfigError, match="no speakers"):
        leave_one_speaker_out([])
