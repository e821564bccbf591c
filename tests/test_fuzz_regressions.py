"""Every crash the fuzzers found, as a regression test; plus a short fuzz pass of each harness.

Each ``test_<bug>`` calls the public API the way the crashing input did and
checks the one-line emovox error that replaced the crash. The saved crash
inputs (``fuzz/crashes/<harness>-<bug>.bin``) are also replayed through their
harness. ``test_short_fuzz_pass`` runs every harness for a few seconds under
libFuzzer (atheris), as CI's smoke check; ``fuzz/run.py`` runs them at length.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from emovox.errors import ConfigError, ModelError

ROOT = Path(__file__).resolve().parents[1]
FUZZ = ROOT / "fuzz"
CRASHES = FUZZ / "crashes"
HARNESSES = ("audio", "artifact", "corpus_names", "labels", "stream_protocol")


def _has_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


needs_atheris = pytest.mark.skipif(not _has_atheris(), reason="atheris not installed (pip install 'emovox[fuzz]')")


# ------------------------------------------------------------------ labels harness
@pytest.mark.parametrize("spec", ["~nosuchuser", "~nosuchuser/scheme.json"])
def test_label_scheme_tilde_unknown_user(spec):
    """Path.expanduser raised RuntimeError ('Could not determine home directory') on '~unknown-user'."""
    from emovox.labels import load_mapping, resolve_scheme

    with pytest.raises(ConfigError, match="nosuchuser"):
        resolve_scheme(spec)
    with pytest.raises(ConfigError, match="nosuchuser"):
        load_mapping(spec)


@pytest.mark.parametrize("spec", ["s" * 300, "é" * 200 + ".json", ("x" * 300 + "/") * 2])
def test_label_scheme_name_too_long(spec):
    """Path.is_file raised OSError ENAMETOOLONG for a scheme/mapping argument over 255 bytes."""
    from emovox.labels import load_mapping, resolve_scheme

    with pytest.raises(ConfigError):
        resolve_scheme(spec)
    with pytest.raises(ConfigError):
        load_mapping(spec)


def test_paths_too_long_for_the_file_system_are_clear_errors(tmp_path):
    """Same bug class elsewhere: model folders and corpus roots named over 255 bytes."""
    from emovox.corpora import load_corpus
    from emovox.errors import CorpusError
    from emovox.inference.backends import read_config
    from emovox.models.artifact import load_artifact

    long = str(tmp_path / ("m" * 300))
    with pytest.raises(ModelError):
        load_artifact(long)
    with pytest.raises(ModelError):
        read_config(long)
    with pytest.raises(CorpusError):
        load_corpus("ravdess", long)


# ------------------------------------------------------------------ artifact harness
def _config(**changes) -> dict:
    config = {
        "format_version": "1.0",
        "package_version": "0.1.0",
        "task": {"labels": ["neutral", "happy"], "sample_rate_hz": 16000, "clip_s": 1.0},
        "architecture": {"name": "tiny-cnn", "params": {"channels": 2, "n_mels": 8}},
    }
    config.update(changes)
    return config


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"calibration": [1.5]}, "calibration"),
        ({"calibration": {"temperature": "hot"}}, "temperature"),
        ({"calibration": {"temperature": -1}}, "temperature"),
        ({"threshold": "0.5"}, "threshold"),
        ({"threshold": {"v": 1}}, "threshold"),
        ({"preprocessing": "peak"}, "preprocessing"),
        ({"preprocessing": {"crop": ["center"]}}, "crop"),
        ({"preprocessing": {"normalize": {}}}, "normalize"),
        ({"preprocessing": {"trim_silence": "yes"}}, "trim_silence"),
        ({"task": {"labels": ["a", "b"], "sample_rate_hz": "16k"}}, "sample_rate_hz"),
        ({"task": {"labels": ["a", "b"], "sample_rate_hz": 1e300}}, "sample_rate_hz"),
        ({"task": {"labels": ["a", "b"], "clip_s": 1e12}}, "clip_s"),
        ({"task": {"labels": ["a", "b"], "clip_s": 0}}, "clip_s"),
        ({"task": {"labels": "ab"}}, "labels"),
        ({"task": {"labels": [1, 2]}}, "labels"),
        ({"task": {"labels": ["a", "a"]}}, "labels"),
    ],
)
def test_model_config_field_of_wrong_type(changes, match):
    """ModelInfo.from_config called .get on a list / float() on any value: AttributeError, ValueError."""
    from emovox.inference.backends import ModelInfo

    with pytest.raises(ModelError, match=match):
        ModelInfo.from_config(_config(**changes))


def _tiny_artifact(folder: Path) -> Path:
    import torch

    from emovox.models.artifact import make_config, save_artifact
    from emovox.models.registry import build_model
    from emovox.models.spec import TaskSpec

    torch.manual_seed(0)
    spec = TaskSpec(labels=("neutral", "happy", "angry"), sample_rate_hz=16000, clip_s=0.5)
    model = build_model("tiny-cnn", spec, channels=2, n_mels=8)
    return save_artifact(folder, model, make_config(spec, "tiny-cnn", {"channels": 2, "n_mels": 8}))


def _edit_config(folder: Path, edit) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize(
    "name, edit, match",
    [
        ("calibration-list", lambda c: c.update(calibration=[1]), "calibration"),
        ("params-list", lambda c: c["architecture"].update(params=[1, 2]), "params"),
        ("params-wrong-type", lambda c: c["architecture"]["params"].update(channels="many"), "cannot be built"),
        ("params-negative", lambda c: c["architecture"]["params"].update(channels=-3), "cannot be built|rejected"),
        ("threshold-string", lambda c: c.update(threshold="high"), "threshold"),
    ],
)
def test_artifact_config_of_wrong_type_is_a_model_error(tmp_path, name, edit, match):
    """load_artifact let TypeError/ValueError/RuntimeError of the builders and dict() escape."""
    from emovox.models.artifact import load_artifact

    folder = _tiny_artifact(tmp_path / name)
    _edit_config(folder, edit)
    with pytest.raises(ModelError, match=match):
        load_artifact(folder)


def test_artifact_declaring_a_huge_model_is_refused_before_allocating(tmp_path):
    """channels=2**20 built a multi-GB model before the weights' shapes were compared."""
    from emovox.models.artifact import load_artifact

    folder = _tiny_artifact(tmp_path / "huge")
    _edit_config(folder, lambda c: c["architecture"]["params"].update(channels=1 << 20))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ModelError, match="shape|match"):
        load_artifact(folder)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    # the behaviour, not the speed: a model this size built for real would take gigabytes
    assert grown_mb < 200, f"peak memory grew {grown_mb:.0f} MB"


@pytest.mark.parametrize(
    "header_patch",
    [
        {"shape": [1 << 40, 1 << 20]},
        {"dtype": "Q17"},
        {"data_offsets": [0, 1 << 50]},
        {"shape": [-1]},
    ],
)
def test_safetensors_header_lies_is_a_model_error(tmp_path, header_patch):
    """Hostile safetensors headers: huge shapes, unknown dtype, offsets past the end, negative sizes."""
    import struct

    from emovox.models.artifact import load_artifact

    folder = _tiny_artifact(tmp_path / "w")
    raw = (folder / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    key = next(k for k in header if k != "__metadata__")
    header[key] = {**header[key], **header_patch}
    text = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])
    with pytest.raises(ModelError, match="safetensors|shape|match"):
        load_artifact(folder)


# ------------------------------------------------------------------ saved crash inputs, replayed
def _crash_files():
    return sorted(CRASHES.glob("*.bin")) if CRASHES.is_dir() else []


@needs_atheris
@pytest.mark.timeout(300)
def test_saved_crash_inputs_pass_their_harness():
    """Every input in fuzz/crashes/ (named <harness>-<bug>.bin) runs through its harness cleanly."""
    files = _crash_files()
    assert files, "fuzz/crashes/ holds the inputs of every crash found"
    by_harness: dict[str, list[str]] = {}
    for f in files:
        harness = next(h for h in HARNESSES if f.name.startswith(h + "-"))
        by_harness.setdefault(harness, []).append(str(f))
    for harness, inputs in by_harness.items():
        proc = subprocess.run(
            [sys.executable, str(FUZZ / f"fuzz_{harness}.py"), "-runs=0", *inputs],
            cwd=FUZZ,
            capture_output=True,
            text=True,
            timeout=240,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


# ------------------------------------------------------------------ the CI fuzz pass
@needs_atheris
@pytest.mark.timeout(600)
@pytest.mark.parametrize("harness", HARNESSES)
def test_short_fuzz_pass(harness, tmp_path):
    """A few seconds of coverage-guided fuzzing per harness finds no crash, hang or memory blow-up."""
    seconds = int(os.environ.get("EMOVOX_FUZZ_SECONDS", "4"))
    proc = subprocess.run(
        [
            sys.executable,
            str(FUZZ / "run.py"),
            harness,
            "--seconds",
            str(seconds),
            "--jobs",
            "1",
            "--workdir",
            str(tmp_path),
            "--rss-limit-mb",
            "2048",
            "--timeout-s",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    result = summary["results"][0]
    assert proc.returncode == 0 and not result["crashes"], proc.stdout + proc.stderr[-3000:]
    assert result["executions"] > 0 and result["cov"] > 0, result


def test_corpus_entry_tilde_unknown_user(capsys):
    """Same bug as the label spec, in `--corpus LAYOUT:~unknown-user/...` (evaluate, features, train)."""
    from emovox.cli.main import main

    code = main(
        [
            "features",
            "--corpus",
            "folder:~nosuchuser/data",
            "--set",
            "mfcc-functionals",
            "--out",
            "/nonexistent-dir/x.safetensors",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "nosuchuser" in err, err
