"""Leave one corpus out on the shared emotions (emovox.evaluation.cross_corpus)."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.corpora import default_corpora_root, load_corpus
from emovox.errors import ConfigError
from emovox.evaluation.cross_corpus import leave_one_corpus_out, shared_classes, shared_scheme


def test_shared_classes_merge_calm_into_neutral_and_keep_canonical_order():
    corpora = ["a"] * 4 + ["b"] * 3 + ["c"] * 3
    emotions = ["sad", "neutral", "angry", "fearful", "calm", "angry", "sad", "angry", "neutral", "sad"]
    assert shared_classes(corpora, emotions) == ("neutral", "sad", "angry")
    assert shared_classes(corpora, emotions, merge={}) == ("sad", "angry")
    scheme = shared_scheme(corpora, emotions)
    assert scheme.classes == ("neutral", "sad", "angry")
    assert scheme.class_of("calm") == "neutral" and scheme.class_of("fearful") is None


def test_shared_classes_errors():
    with pytest.raises(ConfigError, match="share no emotion"):
        shared_classes(["a", "b"], ["sad", "angry"])
    with pytest.raises(ConfigError, match="at least 2 corpora"):
        shared_classes(["a", "a"], ["sad", "angry"])
    with pytest.raises(ConfigError, match="one of each"):
        shared_classes(["a", "b"], ["sad"])


def test_leave_one_corpus_out_tests_each_corpus_once_and_never_trains_on_it():
    corpora = ["x", "y", "x", "z", "y", "z", "z"]
    splits = leave_one_corpus_out(corpora)
    assert [s.name for s in splits] == ["y+z->x", "x+z->y", "x+y->z"]
    tested = np.concatenate([s.test_idx for s in splits])
    assert sorted(tested.tolist()) == list(range(len(corpora)))
    for s in splits:
        held = {corpora[i] for i in s.test_idx}
        assert len(held) == 1 and not held & {corpora[i] for i in s.train_idx}
    with pytest.raises(ConfigError, match="at least 2 corpora"):
        leave_one_corpus_out(["x", "x"])


@pytest.mark.skipif(not (default_corpora_root() / "turev-db").is_dir(), reason="shared corpora not available")
def test_the_four_shared_corpora_share_angry_happy_sad_neutral():
    records = [r for c in ("ravdess", "emodb", "emovo", "turev") for r in load_corpus(c)]
    classes = shared_classes([r.corpus for r in records], [r.emotion for r in records])
    assert classes == ("neutral", "happy", "sad", "angry")
