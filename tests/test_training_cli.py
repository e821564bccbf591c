"""``emovox train`` end to end on a synthetic RAVDESS-layout corpus, incl. kill -9 and --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from emovox.cli.main import main
from emovox.testing import speech_like, write_audio

EMOTION_F0 = {"01": 110.0, "03": 190.0, "05": 280.0}  # neutral, happy, angry: separable by pitch


def make_ravdess(root: Path, *, actors: int = 6, duration_s: float = 0.8) -> Path:
    """RAVDESS file names (03-01-EE-II-SS-RR-AA.wav) over speech-like synthetic audio."""
    for actor in range(1, actors + 1):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for emotion, f0 in EMOTION_F0.items():
            for statement in ("01", "02"):
                for repetition in ("01", "02"):
                    seed = int(f"{actor}{emotion}{statement}{repetition}")
                    y = speech_like(duration_s, f0_hz=f0 * (1 + 0.03 * (actor % 3)), seed=seed)
                    write_audio(
                        folder / f"03-01-{emotion}-01-{statement}-{repetition}-{actor:02d}.wav", y, sample_rate_hz=16000
                    )
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_ravdess(tmp_path_factory.mktemp("ravdess"))


def train_args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--recipe",
        "tiny",
        "--corpus",
        f"ravdess={corpus}",
        "--out",
        str(out),
        "--no-progress",
        "--threads",
        "1",
        *extra,
    ]


def test_tiny_recipe_trains_from_the_cli_and_writes_an_artifact(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_args(corpus, out, "--epochs", "4", "--folds", "3", "--fold", "1")) == 0
    printed = capsys.readouterr().out
    assert "val UAR" in printed and "test UAR" in printed
    for name in (
        "log.json",
        "log.csv",
        "curves.png",
        "checkpoint.safetensors",
        "summary.json",
        "model/model.safetensors",
        "model/config.json",
    ):
        assert (out / name).is_file(), name
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["task"]["labels"] == ["neutral", "happy", "angry"]
    assert config["architecture"]["name"] == "tiny-cnn"
    card = config["training"]["data"]
    assert card["corpora"] == ["ravdess"] and card["licences"]["ravdess"].startswith("CC BY-NC-SA")
    protocol = config["training"]["protocol"]
    train_speakers = set(card["speakers"])
    assert not train_speakers & set(protocol["test_speakers"])  # speaker-independent
    assert not train_speakers & set(protocol["validation_speakers"])
    assert config["training"]["config"]["epochs"] == 4
    assert set(config["metrics"]) >= {"validation", "test", "best_epoch"}
    assert len(json.loads((out / "log.json").read_text())) == 4


def test_config_file_and_flags(corpus, tmp_path):
    cfg = tmp_path / "train.json"
    cfg.write_text(
        json.dumps(
            {
                "recipe": "tiny",
                "corpus": f"ravdess:{corpus}",
                "out": str(tmp_path / "run"),
                "epochs": 1,
                "train": {"batch_size": 8, "progress": False},
                "limit": 30,
            }
        )
    )
    assert main(["train", "--config", str(cfg), "--seed", "3"]) == 0
    saved = json.loads((tmp_path / "run" / "model" / "config.json").read_text())["training"]
    assert saved["config"]["batch_size"] == 8 and saved["config"]["seed"] == 3
    assert saved["data"]["n_clips"] + saved["validation_data"]["n_clips"] == 30


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--recipe", "nope", "--corpus", "ravdess", "--out", "x"], "unknown recipe 'nope'"),
        (["train", "--corpus", "ravdess"], "no output folder"),
        (["train", "--corpus", "csv", "--out", "x"], "corpus 'csv' needs its path"),
        (["train", "--corpus", "mystery:/data", "--out", "x"], "unknown corpus 'mystery:/data'"),
        (["train", "--out", "x"], "no training data"),
        (["train", "--corpus", "ravdess", "--out", "x", "--fold", "1"], "--fold needs --folds"),
        (["train", "--config", "/nonexistent.json"], "does not exist"),
    ],
)
def test_cli_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_list_recipes(capsys):
    assert main(["train", "--list-recipes"]) == 0
    assert "tiny\t" in capsys.readouterr().out


def _run_cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "emovox.cli.main", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


#: Run ``emovox train`` (arguments after ``-c CODE``), sending itself SIGKILL at one exact point of
#: its N-th checkpoint write: "written" = the temporary file is complete but not yet renamed into
#: place; "renamed" = the checkpoint is in place, the next epoch not started. No timing involved.
KILL_AT_CHECKPOINT = """
import contextlib, os, signal, sys
from pathlib import Path

import emovox.fileio as fileio

N, WHEN = int(os.environ["KILL_AT_CHECKPOINT"]), os.environ["KILL_WHEN"]
real_atomic_output = fileio.atomic_output
written = 0


@contextlib.contextmanager
def atomic_output(path):
    global written
    checkpoint = Path(path).name == "checkpoint.safetensors"
    with real_atomic_output(path) as tmp:
        yield tmp
        if checkpoint and WHEN == "written" and written + 1 == N:
            os.kill(os.getpid(), signal.SIGKILL)
    if checkpoint:
        written += 1
        if WHEN == "renamed" and written == N:
            os.kill(os.getpid(), signal.SIGKILL)


fileio.atomic_output = atomic_output
from emovox.cli.main import main

sys.exit(main(sys.argv[1:]))
"""

KILL_EPOCHS = "6"


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("straight") / "run"
    reference = _run_cli(train_args(corpus, out, "--epochs", KILL_EPOCHS))
    _, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err.decode()
    return out


@pytest.mark.parametrize("checkpoint, when", [(2, "written"), (3, "renamed")])
def test_kill_9_then_resume_ends_bit_identical_to_an_uninterrupted_run(
    corpus, uninterrupted, tmp_path, checkpoint, when
):
    """SIGKILL a training process inside its 2nd checkpoint write (temporary file complete, not yet in
    place) or right after its 3rd, resume, and compare bitwise with a run that was never interrupted."""
    epochs = KILL_EPOCHS
    straight = uninterrupted
    killed = tmp_path / "killed"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "KILL_AT_CHECKPOINT": str(checkpoint),
        "KILL_WHEN": when,
    }
    victim = subprocess.run(
        [sys.executable, "-c", KILL_AT_CHECKPOINT, *train_args(corpus, killed, "--epochs", epochs)],
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert victim.returncode == -signal.SIGKILL, victim.stderr.decode()
    assert not (killed / "model").exists()
    interrupted_at = len(json.loads((killed / "log.json").read_text()))  # written before each checkpoint
    assert interrupted_at == checkpoint
    left_over = list(killed.glob(".checkpoint.safetensors.*.tmp"))
    assert len(left_over) == (1 if when == "written" else 0)  # the kill came where it was meant to

    resumed = _run_cli(train_args(corpus, killed, "--epochs", epochs, "--resume"))
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err.decode()

    a = load_file(str(straight / "model" / "model.safetensors"))
    b = load_file(str(killed / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key

    def strip(history):
        return [{k: v for k, v in r.items() if k != "time_s"} for r in history]

    assert strip(json.loads((straight / "log.json").read_text())) == strip(
        json.loads((killed / "log.json").read_text())
    )
    summary_a = json.loads((straight / "summary.json").read_text())
    summary_b = json.loads((killed / "summary.json").read_text())
    assert summary_a["metrics"] == summary_b["metrics"]


def test_feature_recipe_normalises_with_training_statistics_and_evaluates_identically(corpus, tmp_path):
    """A "features" recipe: the artifact stores the scaler; ``emovox evaluate --model`` reproduces the inputs."""
    from emovox.corpora import load_corpus
    from emovox.models.artifact import load_artifact
    from emovox.training import TrainConfig
    from emovox.training.predict import ArtifactModel
    from emovox.training.recipes import Recipe
    from emovox.training.run import run_recipe

    recipe = Recipe(
        name="mlp-test",
        arch="tiny-mlp",
        arch_params={"hidden": 16},
        train=TrainConfig(epochs=3, batch_size=8, progress=False, early_stop_patience=None),
        input_kind="features",
        feature="mfcc-functionals",
        clip_s=0.8,
        val_fraction=0.3,
    )
    records = load_corpus("ravdess", corpus)
    summary = run_recipe(recipe, records, out_dir=tmp_path / "run", folds=3, fold=0)
    model, config = load_artifact(summary["artifact"])
    task = config["task"]
    assert task["input_kind"] == "features" and task["feature"] == "mfcc-functionals"
    stats = config["preprocessing"]["normalization"]
    assert len(stats["mean"]) == task["feature_dims"][0]
    test_speakers = set(summary["protocol"]["test_speakers"])
    test = [r for r in records if r.speaker_key in test_speakers]
    classes = task["labels"]
    y_true = np.array([classes.index(r.emotion) for r in test])
    y_pred = ArtifactModel(summary["artifact"]).scores(test, classes)[0].argmax(axis=1)
    # the same inputs as in training -> the same test accuracy as the one saved at training time
    assert float(np.mean(y_true == y_pred)) == pytest.approx(summary["metrics"]["test"]["accuracy"])


class CountingAugmentation:
    """Wraps a seed recipe's waveform augmentation and records every clip it is applied to."""

    def __init__(self, inner):
        self.inner = inner
        self.seen: list[np.ndarray] = []

    def __call__(self, y, **kwargs):
        self.seen.append(np.array(y, copy=True))
        return self.inner(y, **kwargs)

    def to_dict(self) -> dict:
        return self.inner.to_dict()


@pytest.mark.parametrize("name", ["s0", "s1"])
def test_cli_trained_seed_replica_uses_its_own_scaling_and_augments_training_draws_only(
    name, corpus, tmp_path, monkeypatch
):
    """``emovox train --recipe sN`` = the bench's pipeline: the seed's scaling, augmentation of training
    clips only (each exactly once per epoch), and an artifact that evaluates to the recorded test figure."""
    from emovox.cli.train import _limit
    from emovox.corpora import load_corpus
    from emovox.labels import get_scheme
    from emovox.recipes import seeds
    from emovox.training.pipeline import load_waveforms
    from emovox.training.predict import ArtifactModel

    original = seeds.seed_recipe(name)
    counter = None
    if original.augmentation is not None:
        counter = CountingAugmentation(original.augmentation)
        monkeypatch.setitem(seeds.SEED_RECIPES, name, lambda: original.with_changes(augmentation=counter))
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--recipe",
                name,
                "--corpus",
                f"ravdess={corpus}",
                "--out",
                str(out),
                "--limit",
                "40",
                "--epochs",
                "1",
                "--folds",
                "3",
                "--fold",
                "0",
                "--seed",
                "0",
                "--threads",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    config = json.loads((out / "model" / "config.json").read_text())
    pre, task = config["preprocessing"], config["task"]
    assert task["feature"] == f"seed-{name}" and config["training"]["recipe"]["make_datasets"]
    assert pre["scaling"] == original.scaling
    if name == "s0":  # the seed fed raw MFCC means: no standard scaling stored or applied
        assert pre["scaling"] == "none" and pre["normalization"] is None and pre["augmentation"] is None
    else:  # the seed's StandardScaler, fitted on the training rows of the fold
        assert pre["scaling"] == "standard"
        assert len(pre["normalization"]["mean"]) == len(pre["normalization"]["std"]) == 4536
        assert pre["augmentation"] == original.augmentation.to_dict()

    records = _limit(load_corpus("ravdess", corpus), 40, 0)
    scheme = get_scheme(summary["protocol"]["scheme"])
    records = [r for r in records if scheme.keeps(r.emotion)]
    if counter is not None:  # one augmentation call per training clip, never a validation or test clip
        train_speakers = set(config["training"]["data"]["speakers"])
        inp = original.input

        def window_keys(subset):
            waves = load_waveforms(subset, sample_rate_hz=inp.sample_rate_hz)
            return sorted(inp.window(y).tobytes() for y in waves)

        train_keys = window_keys([r for r in records if r.speaker_key in train_speakers])
        assert len(counter.seen) == summary["n_train"] == len(train_keys)
        assert sorted(y.tobytes() for y in counter.seen) == train_keys
        assert summary["n_val"] > 0 and summary["n_test"] > 0

    test_speakers = set(summary["protocol"]["test_speakers"])
    test = [r for r in records if r.speaker_key in test_speakers]
    assert len(test) == summary["n_test"]
    classes = task["labels"]
    y_true = np.array([classes.index(scheme.class_of(r.emotion)) for r in test])
    y_pred = ArtifactModel(summary["artifact"]).scores(test, classes)[0].argmax(axis=1)
    assert float(np.mean(y_true == y_pred)) == pytest.approx(summary["metrics"]["test"]["accuracy"])
