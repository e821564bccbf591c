"""``emovox explore``: distribution chart, a waveform and a spectrogram per emotion, index.md."""

from __future__ import annotations

import pytest

from emovox.cli.main import main
from emovox.errors import CorpusError
from emovox.testing import speech_like, write_audio
from emovox.corpora.explore import explore_records

EMOTIONS = {"01": "neutral", "03": "happy", "05": "angry"}


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "ravdess"
    for actor in (1, 2):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        for i, code in enumerate(EMOTIONS):
            for statement in ("01", "02") if code == "05" else ("01",):
                write_audio(folder / f"03-01-{code}-01-{statement}-01-{actor:02d}.wav",
                            speech_like(0.5, f0_hz=120 + 60 * i, seed=actor * 10 + i), sample_rate_hz=16000)
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
    code = ("import sys; sys.modules['torch'] = None\n"  # any 'import torch' now raises ImportError
            "from emovox.cli.main import main\n"
            f"sys.exit(main(['explore', {str(corpus)!r}, '--corpus', 'ravdess', '--out', {str(out)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (out / "class_distribution.png").exists()
