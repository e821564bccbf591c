"""The small traps of issue 18 (point 6), one regression test each:

1. an array without ``sample_rate`` is refused with one clear error (it was read as 16 kHz);
2. decoder errors say what is wrong in words, the library's exception kept as ``__cause__``;
3. ``--help`` is plain text, no reST markup (``emovox corpus --help`` printed it raw);
4. ``emovox evaluate`` writes no progress bars when stderr is not a terminal;
5. ``report.md`` lists only the settings the protocol uses (a LOSO run listed ``folds: 6``);
6. ``--adapt`` says what it did (it was silent for seconds).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import soundfile as sf

import emovox
from emovox.cli.main import build_parser, main
from emovox.corpora import default_corpora_root
from emovox.errors import ConfigError, TruncatedAudioError, UnsupportedAudioError

HELLO = Path(emovox.__file__).parent / "examples" / "hello.flac"  # 5.4 s of synthetic speech, always present
EMODB = default_corpora_root() / "emodb" / "wav"


def run(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def model():
    return emovox.load_model(num_threads=1)


# ---------------------------------------------------------------------- 1. arrays need their rate
def test_an_array_without_its_sample_rate_is_one_clear_error(model):
    y = emovox.audio.load_audio(HELLO, sample_rate_hz=48000)
    for call in (
        lambda: model.predict(y),
        lambda: model.predict_batch([y]),
        lambda: model.predict_timeline(y),
        lambda: model.clip_embedding(y),
        lambda: model.adapt([y] * 5),
    ):
        with pytest.raises(
            ConfigError,
            match=r"an array of samples carries no sample rate: pass it in Hz, e\.g\. "
            r"predict\(y, sample_rate=48000\)",
        ):
            call()
    ((_, error),) = list(model.iter_predict([y]))  # a batch reports it per input
    assert isinstance(error, ConfigError) and "sample_rate" in str(error)
    assert not model.adapted
    # given, the 48 kHz clip lasts what it lasts (read as 16 kHz it ended at 16.2 s)
    p = model.predict(y, sample_rate=48000)
    assert p.end_s == pytest.approx(sf.info(HELLO).duration, abs=0.01)
    assert p.scores == pytest.approx(model.predict(HELLO).scores, abs=0.02)
    with pytest.raises(ConfigError, match="sample_rate must be a positive number, got 0"):
        model.predict(y, sample_rate=0)


# ---------------------------------------------------------------------- 2. decoder errors in words
def _flac_bytes() -> bytes:
    return HELLO.read_bytes()


@pytest.mark.parametrize(
    "data, failed",
    [
        (b"this is a text file, not a recording\n" * 40, True),
        (bytes(range(256)) * 8, True),
        (b"\x89PNG\r\n\x1a\n" + bytes(500), False),
    ],
    ids=["text", "bytes", "png"],
)
def test_not_audio_says_so_in_words_and_keeps_the_decoder_error_as_cause(data, failed, tmp_path):
    path = tmp_path / "notes.wav"
    path.write_bytes(data)
    with pytest.raises(UnsupportedAudioError) as info:
        emovox.audio.load_audio(path)
    assert str(info.value) == (
        f"{path}: not an audio file or an unsupported format: pass WAV, FLAC, Ogg, MP3, WebM/Opus or M4A/AAC"
    )
    # FFmpeg's own error, for debugging (an image opens fine: it just holds no audio)
    assert (info.value.__cause__ is not None) == failed
    with pytest.raises(UnsupportedAudioError, match=r"^<bytes>: not an audio file"):
        emovox.audio.audio_duration_s(data)


@pytest.mark.parametrize("keep", [0.05, 0.5])
def test_a_cut_file_ends_early_in_words(keep):
    data = _flac_bytes()
    cut = data[: int(len(data) * keep)]
    for read in (emovox.audio.load_audio, lambda d: list(emovox.audio.stream_audio(d, block_s=0.5))):
        with pytest.raises(TruncatedAudioError) as info:
            read(cut)
        text = str(info.value)
        assert text.startswith("<bytes>: the file ends early: a truncated or damaged FLAC file (")
        assert text.endswith("); re-export or re-download the complete file")
        assert "Errno" not in text and "Invalid data" not in text and "avcodec" not in text
        assert info.value.__cause__ is not None or "declares" in text


def test_the_cli_and_the_service_show_words_not_internals(model, tmp_path, capsys):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio " * 300)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(_flac_bytes()[:40000])
    rc, out, err = run(["predict", str(junk), str(cut), str(HELLO), "-q", "--threads", "1"], capsys)
    assert rc == 1
    lines = err.splitlines()
    assert lines[0] == (
        f"emovox: error: {junk}: not an audio file or an unsupported format: "
        "pass WAV, FLAC, Ogg, MP3, WebM/Opus or M4A/AAC"
    )  # the name once, not twice
    assert lines[1].startswith(
        f"emovox: error: {cut}: the file ends early: a truncated or damaged FLAC file (decoding stopped after "
    )
    assert len(lines) == 2 and "Errno" not in err and "hello.flac" in out
    rc, out, _ = run(["predict", str(junk), "--json", "-q", "--threads", "1"], capsys)
    assert json.loads(out) == [
        {
            "file": str(junk),
            "model": "default",
            "model_version": model.model_version,
            "error": "not an audio file or an unsupported format: pass WAV, FLAC, Ogg, MP3, WebM/Opus or M4A/AAC",
        }
    ]

    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from emovox.service.app import create_app

    with TestClient(create_app(model)) as client:
        r = client.post("/v1/predict", files={"file": ("notes.txt", b"hello, just text\n" * 30)})
        assert r.status_code == 422
        assert r.json()["error"]["message"] == (
            "notes.txt: not an audio file or an unsupported format: pass WAV, FLAC, Ogg, MP3, WebM/Opus or M4A/AAC"
        )
        # a request without the audio says so, not "file object 'upload' holds no bytes"
        for r in (client.post("/v1/predict"), client.post("/v1/predict", data={"other": "field"})):
            assert r.status_code == 422 and r.json()["error"]["code"] == "missing_file", r.text
            assert "multipart field 'file'" in r.json()["error"]["message"]


def test_a_broken_live_container_stream_is_described_in_words():
    from emovox.audio.container_stream import ContainerStreamDecoder

    dec = ContainerStreamDecoder(format="ogg")
    dec.feed(b"OggS" + bytes(200))
    with pytest.raises(UnsupportedAudioError) as info:
        dec.close()
    assert "its data is not ogg audio or is damaged" in str(info.value) and "Errno" not in str(info.value)
    assert info.value.__cause__ is not None


# ---------------------------------------------------------------------- 3. plain help
def _parsers(parser):
    """Every parser under ``parser`` (sub-commands and their actions), with its command path."""
    import argparse

    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _parsers(child)


def test_every_help_text_is_plain_without_rest_markup():
    from emovox.cli import plain_help

    seen = []
    for prog, parser in _parsers(build_parser()):
        text = parser.format_help()
        seen.append(prog)
        for mark in ("``", ":func:", ":class:", ":meth:", ":mod:", ":data:", "::\n"):
            assert mark not in text, f"{prog} --help shows {mark!r}"
    assert {"emovox corpus", "emovox corpus stats", "emovox evaluate", "emovox predict"} <= set(seen)
    corpus = dict(_parsers(build_parser()))["emovox corpus"].format_help()
    assert "emovox corpus: inspect corpora." in corpus and "DIR defaults to" in corpus
    assert (
        plain_help("See :func:`~emovox.audio.load_audio` and ``x=1``::\n\n    code\n")
        == "See load_audio and x=1:\n\n    code\n"
    )


# ---------------------------------------------------------------------- 4 and 5. evaluate
@pytest.fixture(scope="module")
def own_corpus(tmp_path_factory):
    """4 speakers x 2 emotions x 2 short synthetic clips in a CSV manifest (seconds of work)."""
    from emovox.testing import speech_like, write_audio

    root = tmp_path_factory.mktemp("own")
    rows = ["path,label,speaker"]
    for speaker in range(4):
        for k, label in enumerate(("happy", "sad")):
            for take in range(2):
                y = speech_like(0.6, f0_hz=110 + 90 * k, seed=100 * speaker + 10 * k + take)
                path = write_audio(
                    root / f"s{speaker}_{label}_{take}.wav", (0.8 if k == 0 else 0.2) * y, sample_rate_hz=16000
                )
                rows.append(f"{path},{label},spk{speaker}")
    (root / "mine.csv").write_text("\n".join(rows) + "\n")
    return root / "mine.csv"


def _evaluate(own_corpus, out: Path, *extra: str) -> list[str]:
    return [
        "evaluate",
        "--corpus",
        f"csv:{own_corpus}",
        "--model",
        "svm-mfcc",
        "--out",
        str(out),
        "--cache-dir",
        str(out.parent / "cache"),
        *extra,
    ]


def test_evaluate_writes_fold_lines_but_no_bars_into_a_log(own_corpus, tmp_path, capsys, monkeypatch):
    rc, _, err = run(_evaluate(own_corpus, tmp_path / "log"), capsys)
    assert rc == 0 and not sys.stderr.isatty()
    assert err.splitlines() == [f"  fold {i}/4: csv/spk{i - 1}" for i in range(1, 5)]  # lines, no bar frames
    assert "\r" not in err and "it/s" not in err
    # on a terminal the feature bar shows
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    rc, _, err = run(_evaluate(own_corpus, tmp_path / "tty", "--cache-dir", str(tmp_path / "fresh")), capsys)
    assert rc == 0 and "features" in err and "clip" in err


def _configuration(report: Path) -> dict[str, str]:
    text = report.read_text()
    block = text.split("## Configuration\n\n", 1)[1].split("\n\n", 1)[0]
    return dict(line[4:].split("**: ", 1) for line in block.splitlines() if line.startswith("- **"))


def test_report_lists_only_the_settings_of_its_protocol(own_corpus, tmp_path, capsys):
    assert run(_evaluate(own_corpus, tmp_path / "loso", "--quiet"), capsys)[0] == 0
    loso = _configuration(tmp_path / "loso" / "report.md")
    assert loso["protocol"] == '`"loso"`' and not {"folds", "test_fraction", "test_corpus"} & set(loso)
    assert "folds" not in json.loads((tmp_path / "loso" / "result.json").read_text())["config"]
    assert (
        run(
            _evaluate(own_corpus, tmp_path / "kfold", "--protocol", "speaker-kfold", "--folds", "2", "--quiet"), capsys
        )[0]
        == 0
    )
    kfold = _configuration(tmp_path / "kfold" / "report.md")
    assert kfold["folds"] == "`2`" and not {"test_fraction", "test_corpus"} & set(kfold)
    assert (
        run(
            _evaluate(own_corpus, tmp_path / "random", "--protocol", "random", "--test-fraction", "0.25", "--quiet"),
            capsys,
        )[0]
        == 0
    )
    rand = _configuration(tmp_path / "random" / "report.md")
    assert rand["test_fraction"] == "`0.25`" and not {"folds", "test_corpus"} & set(rand)


# ---------------------------------------------------------------------- 6. --adapt says what it did
needs_emodb = pytest.mark.skipif(not EMODB.is_dir(), reason=f"EMO-DB is absent under {EMODB}")


@needs_emodb
def test_adapt_says_in_one_line_what_it_did(tmp_path, capsys, monkeypatch):
    own = sorted(EMODB.glob("03a0*.flac"))[:8]  # one speaker (03), several emotions
    clip = str(own[-1])
    argv = ["predict", clip, "--threads", "1", *(x for p in own[:-1] for x in ("--adapt", str(p)))]
    rc, out, err = run(argv, capsys)
    assert rc == 0 and len(err.splitlines()) == 1, err
    # 7 clips of 2 s (trimmed of silence): fewer than the recommended 20, so a warning
    assert err.startswith("emovox: warning: adapted to the speaker from 7 clips (")
    seconds = float(err.split("(")[1].split(" s of audio")[0])
    assert 7 < seconds <= 14.0 and err.rstrip().endswith("about 20 give reliable results")
    assert run([*argv, "-q"], capsys)[2] == ""
    # on a terminal a status line shows while it works; the result replaces it (still one line)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    rc, _, err = run(argv, capsys)
    assert rc == 0
    status, result = err.split("\r\033[K")
    assert status == "emovox: adapting to the speaker of 7 recordings (decoding and embedding each clip)…"
    assert result.startswith("emovox: warning: adapted to the speaker from 7 clips") and result.count("\n") == 1
    # an error replaces it too: one line
    rc, _, err = run(["predict", clip, "--threads", "1", "--adapt", str(own[0])], capsys)
    assert rc == 2 and err.split("\r\033[K")[1].startswith("emovox: error: speaker adaptation needs at least 5 clips")


def test_adapted_audio_seconds_are_reported_by_the_predictor(model):
    y = emovox.audio.load_audio(HELLO, sample_rate_hz=16000)
    clips = [y[i * 16000 : (i + 1) * 16000] for i in range(5)]
    assert model.adapt(clips, sample_rate=16000) == 5
    try:
        assert model.adapted and 3.0 < model.adapted_audio_s <= 5.0  # 5 s, trimmed of silence
    finally:
        model.adapt(None)
    assert model.adapted_audio_s == 0.0
