"""ONNX export (emovox.export) and the ONNX backend: parity with torch, int8, no torch import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from test_inference import LABELS, make_artifact
from test_vad import SR, bursts

from emovox.cli.main import main
from emovox.errors import ModelError
from emovox.export import export_onnx
from emovox.inference import load_model


def _ravdess_clips(n: int = 4) -> list[str]:
    from emovox.corpora import default_corpora_root

    root = default_corpora_root() / "ravdess" / "Audio_Speech_Actors_01-24"
    if not root.is_dir():
        return []
    return [str(p) for p in sorted(root.glob("Actor_0[1-2]/*.flac"))[::23][:n]]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("onnx")
    art = make_artifact(base / "art")
    onnx_dir = base / "onnx"
    path = export_onnx(art, onnx_dir)
    return art, onnx_dir, path


def test_export_writes_model_onnx_and_the_same_config(exported):
    art, onnx_dir, path = exported
    assert path == onnx_dir / "model.onnx" and path.stat().st_size > 10_000
    assert json.loads((onnx_dir / "config.json").read_text()) == json.loads((art / "config.json").read_text())
    assert not [p for p in onnx_dir.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_onnx_probabilities_match_torch_on_synthetic_clips(exported):
    art, onnx_dir, _ = exported
    # the speech gate off: noise is classified too (with the gate on it is no_speech, the model not run)
    torch_model = load_model(art, backend="torch", gate=False)
    onnx_model = load_model(onnx_dir, backend="onnx", gate=False)
    rng = np.random.default_rng(0)
    sources = [bursts(seed=1, n=1)[0], (0.1 * rng.standard_normal(SR * 2)).astype(np.float32)]
    for src in sources:
        a, b = torch_model.predict(src, sample_rate=SR), onnx_model.predict(src, sample_rate=SR)
        assert a.label == b.label
        assert max(abs(a.scores[k] - b.scores[k]) for k in LABELS) < 1e-4
    gated = load_model(onnx_dir, backend="onnx").predict(sources[1], sample_rate=SR)
    assert (gated.label, gated.scores) == ("no_speech", {})
    # variable batch size and length through the dynamic axes
    x = (0.1 * rng.standard_normal((3, SR * 2))).astype(np.float32)
    np.testing.assert_allclose(onnx_model.backend.logits(x), torch_model.backend.logits(x), atol=1e-3, rtol=1e-4)


@pytest.mark.skipif(not _ravdess_clips(), reason="RAVDESS corpus not available")
def test_parity_on_real_ravdess_clips_is_within_1e_4(exported):
    art, onnx_dir, _ = exported
    a = load_model(art, backend="torch").predict_batch(_ravdess_clips())
    b = load_model(onnx_dir, backend="onnx").predict_batch(_ravdess_clips())
    diff = max(abs(p.scores[k] - q.scores[k]) for p, q in zip(a, b) for k in LABELS)
    assert diff < 1e-4


def test_int8_export_loads_and_stays_close(exported, tmp_path):
    art, onnx_dir, _ = exported
    assert main(["export", str(art), "--format", "onnx", "--int8", "--out", str(tmp_path)]) == 0
    int8 = load_model(tmp_path, backend="onnx")
    fp32 = load_model(onnx_dir, backend="onnx")
    y = bursts(seed=2, n=1)[0]
    p, q = int8.predict(y, sample_rate=SR), fp32.predict(y, sample_rate=SR)
    assert set(p.scores) == set(LABELS)
    assert max(abs(p.scores[k] - q.scores[k]) for k in LABELS) < 0.05


def test_export_cli_defaults_to_the_artifact_folder_and_reports_errors(exported, tmp_path, capsys):
    art, _, _ = exported
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(art, copy)
    assert main(["export", str(copy)]) == 0
    assert (copy / "model.onnx").is_file() and (copy / "model.safetensors").is_file()
    auto = load_model(copy)  # backend auto picks onnx when model.onnx exists
    assert auto.backend.name == "onnx"
    assert main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ModelError, match="no config.json|not an emovox"):
        export_onnx(tmp_path, tmp_path / "o2")


def test_onnx_path_never_imports_torch(exported, tmp_path):
    _, onnx_dir, _ = exported
    wav = tmp_path / "long.wav"
    sf.write(wav, bursts(seed=3, n=3)[0], SR)
    code = f"""
import sys, json
from emovox.inference import load_model
m = load_model({str(onnx_dir)!r}, backend="onnx")
p = m.predict({str(wav)!r})
t = m.predict_timeline({str(wav)!r}, vad="silero")
from emovox.cli.main import main
rc = main(["predict", "--model", {str(onnx_dir)!r}, "--backend", "onnx", "--json", "--timeline",
           {str(wav)!r}])
assert rc == 0, rc
bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not bad, bad[:5]
"""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    record = json.loads(out.stdout)[0]
    assert {"file", "start_s", "end_s", "label", "confidence", "scores", "timeline"} <= set(record)


def test_variable_length_model_exports_with_a_dynamic_length(tmp_path):
    art = make_artifact(tmp_path / "var", preprocessing={"crop": "none", "trim_silence": True})
    export_onnx(art, art)  # the export itself checks a second length
    # the gate off: the synthetic burst is too little speech for it, and this checks the model's parity
    a, b = load_model(art, backend="torch", gate=False), load_model(art, backend="onnx", gate=False)
    y = bursts(seed=6, n=1)[0][: int(1.3 * SR)]
    p, q = a.predict(y, sample_rate=SR), b.predict(y, sample_rate=SR)
    assert max(abs(p.scores[k] - q.scores[k]) for k in LABELS) < 1e-4
