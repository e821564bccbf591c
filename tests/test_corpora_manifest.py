"""The generic loaders: CSV manifests and folder-per-label corpora."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emovox.corpora import load_corpus, write_manifest
from emovox.corpora.records import Record
from emovox.errors import ConfigError, CorpusError
from emovox.labels import EMOTIONS, apply_scheme, resolve_scheme


def touch_wav(path: Path, *, sample_rate_hz: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(80, dtype=np.float32), sample_rate_hz)
    return path


# --------------------------------------------------------------------- CSV


def test_csv_relative_paths_genders_and_mapping(tmp_path):
    touch_wav(tmp_path / "clips" / "a.wav")
    touch_wav(tmp_path / "clips" / "b.flac")
    touch_wav(tmp_path / "clips" / "c.wav")
    other = touch_wav(tmp_path.parent / f"{tmp_path.name}-elsewhere" / "d.wav")
    manifest = tmp_path / "meta.csv"
    manifest.write_text(
        "path,label,speaker,gender,language,extra\n"
        "clips/b.flac,joy,s2,F,de,x\n"
        "clips/a.wav,Anger,s1,m,,x\n"
        "clips/c.wav,other,s1,,,x\n"
        f"{other},neutral,s3,,,x\n"
    )
    records = load_corpus("csv", manifest, mapping="joy=happy,other=-", language="en")
    got = {Path(r.path).name: (r.label, r.emotion, r.speaker, r.gender, r.language) for r in records}
    assert got == {
        "a.wav": ("Anger", "angry", "s1", "male", "en"),
        "b.flac": ("joy", "happy", "s2", "female", "de"),
        "d.wav": ("neutral", "neutral", "s3", None, "en"),
    }  # c.wav ("other") dropped by the mapping
    assert all(Path(r.path).is_absolute() for r in records)
    assert {r.corpus for r in records} == {"csv"}
    assert records == sorted(records, key=lambda r: r.path)


def test_csv_folder_with_one_manifest(tmp_path):
    touch_wav(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text("path,label,speaker\na.wav,sad,x\n")
    assert [r.emotion for r in load_corpus("csv", tmp_path)] == ["sad"]
    (tmp_path / "n.csv").write_text("path,label,speaker\n")
    with pytest.raises(CorpusError, match="holds 2 .csv files"):
        load_corpus("csv", tmp_path)


def test_csv_mapping_from_json_file(tmp_path):
    touch_wav(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text("path,label,speaker\na.wav,positive,x\n")
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"positive": "happy", "meh": None}))
    assert load_corpus("csv", tmp_path / "m.csv", mapping=str(mapping))[0].emotion == "happy"


@pytest.mark.parametrize(
    "body, message",
    [
        ("path,label\na.wav,sad\n", r"lacks column\(s\) speaker"),
        ("path,label,speaker\na.wav,glee,x\n", r"line 2: label 'glee' is not a canonical emotion.*'glee=happy'"),
        ("path,label,speaker\nmissing.wav,sad,x\n", r"line 2: audio file .*missing\.wav' does not exist"),
        ("path,label,speaker\na.wav,sad,\n", r"line 2: empty 'speaker'"),
        ("path,label,speaker\na.wav,sad,x\na.wav,sad,x\n", r"line 3 repeats .*a\.wav' of line 2"),
        ("path,label,speaker,gender\na.wav,sad,x,robot\n", r"line 2: gender 'robot'"),
        ("path,label,speaker,emotion\na.wav,W,x,anger\n", r"line 2: emotion 'anger' is not canonical"),
        ("path,label,speaker\n", r"has no rows"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path, body, message):
    touch_wav(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text(body)
    with pytest.raises(CorpusError, match=r"m\.csv.*" + message):
        load_corpus("csv", tmp_path / "m.csv")


def test_csv_bad_mapping_target(tmp_path):
    touch_wav(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text("path,label,speaker\na.wav,joy,x\n")
    with pytest.raises(ConfigError, match="sends 'joy' to 'glee', which is not a canonical emotion"):
        load_corpus("csv", tmp_path / "m.csv", mapping="joy=glee")
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus("csv", tmp_path / "nope.csv")


# --------------------------------------------------------------------- round trip

_names = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=8)


@st.composite
def record_lists(draw, folder: Path):
    n = draw(st.integers(min_value=1, max_value=8))
    files = draw(st.lists(_names, min_size=n, max_size=n, unique=True))
    records = []
    for name in files:
        path = folder / f"{name}.wav"
        path.touch()  # loaders never decode; existence is all the CSV loader checks
        records.append(
            Record(
                path=str(path),
                corpus=draw(st.sampled_from(["csv", "mine", "ravdess"])),
                speaker=draw(_names),
                label=draw(_names),
                emotion=draw(st.sampled_from(EMOTIONS)),
                language=draw(st.sampled_from(["en", "de", "und"])),
                gender=draw(st.sampled_from([None, "female", "male"])),
                intensity=draw(st.none() | _names),
                sentence=draw(st.none() | _names),
            )
        )
    return sorted(records, key=lambda r: r.path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    scheme=st.sampled_from(
        [
            "native",
            "ravdess8",
            "seven",
            "six-calm-merged",
            "six-no-sad-surprised",
            "calm=neutral,neutral=neutral,sad=low",
        ]
    ),
)
def test_manifest_round_trip_and_scheme(tmp_path_factory, data, scheme):
    folder = tmp_path_factory.mktemp("rt")
    records = data.draw(record_lists(folder))
    manifest = write_manifest(records, folder / "manifest.csv")
    loaded = load_corpus("csv", manifest)
    assert loaded == records
    kept, labels = apply_scheme(loaded, scheme)
    resolved = resolve_scheme(scheme)
    assert len(kept) == len(labels) and labels.dtype == np.int64
    assert [resolved.classes[i] for i in labels] == [resolved.class_of(r.emotion) for r in kept]
    assert len(kept) == sum(resolved.keeps(r.emotion) for r in records)


# --------------------------------------------------------------------- folder per label


def test_folder_per_label(tmp_path):
    touch_wav(tmp_path / "Anger" / "spk1" / "x.wav")
    touch_wav(tmp_path / "happy" / "spk2_y.flac")
    touch_wav(tmp_path / "happy" / "spk1_z.ogg")
    touch_wav(tmp_path / "other" / "spk1_w.wav")
    (tmp_path / "happy" / "notes.txt").write_text("ignored")
    records = load_corpus("folder", tmp_path, mapping="other=-", speaker_regex=r"^(?P<speaker>spk\d+)")
    assert [(r.label, r.emotion, r.speaker, Path(r.path).suffix) for r in records] == [
        ("Anger", "angry", "spk1", ".wav"),
        ("happy", "happy", "spk1", ".ogg"),
        ("happy", "happy", "spk2", ".flac"),
    ]
    assert {r.corpus for r in records} == {"folder"} and {r.language for r in records} == {"und"}


def test_folder_without_regex_has_unknown_speaker(tmp_path):
    touch_wav(tmp_path / "sad" / "a.wav")
    assert load_corpus("folder", tmp_path)[0].speaker == "unknown"


def test_folder_errors(tmp_path):
    touch_wav(tmp_path / "sad" / "a.wav")
    with pytest.raises(CorpusError, match=r"speaker regex '\^x' does not match 'a\.wav' of .*a\.wav"):
        load_corpus("folder", tmp_path, speaker_regex="^x")
    with pytest.raises(ConfigError, match="bad speaker regex"):
        load_corpus("folder", tmp_path, speaker_regex="(")
    touch_wav(tmp_path / "glee" / "b.wav")
    with pytest.raises(CorpusError, match=r"label folder 'glee' of .*b\.wav' is not a canonical emotion"):
        load_corpus("folder", tmp_path)
    touch_wav(tmp_path / "loose.wav")
    with pytest.raises(CorpusError, match=r"loose\.wav' is not inside a label folder"):
        load_corpus("folder", tmp_path, mapping="glee=happy")


def test_write_manifest_to_missing_folder(tmp_path):
    with pytest.raises(CorpusError, match=r"cannot write manifest .*nope/m\.csv"):
        write_manifest([], tmp_path / "nope" / "m.csv")
