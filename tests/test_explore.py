"""``emovox explore``: distribution chart, a waveform and a spectrogram per emotion, index.md."""

from __future__ import annotations

import pytest

from emovox.cli.main import main
from emovox.corpora.explore import explore_records
from emovox.errors import CorpusError
from emovox.testing import speech_like, write_audio

EMOTIONS = {"01": "neutral", "03": "happy", "05": "angry"}


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "ravdess"
    for actor in (1, 2):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        for i, code in enumerate(EMOTIONS):
            for statement in ("01", "02") if code == "05" else ("01",):
                write_audio(
                    folder / f"03-01-{code}-01-{statement}-01-{actor:02d}.wav",
                    speech_like(0.5, f0_hz=120 + 60 * i, seed=actor * 10 + i),
                    sample_rate_hz=16000,
                )
    return root


def test_explore_writes_plots_and_an_index(corpus, tmp_path, capsys):
    out = tmp_path / "explore"
    assert main(["explore", str(corpus), "--corpus", "ravdess", "--out", str(out)]) == 0
    assert "index.md" in capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    expected = {"index.md", "class_distribution.png"}
    expected |= {f"{kind}_{e}.png" for kind in ("waveform", "spectrogram") for e in EMOTIONS.values()}
    assert names == expected
    for name in names - {"index.md"}:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    index = (out / "index.md").read_text()
    assert "| angry | 4 |" in index and "| neutral | 2 |" in index
    assert "8 clips, 2 speakers, 3 emotions" in index
    for name in expected - {"index.md"}:
        assert f"({name})" in index


def test_explore_errors(tmp_path, capsys):
    assert main(["explore", str(tmp_path / "missing"), "--corpus", "ravdess", "--out", str(tmp_path / "o")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    with pytest.raises(CorpusError, match="no records to explore"):
        explore_records([], tmp_path / "o")


def test_explore_runs_without_torch(corpus, tmp_path):
    """Corpus exploration is a core feature: it must not need the torch extra."""
    import subprocess
    import sys

    out = tmp_path / "explore"
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any 'import torch' now raises ImportError
        "from emovox.cli.main import main\n"
        f"sys.exit(main(['explore', {str(corpus)!r}, '--corpus', 'ravdess', '--out', {str(out)!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (out / "class_distribution.png").exists()


# --- feature space: projections and permutation importance ------------------------------------

import csv  # noqa: E402

from emovox.corpora import default_corpora_root  # noqa: E402

CORPORA = default_corpora_root()


def test_explore_features_writes_projections_importance_and_index(corpus, tmp_path, capsys):
    out = tmp_path / "space"
    argv = [
        "explore",
        "--corpus",
        f"ravdess:{corpus}",
        "--features",
        "mfcc-functionals",
        "--projection",
        "pca,tsne",
        "--color",
        "emotion,speaker",
        "--importance",
        "--model",
        "linear",
        "--folds",
        "2",
        "--repeats",
        "2",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0
    assert "index.md" in capsys.readouterr().out
    pngs = {f"projection_{m}_{k}.png" for m in ("pca", "tsne") for k in ("emotion", "speaker")}
    pngs |= {"importance.png", "class_distribution.png"}
    assert {p.name for p in out.iterdir()} == pngs | {"index.md", "importance.csv"}
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"({name})" in (out / "index.md").read_text()
    rows = list(csv.DictReader((out / "importance.csv").open()))
    assert len(rows) == 120, "960 MFCC functionals are grouped by their 120 frame rows"
    assert {r["feature"] for r in rows} >= {"mfcc_0", "d_mfcc_39", "dd_mfcc_7"}
    assert all(r["n_columns"] == "8" and r["n"] == "4" for r in rows)
    drops = [float(r["mean_uar_drop"]) for r in rows]
    assert drops == sorted(drops, reverse=True)
    index = (out / "index.md").read_text()
    assert "8 clips, 2 speakers, 3 classes" in index and "Permutation importance" in index
    assert "(importance.csv)" in index and "| 1 | `" in index
    distinct = {p.read_bytes() for p in corpus.rglob("*.wav")}  # the cache keys on content: twins share
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == len(distinct), "features went through the disk cache"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--importance"], "--importance explores a feature space: add --features"),
        (["--features", "mfcc-functionals", "--projection", "isomap"], "unknown projection 'isomap'"),
        (["--features", "mfcc-functionals", "--color", "gender"], "unknown colouring 'gender'"),
        (["--corpus", "emodb"], "one corpus at a time"),
        (["--features", "no-such-set"], "unknown feature set"),
    ],
)
def test_explore_feature_errors_exit_2_with_one_line(corpus, tmp_path, capsys, extra, message):
    argv = ["explore", str(corpus), "--corpus", "ravdess", "--out", str(tmp_path / "o"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


@pytest.mark.corpora
@pytest.mark.skipif(not (CORPORA / "emodb").is_dir(), reason=f"no EMO-DB under {CORPORA}")
def test_explore_emodb_feature_space_two_speakers(tmp_path, capsys):
    out = tmp_path / "emodb"
    argv = [
        "explore",
        "--corpus",
        "emodb",
        "--max-speakers",
        "2",
        "--features",
        "mfcc-functionals",
        "--importance",
        "--folds",
        "2",
        "--repeats",
        "1",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0
    names = {p.name for p in out.iterdir()}
    assert {f"projection_{m}_{k}.png" for m in ("pca", "tsne") for k in ("emotion", "speaker", "corpus")} <= names
    assert {"importance.csv", "importance.png", "index.md"} <= names
    index = (out / "index.md").read_text()
    assert "2 speakers, 7 classes" in index and "Model `linear`, 2 speaker-disjoint folds" in index
    rows = list(csv.DictReader((out / "importance.csv").open()))
    assert len(rows) == 120 and rows[0]["rank"] == "1"
