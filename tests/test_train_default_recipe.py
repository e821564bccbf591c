"""``emovox train --recipe default``: the bundled encoder, a head fitted on a user's labelled clips (issue 18.5).

One real run on a small CSV corpus of EMO-DB clips (3 speakers x 3 emotions x
3 clips), then the artifact in every way a user loads it: ``load_model``
(ONNX and torch), ``emovox predict --model``, a stream, and the ONNX path in a
process where torch cannot be imported. Skipped without the shared corpora.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from emovox.cli.main import main
from emovox.errors import ConfigError

SPEAKERS = ("03", "08", "09")
#: Corpus label -> what the CSV says (an alias, as a user would write it).
EMOTIONS = {"angry": "anger", "sad": "sad", "neutral": "neutral"}
LABELS = ["neutral", "sad", "angry"]  # canonical order of the classes present
PER_CELL = 3


def _emodb_records():
    from emovox.corpora import default_corpora_root, load_corpus

    folder = default_corpora_root() / "emodb"
    if not folder.is_dir():
        pytest.skip(f"EMO-DB not available at {folder}")
    return load_corpus("emodb")


def _write_csv(path: Path, rows: list[dict], columns=("path", "label", "speaker")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[dict]]:
    cells: dict = defaultdict(list)
    for record in _emodb_records():
        key = (record.speaker, record.emotion)
        if record.speaker in SPEAKERS and record.emotion in EMOTIONS and len(cells[key]) < PER_CELL:
            cells[key].append(
                {
                    "path": record.path,
                    "label": EMOTIONS[record.emotion],
                    "speaker": record.speaker,
                    "emotion": record.emotion,
                }
            )
    rows = [row for key in sorted(cells) for row in cells[key]]
    assert len(rows) == len(SPEAKERS) * len(EMOTIONS) * PER_CELL
    folder = tmp_path_factory.mktemp("mine")
    return _write_csv(folder / "mine.csv", rows), rows


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory) -> tuple[Path, str]:
    manifest, _ = corpus
    out = tmp_path_factory.mktemp("run") / "mine"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(
            [
                "train",
                "--recipe",
                "default",
                "--corpus",
                f"csv:{manifest}",
                "--out",
                str(out),
                "--no-progress",
                "--threads",
                "1",
            ]
        )
    assert code == 0
    return out, printed.getvalue()


def test_the_run_reports_speaker_independent_figures_and_writes_an_artifact_of_the_users_labels(trained):
    out, printed = trained
    assert "leave-one-speaker-out over 3 speakers" in printed
    assert "UAR" in printed and "accuracy" in printed and f"artifact: {out / 'model'}" in printed
    model = out / "model"
    assert {p.name for p in model.iterdir()} == {
        "config.json",
        "model.safetensors",
        "model.onnx",
        "LICENSE-whisper.txt",
    }
    assert not [p for p in out.rglob("*") if p.suffix in (".pkl", ".pickle", ".pt", ".joblib")]
    config = json.loads((model / "config.json").read_text())
    assert config["task"]["labels"] == LABELS
    figures = config["metrics"]["speaker_independent"]["all"]
    assert set(figures) >= {"uar", "accuracy", "n", "speakers"} and figures["n"] == 27 and figures["speakers"] == 3
    # three emotions, chance 1/3: the head learns from 18 clips of two other speakers
    assert figures["uar"] > 0.55, figures
    assert "leave-one-speaker-out" in config["metrics"]["protocol"]
    assert config["calibration"]["temperature"] > 0 and 0.0 < config["threshold"] < 1.0
    assert "out-of-fold" in config["calibration"]["fitted_on"]
    assert config["preprocessing"]["band_limit_hz"] == 8000  # the product path of the bundled model
    from emovox.inference import default_model_dir

    base = config["training"]["base_model"]
    shipped = json.loads((default_model_dir() / "config.json").read_text())
    assert base["model"] == "default" and base["encoder_sha256"] == shipped["training"]["encoder"]["sha256"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == "loso" and summary["speaker_independent"] is True
    assert summary["heldout"]["uar"] == pytest.approx(figures["uar"])
    assert (out / "report.md").read_text().count("Speaker-independent") == 1
    assert (out / "confusion.png").is_file()


def test_load_model_predicts_a_training_clip_with_a_calibrated_confidence(trained, corpus):
    import emovox

    out, _ = trained
    clip = next(row["path"] for row in corpus[1] if row["emotion"] == "angry")
    onnx = emovox.load_model(out / "model", backend="onnx", num_threads=1)
    torch_model = emovox.load_model(out / "model", backend="torch", num_threads=1)
    config = json.loads((out / "model" / "config.json").read_text())
    for model in (onnx, torch_model):
        p = model.predict(clip)
        assert model.labels == tuple(LABELS)
        assert p.label in (*LABELS, "unknown") and set(p.scores) == set(LABELS)
        assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert p.confidence == pytest.approx(max(p.scores.values()))
        assert model.temperature == pytest.approx(config["calibration"]["temperature"])
        assert model.threshold == pytest.approx(config["threshold"])
    a, b = onnx.predict(clip).scores, torch_model.predict(clip).scores
    assert max(abs(a[k] - b[k]) for k in LABELS) < 1e-4
    # the encoder is the bundled one, unchanged: same embedding of the clip
    base = emovox.load_model("default", backend="onnx", num_threads=1)
    np.testing.assert_allclose(onnx.clip_embedding(clip), base.clip_embedding(clip), rtol=1e-4, atol=1e-4)


def test_the_cli_and_a_stream_take_the_artifact(trained, corpus, capsys):
    from emovox.audio import load_audio
    from emovox.inference import load_model
    from emovox.inference.streaming import StreamEngine

    out, _ = trained
    clip = corpus[1][0]["path"]
    assert main(["predict", "--model", str(out / "model"), "--json", "-q", clip]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    assert record["label"] in (*LABELS, "unknown") and set(record["scores"]) == set(LABELS)
    engine = StreamEngine(load_model(out / "model", num_threads=1))
    events = engine.feed(load_audio(clip, sample_rate_hz=16000), 16000) + engine.close()
    assert events and {e.label for e in events} <= {*LABELS, "unknown", "no_speech"}


def test_the_onnx_path_predicts_with_torch_unimportable(trained, corpus):
    out, _ = trained
    clip = corpus[1][0]["path"]
    code = (
        "import sys, json; sys.modules['torch'] = None\n"
        "import emovox\n"
        f"m = emovox.load_model({str(out / 'model')!r})\n"
        f"p = m.predict({clip!r})\n"
        "print(json.dumps({'backend': m.backend.name, 'label': p.label, 'scores': p.scores}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["backend"] == "onnx" and set(answer["scores"]) == set(LABELS)


def test_a_rerun_reads_the_embedding_cache_and_copies_are_seeded(trained, corpus):
    from emovox.recipes.default_head import clip_embeddings

    out, _ = trained
    paths = [row["path"] for row in corpus[1]]
    cached = clip_embeddings(paths, cache_dir=out / "cache", num_threads=1)
    assert cached.n_computed == 0 and cached.n_cached == len(paths) and cached.x.shape == (len(paths), 1, 5120)
    # one telephone copy per clip: different from the clip, the same draw every time
    a = clip_embeddings(paths[:2], copies=1, seed=3, num_threads=1)
    b = clip_embeddings(paths[:2], copies=1, seed=3, num_threads=1)
    assert a.x.shape == (2, 2, 5120) and a.n_computed == 4
    np.testing.assert_allclose(a.x[:, 0], cached.x[:2, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.allclose(a.x[:, 1], a.x[:, 0], atol=1e-2)


def test_held_out_protocol_follows_the_speakers():
    from emovox.recipes.default_head import heldout_protocol

    y = np.arange(60) % 3
    loso = heldout_protocol([f"csv/{i % 4}" for i in range(60)], y)
    assert loso.name == "loso" and loso.speaker_independent and len(loso.splits) == 4
    many = heldout_protocol([f"csv/{i % 20}" for i in range(60)], y)
    assert many.name == "speaker-kfold" and len(many.splits) == 5
    alone = heldout_protocol(["folder/unknown"] * 60, y)
    assert alone.name == "clip-kfold" and not alone.speaker_independent
    assert "NOT speaker-independent" in alone.description and "names no speakers" in alone.description
    assert sorted(np.concatenate([s.test_idx for s in alone.splits]).tolist()) == list(range(60))
    with pytest.raises(ConfigError, match="only 4 speakers"):
        heldout_protocol([f"csv/{i % 4}" for i in range(60)], y, folds=5)


def test_held_out_logits_score_every_clip_and_copy_with_a_head_that_never_saw_its_speaker():
    from emovox.recipes.default_head import heldout_logits, heldout_protocol

    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    speakers = [f"csv/{i % 5}" for i in range(90)]
    centres = rng.normal(0, 3, (3, 16))
    clean = centres[y] + rng.normal(0, 1, (90, 16))
    x = np.stack([clean, clean + rng.normal(0, 0.5, clean.shape)], axis=1).astype(np.float32)
    protocol = heldout_protocol(speakers, y)
    held = heldout_logits(x, y, protocol, classes=["a", "b", "c"], speakers=speakers, C=1.0)
    assert held.logits.shape == (90, 2, 3) and held.result["speaker_independent"] is True
    assert held.result["pooled"]["uar"] > 0.9
    # speaker 1's clips are scored by a head that saw neither their labels nor their copies
    rows = np.array(speakers) == "csv/1"
    changed = x.copy()
    changed[rows, 1] = 50.0
    flipped = y.copy()
    flipped[rows] = (flipped[rows] + 1) % 3
    again = heldout_logits(changed, flipped, protocol, classes=["a", "b", "c"], speakers=speakers, C=1.0)
    np.testing.assert_allclose(again.logits[rows, 0], held.logits[rows, 0], rtol=1e-6, atol=1e-6)
    assert not np.allclose(again.logits[~rows, 0], held.logits[~rows, 0])  # speaker 1 trains the others' heads


@pytest.mark.parametrize(
    "columns, edit, message",
    [
        (("path", "label"), None, "lacks column(s) speaker"),
        (("path", "label", "speaker"), lambda rows: rows[0].update(path="/nowhere/gone.wav"), "does not exist"),
        (("path", "label", "speaker"), lambda rows: [r.update(label="sad") for r in rows], "a model needs at least 2"),
    ],
)
def test_a_bad_csv_is_one_line_and_exit_2(corpus, tmp_path, capsys, columns, edit, message):
    rows = [dict(row) for row in corpus[1]]
    if edit:
        edit(rows)
    manifest = _write_csv(tmp_path / "bad.csv", rows, columns)
    code = main(
        ["train", "--recipe", "default", "--corpus", f"csv:{manifest}", "--out", str(tmp_path / "o"), "--no-progress"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "o" / "model").exists()


def test_a_file_that_is_not_audio_is_named_in_one_line(corpus, tmp_path, capsys):
    rows = [dict(row) for row in corpus[1]]
    junk = tmp_path / "notes.wav"
    junk.write_text("not audio at all\n")
    rows[4]["path"] = str(junk)
    manifest = _write_csv(tmp_path / "mine.csv", rows)
    code = main(
        ["train", "--recipe", "default", "--corpus", f"csv:{manifest}", "--out", str(tmp_path / "o"), "--no-progress"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "notes.wav" in err and "not an audio file" in err, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--recipe", "default", "--epochs", "3"], "drop --epochs"),
        (["--recipe", "default", "--nproc", "2"], "drop --nproc"),
        (["--recipe", "default", "--copies", "99"], "at most 14"),
        (["--recipe", "tiny", "--copies", "2"], "--copies is only used by --recipe default"),
        (["--recipe", "default", "--backbone", "/x"], "--backbone is only used by --recipe"),
    ],
)
def test_recipe_options_are_checked(corpus, tmp_path, capsys, argv, message):
    code = main(["train", *argv, "--corpus", f"csv:{corpus[0]}", "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_the_recipes_are_listed(capsys):
    assert main(["train", "--list-recipes"]) == 0
    listed = dict(line.split("\t", 1) for line in capsys.readouterr().out.splitlines())
    assert {"default", "whisper-linear", "tiny"} <= set(listed)
    from emovox.training.recipes import get_recipe

    assert get_recipe("default").closed_form and not get_recipe("tiny").closed_form
