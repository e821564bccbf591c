"""The shipped models come out of registered recipes through ``emovox train`` (issue 17, point 1).

``shipped-cnn`` and ``shipped-default`` run end to end on a small slice of
EMO-DB (one epoch; a tiny random Whisper encoder as ``--backbone``, the robust
and adapt steps off), and the artifacts they write load and answer in both
backends; a re-run reuses finished folds, a changed setting is refused; the
driver (``scripts/build_models.py``) runs exactly ``emovox train --recipe
shipped-*`` and installs the result. The settings each recipe defaults to are
the ones recorded in the shipped artifacts. Skipped without the shared corpora.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import pytest

from emovox.cli.main import main

REPO = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("build_models", REPO / "scripts" / "build_models.py")
driver = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(driver)


@pytest.fixture(scope="module", autouse=True)
def _emodb() -> None:
    from emovox.corpora import default_corpora_root

    if not (default_corpora_root() / "emodb").is_dir():
        pytest.skip("EMO-DB not available under the shared corpora")


def _train(argv: list[str]) -> tuple[int, str]:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["train", *argv])
    return code, printed.getvalue()


@pytest.fixture(scope="module")
def cnn_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cnn") / "build"
    code, printed = _train(
        ["--recipe", "shipped-cnn", "--corpus", "emodb", "--limit", "60", "--epochs", "1", "--out", str(out)]
    )
    assert code == 0, printed
    assert "shipped-cnn: 3-fold held-out speakers UAR" in printed
    return out


def test_shipped_cnn_builds_a_calibrated_artifact_that_predicts(cnn_build) -> None:
    from emovox.inference import load_model

    config = json.loads((cnn_build / "model" / "config.json").read_text())
    assert config["training"]["build"] == "emovox train --recipe shipped-cnn"
    assert len(config["training"]["runs"]) == 4  # 3 fold models and the final one
    figures = config["metrics"]["speaker_independent"]
    assert set(figures) == {"emodb", "all"} and figures["all"]["n"] == len(
        json.loads((cnn_build / "work" / "meta.json").read_text())["clips"]
    )
    assert config["calibration"]["n_heldout"] == figures["all"]["n"]  # fitted on every out-of-fold clip
    assert (cnn_build / "model_card.md").read_text() == config["model_card"]
    clip = json.loads((cnn_build / "work" / "meta.json").read_text())["clips"][0]["path"]
    torch_answer, onnx_answer = (load_model(cnn_build / "model", backend=b).predict(clip) for b in ("torch", "onnx"))
    assert torch_answer.label == onnx_answer.label and set(torch_answer.scores) == set(config["task"]["labels"])
    assert dict(torch_answer.scores) == pytest.approx(dict(onnx_answer.scores), abs=1e-4)


def test_shipped_cnn_rerun_reuses_finished_folds_and_refuses_other_settings(cnn_build) -> None:
    fold_model = cnn_build / "work" / "model_0.safetensors"
    before = fold_model.stat().st_mtime_ns
    code, _ = _train(
        ["--recipe", "shipped-cnn", "--corpus", "emodb", "--limit", "60", "--epochs", "1", "--out", str(cnn_build)]
    )
    assert code == 0 and fold_model.stat().st_mtime_ns == before
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):
        code = main(
            [
                "train",
                "--recipe",
                "shipped-cnn",
                "--corpus",
                "emodb",
                "--limit",
                "60",
                "--epochs",
                "2",
                "--out",
                str(cnn_build),
            ]
        )
    assert code == 2 and "holds fold models built with" in printed.getvalue()


def test_driver_runs_the_recipe_and_installs_artifact_and_card(cnn_build, tmp_path, capsys) -> None:
    assert driver.main(["cnn", "--dry-run", "--out", str(tmp_path / "x")]) == 0
    printed = capsys.readouterr().out
    assert "emovox.cli.main train --recipe shipped-cnn" in printed
    assert printed.count("--corpus") == 4
    driver.install("cnn", cnn_build, root=tmp_path)
    installed = tmp_path / "src" / "emovox" / "pretrained" / "cnn"
    assert sorted(p.name for p in installed.iterdir()) == sorted(p.name for p in (cnn_build / "model").iterdir())
    assert (tmp_path / "docs" / "model_card_cnn.md").read_text() == (cnn_build / "model_card.md").read_text()


def test_shipped_default_builds_from_a_backbone_folder(tmp_path) -> None:
    from emovox.inference import load_model
    from emovox.models.whisper_encoder import WhisperEncoderConfig
    from emovox.testing import write_tiny_whisper_encoder

    encoder = write_tiny_whisper_encoder(
        tmp_path / "encoder", WhisperEncoderConfig(n_mels=80, d_model=32, n_heads=2, n_layers=4, n_ctx=1500)
    )
    out = tmp_path / "build"
    argv = ["--recipe", "shipped-default", "--corpus", "emodb", "--limit", "60", "--backbone", str(encoder)]
    argv += ["--set", "robust=false", "--set", "adapt=false", "--set", "onnx=fp16", "--out", str(out)]
    code, printed = _train(argv)
    assert code == 0, printed
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["training"]["build"] == "emovox train --recipe shipped-default"
    assert config["training"]["layers"] == [0, 1, 2, 3, 4] and len(config["training"]["folds"]) == 3
    assert config["metrics"]["shipped_onnx_vs_torch"]["max_prob_diff"] <= 1e-4
    assert (out / "model" / "LICENSE-whisper.txt").is_file()
    clip = str(REPO / "src" / "emovox" / "examples" / "hello.flac")
    a, b = (load_model(out / "model", backend=x).predict(clip) for x in ("torch", "onnx"))
    assert a.label == b.label and dict(a.scores) == pytest.approx(dict(b.scores), abs=1e-4)


def test_shipped_default_refuses_the_shared_corpora_steps_on_other_data(tmp_path, capsys) -> None:
    code = main(
        ["train", "--recipe", "shipped-default", "--corpus", "emodb", "--limit", "20", "--out", str(tmp_path / "b")]
    )
    error = capsys.readouterr().err
    assert code == 2 and "--set robust=false --set adapt=false" in error and len(error.strip().splitlines()) == 1


def test_unknown_setting_is_one_line_naming_the_settings(tmp_path, capsys) -> None:
    code = main(
        ["train", "--recipe", "shipped-cnn", "--corpus", "emodb", "--set", "parallell=1", "--out", str(tmp_path)]
    )
    error = capsys.readouterr().err
    assert code == 2 and "'epochs', 'folds', 'parallel', 'seed'" in error
    code = main(["train", "--recipe", "shipped-cnn", "--corpus", "emodb", "--set", "parallel", "--out", str(tmp_path)])
    error = capsys.readouterr().err
    assert code == 2 and "must be KEY=VALUE" in error and len(error.strip().splitlines()) == 1
    code = main(["train", "--recipe", "tiny", "--corpus", "emodb", "--set", "x=1", "--out", str(tmp_path)])
    assert code == 2 and "--set is for recipes with settings" in capsys.readouterr().err


def test_recipe_defaults_are_what_the_shipped_artifacts_record() -> None:
    from emovox.recipes import build_cnn, build_default
    from emovox.recipes.flagship import FlagshipRecipe

    cnn = json.loads((REPO / "src" / "emovox" / "pretrained" / "cnn" / "config.json").read_text())
    settings = build_cnn.SETTINGS
    assert (
        cnn["training"]["runs"][-1]["recipe"]
        == FlagshipRecipe(epochs=settings["epochs"], seed=settings["seed"]).to_dict()
    )
    assert len(cnn["training"]["runs"]) == settings["folds"] + 1
    default = json.loads((REPO / "src" / "emovox" / "pretrained" / "default" / "config.json").read_text())
    training = default["training"]
    assert training["depth"] == build_default.SETTINGS["depth"] and training["head"] == build_default.SETTINGS["head"]
    assert training["Cs"] == list(build_default.LINEAR_CS)
    assert training["layers"] == list(range(build_default.SETTINGS["depth"] + 1))


def test_shipped_default_refuses_folds_that_miss_a_class(tmp_path, capsys) -> None:
    from emovox.models.whisper_encoder import WhisperEncoderConfig
    from emovox.testing import write_tiny_whisper_encoder

    encoder = write_tiny_whisper_encoder(
        tmp_path / "encoder", WhisperEncoderConfig(n_mels=80, d_model=32, n_heads=2, n_layers=2, n_ctx=1500)
    )
    argv = ["train", "--recipe", "shipped-default", "--corpus", "emodb", "--limit", "45", "--backbone", str(encoder)]
    argv += ["--set", "robust=false", "--set", "adapt=false", "--set", "depth=2", "--out", str(tmp_path / "b")]
    code = main(argv)
    error = capsys.readouterr().err
    assert code == 2 and "every fold model must know every class" in error
    assert not (tmp_path / "b" / "model").exists()  # nothing half-built where the artifact goes
