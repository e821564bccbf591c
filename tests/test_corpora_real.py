"""Exact counts of the loaders on the shared corpora (skipped when they are absent)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from emovox.corpora import default_corpora_root, default_corpus_dir, load_corpus
from emovox.labels import EMOTIONS, apply_scheme

pytestmark = [
    pytest.mark.corpora,
    pytest.mark.skipif(
        not default_corpora_root().is_dir(),
        reason=f"shared corpora not found at {default_corpora_root()}",
    ),
]


def _load(name: str):
    folder = default_corpus_dir(name)
    if not folder.is_dir():
        pytest.skip(f"{name} not found at {folder}")
    return load_corpus(name)


@pytest.fixture(scope="module")
def ravdess():
    return _load("ravdess")


def test_ravdess_counts(ravdess):
    assert len(ravdess) == 1440
    per_actor = Counter(r.speaker for r in ravdess)
    assert sorted(per_actor) == [f"{i:02d}" for i in range(1, 25)]
    assert set(per_actor.values()) == {60}
    for r in ravdess:
        assert r.gender == ("male" if int(r.speaker) % 2 else "female")
    per_emotion = Counter(r.emotion for r in ravdess)
    assert per_emotion == {
        "neutral": 96,
        "calm": 192,
        "happy": 192,
        "sad": 192,
        "angry": 192,
        "fearful": 192,
        "disgust": 192,
        "surprised": 192,
    }
    assert not any(r.emotion == "neutral" and r.intensity == "strong" for r in ravdess)
    assert {r.corpus for r in ravdess} == {"ravdess"}
    assert {r.language for r in ravdess} == {"en"}
    assert {r.sentence for r in ravdess} == {"01", "02"}


def test_ravdess_records_sorted_absolute_and_existing(ravdess):
    paths = [r.path for r in ravdess]
    assert paths == sorted(paths)
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in paths[:50])


def test_ravdess_song_excerpt():
    song = _load("ravdess-song")
    assert len(song) == 88
    assert Counter(r.speaker for r in song) == {"01": 44, "02": 44}
    assert {r.corpus for r in song} == {"ravdess-song"}
    emotions = Counter(r.emotion for r in song)
    assert "disgust" not in emotions and "surprised" not in emotions
    assert emotions == {"neutral": 8, "calm": 16, "happy": 16, "sad": 16, "angry": 16, "fearful": 16}
    # Same actors as speech: same speaker keys, so speaker-independent splits hold.
    assert {r.speaker_key for r in song} == {"ravdess/01", "ravdess/02"}


def test_emodb_counts():
    emodb = _load("emodb")
    assert len(emodb) == 535
    assert sorted({r.speaker for r in emodb}) == ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"]
    assert Counter(r.emotion for r in emodb) == {
        "angry": 127,
        "boredom": 81,
        "disgust": 46,
        "fearful": 69,
        "happy": 71,
        "sad": 62,
        "neutral": 79,
    }
    genders = {r.speaker: r.gender for r in emodb}
    assert {s for s, g in genders.items() if g == "male"} == {"03", "10", "11", "12", "15"}
    assert {s for s, g in genders.items() if g == "female"} == {"08", "09", "13", "14", "16"}
    assert {r.language for r in emodb} == {"de"}
    # boredom is canonical but most schemes drop it
    kept, labels = apply_scheme(emodb, "seven")
    assert len(kept) == 535 - 81 and len(labels) == len(kept)


def test_emovo_counts():
    emovo = _load("emovo")
    assert len(emovo) == 588
    assert Counter(r.speaker for r in emovo) == dict.fromkeys(("f1", "f2", "f3", "m1", "m2", "m3"), 98)
    assert set(Counter(r.emotion for r in emovo).values()) == {84}
    assert {r.emotion for r in emovo} == {
        "disgust",
        "happy",
        "fearful",
        "angry",
        "surprised",
        "sad",
        "neutral",
    }
    assert all(r.gender == ("female" if r.speaker[0] == "f" else "male") for r in emovo)
    assert len({r.sentence for r in emovo}) == 14


def test_turev_counts():
    turev = _load("turev")
    assert len(turev) == 1735
    speakers = Counter(r.speaker for r in turev)
    assert len(speakers) == 6
    assert {r.emotion for r in turev if r.speaker == "1157"} == {"angry", "sad"}
    assert Counter(r.emotion for r in turev) == {"angry": 487, "calm": 408, "happy": 357, "sad": 483}
    assert {r.language for r in turev} == {"tr"} and {r.gender for r in turev} == {None}


def test_all_records_use_canonical_emotions():
    for name in ("ravdess", "ravdess-song", "emodb", "emovo", "turev"):
        for r in _load(name):
            assert r.emotion in EMOTIONS
