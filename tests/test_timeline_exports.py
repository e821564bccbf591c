"""Timeline exports (issue 18, point 4): SubRip, WebVTT, Audacity labels and ELAN, each read back by an
independent parser (``srt``, ``webvtt-py``, ``csv``, ``xml.etree`` against the EAF 3.0 structure), from the
library, from ``emovox predict --timeline --format`` and from ``POST /v1/predict?timeline=true&format=``.

The recording is three real RAVDESS clips of one actor (angry, sad, happy; about 11.6 s) joined into one
WAV, so the timeline has several merged segments, among them an ``unknown``."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.cli.main import main
from emovox.corpora import default_corpora_root
from emovox.export.timeline_formats import (
    FORMATS,
    cue_text,
    render_timeline,
    to_audacity,
    to_eaf,
    to_srt,
    to_vtt,
)
from emovox.inference import Prediction, Timeline

srt = pytest.importorskip("srt")
webvtt = pytest.importorskip("webvtt")

ACTOR = default_corpora_root() / "ravdess" / "Audio_Speech_Actors_01-24" / "Actor_01"
CLIPS = ("03-01-05-02-01-01-01.flac", "03-01-04-02-01-01-01.flac", "03-01-03-02-01-01-01.flac")
needs_corpus = pytest.mark.skipif(
    not all((ACTOR / c).is_file() for c in CLIPS), reason=f"RAVDESS clips under {ACTOR} are absent"
)
LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def ms(seconds: float) -> int:
    return int(round(seconds * 1000))


@pytest.fixture(scope="module")
def model():
    from emovox.inference import load_model

    return load_model(num_threads=1)


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    if not all((ACTOR / c).is_file() for c in CLIPS):
        pytest.skip(f"RAVDESS clips under {ACTOR} are absent")
    from emovox.audio import load_audio

    path = tmp_path_factory.mktemp("rec") / "three clips.wav"  # a space: file names are quoted in URLs
    sf.write(path, np.concatenate([load_audio(ACTOR / c, sample_rate_hz=16000) for c in CLIPS]), 16000)
    return path


@pytest.fixture(scope="module")
def timeline(model, recording) -> Timeline:
    t = model.predict_timeline(str(recording))
    assert len(t.merged()) >= 2, "the joined clips should give several segments"
    return t


def _expected(t: Timeline) -> list[tuple[int, int, str]]:
    """(start ms, end ms, text) of every merged segment: what every format must carry."""
    return [(ms(s.start_s), ms(s.end_s), cue_text(s)) for s in t.merged()]


# ---------------------------------------------------------------------- cue text
def test_cue_text_says_label_confidence_and_the_reason_of_a_non_answer():
    scores = {"angry": 0.82, "sad": 0.18}
    assert cue_text(Prediction("angry", 0.82, scores, 0.0, 3.0, 2.5)) == "angry 0.82"
    assert (
        cue_text(Prediction("unknown", 0.414, scores, 0, 3, 2.5, "low_confidence")) == "unknown 0.41 (low confidence)"
    )
    assert (
        cue_text(Prediction("unknown", 0.6, scores, 0, 3, 0.3, "too_little_speech"))
        == "unknown 0.60 (too little speech)"
    )
    assert cue_text(Prediction("no_speech", 0.0, {}, 0, 3, 0.0, "no_speech")) == "no_speech (no speech found)"


def _synthetic() -> Timeline:
    """Segments of every kind, a label needing escapes, a recording past one hour."""
    a = {"angry": 0.7, "sad <&> calm": 0.3}
    segs = (
        Prediction("angry", 0.7, a, 0.5, 2.0, 1.4),
        Prediction("angry", 0.7, a, 2.0, 3.5, 1.4),  # merged with the first
        Prediction("unknown", 0.4, a, 5.0, 8.0, 2.8, "low_confidence"),
        Prediction("no_speech", 0.0, {}, 8.0, 9.0, 0.1, "no_speech"),
        Prediction("sad <&> calm", 0.8, {"angry": 0.2, "sad <&> calm": 0.8}, 3723.25, 3725.5, 2.0),
    )
    return Timeline(segs, 3730.0, ("angry", "sad <&> calm"))


def test_every_format_reads_back_the_merged_segments_of_a_synthetic_timeline():
    t = _synthetic()
    want = [
        (500, 3500, "angry 0.70"),
        (5000, 8000, "unknown 0.40 (low confidence)"),
        (8000, 9000, "no_speech (no speech found)"),
        (3723250, 3725500, "sad <&> calm 0.80"),
    ]
    assert _expected(t) == want
    subs = list(srt.parse(to_srt(t)))
    assert [(s.index, s.start, s.end, s.content) for s in subs] == [
        (i, timedelta(milliseconds=a), timedelta(milliseconds=b), text) for i, (a, b, text) in enumerate(want, 1)
    ]
    assert "01:02:03,250 --> 01:02:05,500" in to_srt(t)
    vtt = to_vtt(t, title="x.wav")
    captions = webvtt.from_string(vtt).captions
    assert [(_vtt_ms(c.start), _vtt_ms(c.end)) for c in captions] == [(a, b) for a, b, _ in want]
    assert [c.text for c in captions][:3] == [text for _, _, text in want][:3]
    cues = vtt.split("\n\n", 2)[2]  # after the header and the NOTE (which may hold anything but "-->")
    assert "\nsad &lt;&amp;&gt; calm 0.80\n" in cues and "<&>" not in cues  # cue text escaped as WebVTT asks
    rows = list(csv.reader(io.StringIO(to_audacity(t)), delimiter="\t"))
    assert [(ms(float(a)), ms(float(b)), text) for a, b, text in rows] == want


def test_an_empty_timeline_gives_valid_files_without_cues():
    t = Timeline((), 42.0, LABELS)
    assert to_srt(t) == "" and list(srt.parse(to_srt(t))) == []
    vtt = to_vtt(t)
    assert webvtt.from_string(vtt).captions == [] and "no speech was found in 42.0 s" in vtt
    assert to_audacity(t) == ""
    root = ET.fromstring(to_eaf(t))
    assert root.find("TIME_ORDER") is not None and root.find("TIER").findall("ANNOTATION") == []


# ---------------------------------------------------------------------- real recording, each format
@needs_corpus
def test_srt_reads_back_with_the_srt_library(timeline):
    subs = list(srt.parse(to_srt(timeline)))
    assert [(ms(s.start.total_seconds()), ms(s.end.total_seconds()), s.content) for s in subs] == _expected(timeline)
    assert [s.index for s in subs] == list(range(1, len(subs) + 1))
    assert all(a.end <= b.start for a, b in zip(subs, subs[1:])) and all(s.start < s.end for s in subs)
    kinds = {s.content.split()[0] for s in subs}
    assert kinds <= set(LABELS) | {"unknown", "no_speech"} and kinds & set(LABELS), kinds
    assert subs[-1].end.total_seconds() <= timeline.duration_s


@needs_corpus
def test_webvtt_reads_back_with_webvtt_py(timeline):
    text = to_vtt(timeline, title="three clips.wav")
    parsed = webvtt.from_string(text)
    got = [(_vtt_ms(c.start), _vtt_ms(c.end), c.text) for c in parsed.captions]
    assert got == _expected(timeline)
    note = text.split("\n\n")[1]
    assert note.startswith("NOTE emovox emotion timeline of three clips.wav: ") and timeline.dominant in note


def _vtt_ms(stamp: str) -> int:
    h, m, s = stamp.split(":")
    return ms(int(h) * 3600 + int(m) * 60 + float(s))


@needs_corpus
def test_audacity_labels_read_back_as_tab_separated_seconds(timeline):
    rows = list(csv.reader(io.StringIO(to_audacity(timeline)), delimiter="\t"))
    assert all(len(r) == 3 for r in rows)
    assert [(ms(float(a)), ms(float(b)), text) for a, b, text in rows] == _expected(timeline)
    assert all(len(a.split(".")[1]) == 6 for a, _, _ in rows)  # Audacity's own precision


@needs_corpus
def test_elan_document_has_the_eaf_3_structure(timeline, recording):
    eaf_path = recording.parent / "eaf" / "rec.eaf"  # not written: only where it would go
    root = ET.fromstring(to_eaf(timeline, media=str(recording), eaf_path=eaf_path))
    assert root.tag == "ANNOTATION_DOCUMENT" and root.get("FORMAT") == "3.0" and root.get("VERSION") == "3.0"
    assert root.get("AUTHOR") == "emovox" and datetime.fromisoformat(root.get("DATE")).tzinfo is not None
    xsi = "{http://www.w3.org/2001/XMLSchema-instance}noNamespaceSchemaLocation"
    assert root.get(xsi) == "http://www.mpi.nl/tools/elan/EAFv3.0.xsd"
    # EAF 3.0 fixes the order: HEADER, TIME_ORDER, TIER*, LINGUISTIC_TYPE*
    assert [child.tag for child in root] == ["HEADER", "TIME_ORDER", "TIER", "LINGUISTIC_TYPE"]
    header = root.find("HEADER")
    assert header.get("TIME_UNITS") == "milliseconds"
    media = header.find("MEDIA_DESCRIPTOR")
    assert media.get("MEDIA_URL") == recording.as_uri() and media.get("MIME_TYPE") == "audio/x-wav"
    assert media.get("RELATIVE_MEDIA_URL") == "../three%20clips.wav"
    slots = {}
    for slot in root.find("TIME_ORDER").findall("TIME_SLOT"):
        assert slot.get("TIME_SLOT_ID") not in slots
        slots[slot.get("TIME_SLOT_ID")] = int(slot.get("TIME_VALUE"))  # integers, in ms
    assert list(slots.values()) == sorted(set(slots.values()))
    (tier,) = root.findall("TIER")
    assert tier.get("TIER_ID") == "emotion"
    (ltype,) = root.findall("LINGUISTIC_TYPE")
    assert tier.get("LINGUISTIC_TYPE_REF") == ltype.get("LINGUISTIC_TYPE_ID") and ltype.get("TIME_ALIGNABLE") == "true"
    got, ids = [], set()
    for annotation in tier.findall("ANNOTATION"):
        (aligned,) = list(annotation)
        assert aligned.tag == "ALIGNABLE_ANNOTATION" and aligned.get("ANNOTATION_ID") not in ids
        ids.add(aligned.get("ANNOTATION_ID"))
        start, end = slots[aligned.get("TIME_SLOT_REF1")], slots[aligned.get("TIME_SLOT_REF2")]
        assert start < end
        got.append((start, end, aligned.findtext("ANNOTATION_VALUE")))
    assert got == _expected(timeline)
    assert header.findtext("PROPERTY[@NAME='lastUsedAnnotationId']") == str(len(got))


def test_an_upload_name_is_linked_relatively_never_as_a_server_path():
    root = ET.fromstring(to_eaf(_synthetic(), media="my talk.wav"))
    media = root.find("HEADER/MEDIA_DESCRIPTOR")
    assert media.get("MEDIA_URL") == media.get("RELATIVE_MEDIA_URL") == "./my%20talk.wav"


def test_unknown_format_names_the_known_ones():
    from emovox.errors import ConfigError

    with pytest.raises(ConfigError, match="format 'docx' is unknown: use srt, vtt, audacity or elan"):
        render_timeline(_synthetic(), "docx")
    assert [f.extension for f in FORMATS.values()] == [".srt", ".vtt", ".txt", ".eaf"]


# ---------------------------------------------------------------------- CLI
def _run(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


@needs_corpus
def test_cli_writes_each_format_to_one_file_or_stdout(timeline, recording, tmp_path, capsys):
    target = tmp_path / "subs" / "talk.srt"
    rc, out, err = _run(
        ["predict", str(recording), "--timeline", "--format", "srt", "-o", str(target), "--threads", "1"], capsys
    )
    assert rc == 0 and out == "" and err == ""
    assert list(srt.parse(target.read_text())) == list(srt.parse(to_srt(timeline)))
    assert [p.name for p in target.parent.iterdir()] == ["talk.srt"]  # no temporary file left
    rc, out, err = _run(["predict", str(recording), "--timeline", "--format", "vtt", "--threads", "1"], capsys)
    assert rc == 0 and [c.text for c in webvtt.from_string(out).captions] == [t for _, _, t in _expected(timeline)]


@needs_corpus
def test_cli_several_inputs_write_one_file_each_into_a_folder(timeline, recording, tmp_path, capsys):
    other = tmp_path / "b" / recording.name  # the same stem in another folder
    other.parent.mkdir()
    other.write_bytes(recording.read_bytes())
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all " * 50)
    out_dir = tmp_path / "eaf"
    rc, out, err = _run(
        [
            "predict",
            str(recording),
            str(other),
            str(junk),
            "--timeline",
            "--format",
            "elan",
            "-o",
            f"{out_dir}/",
            "--threads",
            "1",
            "-q",
        ],
        capsys,
    )
    assert rc == 1 and out == ""
    assert err.splitlines() == [
        f"emovox: error: {junk}: not an audio file or an unsupported format: "
        "pass WAV, FLAC, Ogg, MP3, WebM/Opus or M4A/AAC"
    ]
    assert sorted(p.name for p in out_dir.iterdir()) == ["three clips-2.eaf", "three clips.eaf"]  # none for junk
    for name, media in (("three clips.eaf", recording), ("three clips-2.eaf", other)):
        root = ET.fromstring((out_dir / name).read_text())
        assert root.find("HEADER/MEDIA_DESCRIPTOR").get("MEDIA_URL") == media.as_uri()
        values = [a.text for a in root.iter("ANNOTATION_VALUE")]
        assert values == [t for _, _, t in _expected(timeline)]
    rc, _, _ = _run(
        [
            "predict",
            str(recording),
            "--timeline",
            "--format",
            "audacity",
            "-o",
            str(tmp_path / "lab") + "/",
            "--threads",
            "1",
        ],
        capsys,
    )
    rows = list(csv.reader((tmp_path / "lab" / "three clips.txt").open(), delimiter="\t"))
    assert rc == 0 and len(rows) == len(_expected(timeline))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--format", "srt"], "--format srt writes a timeline: add --timeline"),
        (["--timeline", "--format", "docx"], "--format 'docx' is unknown: use srt, vtt, audacity or elan"),
        (["--timeline", "--format", "vtt", "--csv"], "--format vtt and --csv are two outputs: choose one"),
        (
            ["--timeline", "--format", "srt", "EXTRA"],
            "2 inputs were given (stdout would mix them): name an output folder with -o DIR/",
        ),
        (["--timeline", "--format", "srt", "EXTRA", "-o", "OUT"], "2 inputs were given (-o OUT is a file)"),
    ],
)
def test_cli_bad_combinations_are_one_line_exit_2_and_write_nothing(extra, message, tmp_path, capsys, monkeypatch):
    import emovox.inference

    monkeypatch.setattr(emovox.inference, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    clip = tmp_path / "a.wav"
    sf.write(clip, np.zeros(16000, np.float32), 16000)
    out = str(tmp_path / "o.srt")
    inputs = [str(clip)] * (1 + extra.count("EXTRA"))  # positional inputs come before the options
    options = [out if x == "OUT" else x for x in extra if x != "EXTRA"]
    rc, stdout, err = _run(["predict", *inputs, *options], capsys)
    assert rc == 2 and stdout == ""
    assert len(err.splitlines()) == 1 and err.startswith("emovox: error: ")
    assert message.replace("OUT", out) in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


@needs_corpus
def test_cli_a_failing_single_input_leaves_no_file(tmp_path, capsys):
    cut = tmp_path / "cut.flac"
    cut.write_bytes((ACTOR / CLIPS[0]).read_bytes()[:20000])
    target = tmp_path / "cut.srt"
    rc, out, err = _run(
        ["predict", str(cut), "--timeline", "--format", "srt", "-o", str(target), "--threads", "1"], capsys
    )
    assert rc == 1 and not target.exists() and "the file ends early" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.flac"]


# ---------------------------------------------------------------------- service
@pytest.fixture(scope="module")
def client(model):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from emovox.service.app import create_app

    with TestClient(create_app(model)) as c:
        yield c


@needs_corpus
@pytest.mark.parametrize(
    "fmt, media_type, filename",
    [
        ("srt", "application/x-subrip", "three clips.srt"),
        ("vtt", "text/vtt", "three clips.vtt"),
        ("audacity", "text/plain", "three clips.txt"),
        ("elan", "application/xml", "three clips.eaf"),
    ],
)
def test_service_returns_the_export_with_its_type_and_file_name(client, timeline, recording, fmt, media_type, filename):
    r = client.post(f"/v1/predict?timeline=true&format={fmt}", files={"file": (recording.name, recording.read_bytes())})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == f"{media_type}; charset=utf-8"
    assert r.headers["content-disposition"] == (
        f"attachment; filename=\"{filename}\"; filename*=UTF-8''{filename.replace(' ', '%20')}"
    )
    want = _expected(timeline)
    if fmt == "srt":
        got = [(ms(s.start.total_seconds()), ms(s.end.total_seconds()), s.content) for s in srt.parse(r.text)]
    elif fmt == "vtt":
        got = [(_vtt_ms(c.start), _vtt_ms(c.end), c.text) for c in webvtt.from_string(r.text).captions]
    elif fmt == "audacity":
        got = [(ms(float(a)), ms(float(b)), t) for a, b, t in csv.reader(io.StringIO(r.text), delimiter="\t")]
    else:
        root = ET.fromstring(r.text)
        slots = {s.get("TIME_SLOT_ID"): int(s.get("TIME_VALUE")) for s in root.iter("TIME_SLOT")}
        got = [
            (slots[a.get("TIME_SLOT_REF1")], slots[a.get("TIME_SLOT_REF2")], a.findtext("ANNOTATION_VALUE"))
            for a in root.iter("ALIGNABLE_ANNOTATION")
        ]
        assert root.find("HEADER/MEDIA_DESCRIPTOR").get("MEDIA_URL") == "./three%20clips.wav"  # no server path
    assert got == want


def test_service_refuses_a_bad_format_in_the_error_shape(client):
    for query, message in (
        ("timeline=true&format=docx", "format: Input should be 'srt', 'vtt', 'audacity' or 'elan'"),
        ("format=srt", "format=srt exports a timeline: add timeline=true"),
    ):
        r = client.post(f"/v1/predict?{query}", content=b"RIFF")
        assert r.status_code == 422 and r.json() == {"error": {"code": "invalid_parameter", "message": message}}
    schema = client.get("/openapi.json").json()["paths"]["/v1/predict"]["post"]
    assert {"application/json", *(f.media_type for f in FORMATS.values())} <= set(schema["responses"]["200"]["content"])
