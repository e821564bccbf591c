"""Canonical emotions, named label schemes and user mappings."""

from __future__ import annotations

import json
import string

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from emovox.corpora.records import Record
from emovox.errors import ConfigError
from emovox.labels import (
    EMOTIONS,
    LabelScheme,
    apply_scheme,
    canonical_emotion,
    format_mapping,
    get_scheme,
    load_mapping,
    parse_mapping,
    resolve_scheme,
    scheme_names,
)


def rec(emotion: str, name: str = "a") -> Record:
    return Record(path=f"/x/{name}.wav", corpus="t", speaker="s", label=emotion, emotion=emotion, language="en")


def test_named_schemes():
    assert scheme_names() == sorted(
        ["emovox7", "native", "ravdess8", "seven", "six-calm-merged", "six-no-sad-surprised"]
    )
    product = get_scheme("emovox7")
    assert product.classes == ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    assert product.class_of("calm") == "neutral" and not product.keeps("boredom")
    assert get_scheme("native").classes == EMOTIONS
    seven = get_scheme("seven")
    assert len(seven.classes) == 7 and seven.class_of("calm") == "neutral"
    assert not seven.keeps("boredom")
    six = get_scheme("six-no-sad-surprised")
    assert not six.keeps("sad") and not six.keeps("surprised") and six.keeps("calm")
    with pytest.raises(ConfigError, match="unknown label scheme 'eight'.*native"):
        get_scheme("eight")


def test_apply_scheme_keeps_order_and_indexes():
    records = [rec(e, str(i)) for i, e in enumerate(["calm", "sad", "boredom", "neutral", "angry"])]
    kept, labels = apply_scheme(records, "seven")
    assert [r.emotion for r in kept] == ["calm", "sad", "neutral", "angry"]
    classes = get_scheme("seven").classes
    assert labels.dtype == np.int64
    assert [classes[i] for i in labels] == ["neutral", "sad", "neutral", "angry"]
    kept, labels = apply_scheme([], "native")
    assert kept == [] and labels.shape == (0,)


def test_canonical_emotion_aliases():
    assert canonical_emotion("Anger") == "angry"
    assert canonical_emotion(" fear ") == "fearful"
    assert canonical_emotion("HAPPY") == "happy"
    assert canonical_emotion("glee") is None


def test_parse_mapping():
    assert parse_mapping(" a = b, c=b ,d=-,e=") == {"a": "b", "c": "b", "d": None, "e": None}
    with pytest.raises(ConfigError, match="bad mapping entry 'ab'"):
        parse_mapping("ab,c=d")
    with pytest.raises(ConfigError, match="maps 'a' twice"):
        parse_mapping("a=b,a=c")
    with pytest.raises(ConfigError, match="empty mapping"):
        parse_mapping(" , ")


def test_resolve_inline_scheme():
    scheme = resolve_scheme("angry=neg,sad=neg,happy=pos,neutral=neu,calm=-")
    assert scheme.classes == ("neg", "pos", "neu")
    assert scheme.index_of("sad") == 0 and scheme.index_of("calm") is None
    assert scheme.index_of("boredom") is None  # unnamed emotions are dropped
    with pytest.raises(ConfigError, match="maps 'joy'|unknown emotion 'joy'"):
        resolve_scheme("joy=pos")
    with pytest.raises(ConfigError, match="classes must be unique and non-empty"):
        resolve_scheme("sad=-")


def test_resolve_scheme_json_files(tmp_path):
    flat = tmp_path / "valence.json"
    flat.write_text(json.dumps({"happy": "pos", "sad": "neg", "calm": None}))
    scheme = resolve_scheme(str(flat))
    assert scheme.name == "valence" and scheme.classes == ("pos", "neg")
    full = tmp_path / "full.json"
    full.write_text(json.dumps(get_scheme("seven").to_dict()))
    assert resolve_scheme(str(full)).classes == get_scheme("seven").classes
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        resolve_scheme(str(bad))
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_scheme(str(tmp_path / "none.json"))
    with pytest.raises(ConfigError, match="unknown label scheme 'nine'.*inline mapping"):
        resolve_scheme("nine")


def test_load_mapping_sources(tmp_path):
    assert load_mapping({"a": "b", "c": None}) == {"a": "b", "c": None}
    assert load_mapping("a=b") == {"a": "b"}
    path = tmp_path / "m.json"
    path.write_text('{"a": "-"}')
    assert load_mapping(str(path)) == {"a": None}
    with pytest.raises(ConfigError, match="neither 'a=b,c=-' pairs nor an existing JSON file"):
        load_mapping("nothing")


_label = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=10)


@given(st.dictionaries(_label, st.none() | _label, min_size=1, max_size=8))
def test_mapping_text_round_trip(mapping):
    assert parse_mapping(format_mapping(mapping)) == mapping


@given(st.dictionaries(st.sampled_from(EMOTIONS), st.sampled_from(["a", "b", "c", None]), min_size=1))
def test_inline_scheme_matches_from_mapping(mapping):
    if all(v is None for v in mapping.values()):
        with pytest.raises(ConfigError):
            resolve_scheme(format_mapping(mapping))
        return
    scheme = resolve_scheme(format_mapping(mapping))
    assert scheme == LabelScheme.from_mapping("custom", mapping)
    assert LabelScheme.from_dict(scheme.to_dict()) == scheme
    records = [rec(e, e) for e in EMOTIONS]
    kept, labels = apply_scheme(records, scheme)
    assert [r.emotion for r in kept] == [e for e in EMOTIONS if mapping.get(e) is not None]
    assert all(scheme.classes[i] == mapping[r.emotion] for r, i in zip(kept, labels))
