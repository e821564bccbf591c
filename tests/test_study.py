"""Study files (``emovox run``) and late fusion: parsing, errors, a small study end to end, resume after a kill."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from emovox.cli.main import main
from emovox.errors import ConfigError
from emovox.evaluation.fusion import fuse_results
from emovox.evaluation.study_file import load_study, parse_study

# ---------------------------------------------------------------------------
# A user's own small corpus: 6 speakers x 3 emotions x 3 clips, pitch and level set by the emotion.


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from emovox.testing import speech_like, write_audio

    folder = tmp_path_factory.mktemp("own")
    rows = ["path,label,speaker,arousal"]
    for speaker in range(6):
        for k, label in enumerate(("sad", "neutral", "angry")):
            for take in range(3):
                path = folder / f"s{speaker}_{label}_{take}.wav"
                y = speech_like(0.7, f0_hz=100 + 70 * k + 5 * speaker, seed=100 * speaker + 10 * k + take)
                write_audio(path, (0.15 + 0.3 * k) * y, sample_rate_hz=16000)
                rows.append(f"{path},{label},spk{speaker},{k + 0.1 * take}")
    manifest = folder / "mine.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def _study_text(manifest, cache, *, models=("linear", "knn"), extra: str = "") -> str:
    return f"""
name = "small"
features = ["mfcc-functionals"]
models = {json.dumps(list(models))}
cache_dir = "{cache}"

[[data]]
name = "mine"
corpora = ["csv:{manifest}"]
protocol = "loso"

[[data]]
name = "mine3"
corpora = ["csv:{manifest}"]
protocol = "speaker-kfold"
folds = 3
{extra}
"""


FUSION = """
[[fusion]]
name = "both"
data = "mine"
members = ["mfcc-functionals/linear", "mfcc-functionals/knn"]

[explore]
projections = ["pca"]
colors = ["emotion", "speaker"]
"""


def test_a_small_study_writes_one_table_with_intervals_a_comparison_a_fusion_and_maps(tmp_path, corpus, capsys):
    study_file = tmp_path / "study.toml"
    study_file.write_text(_study_text(corpus, tmp_path / "cache", extra=FUSION))
    out = tmp_path / "out"
    assert main(["run", str(study_file), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "UAR" in printed and "results.md" in printed

    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["data"], r["run"], r["kind"]) for r in rows] == [
        ("mine", "mfcc-functionals/linear/seed0", "run"),
        ("mine", "mfcc-functionals/knn/seed0", "run"),
        ("mine3", "mfcc-functionals/linear/seed0", "run"),
        ("mine3", "mfcc-functionals/knn/seed0", "run"),
        ("mine", "both", "fusion"),
    ]
    for row in rows:
        value, low, high = float(row["value"]), float(row["low"]), float(row["high"])
        assert 0 <= low <= value <= high <= 1  # an interval around each figure
        assert row["n_clips"] == "54" and row["n_speakers"] == "6" and row["speaker_independent"] == "True"
    assert any(float(r["high"]) - float(r["low"]) > 0.01 for r in rows), "some run errs, so its interval is wide"
    assert float(rows[0]["value"]) > 0.6, "pitch and level separate these emotions: well above chance (1/3)"

    # The fused run is the mean of its members' probabilities, clip by clip.
    linear = json.loads((out / "runs/mine/mfcc-functionals/linear/seed0/result.json").read_text())
    knn = json.loads((out / "runs/mine/mfcc-functionals/knn/seed0/result.json").read_text())
    fused = json.loads((out / "fusion/mine/both/result.json").read_text())
    for a, b, f in zip(linear["predictions"], knn["predictions"], fused["predictions"]):
        assert a["path"] == b["path"] == f["path"]
        for c in fused["classes"]:
            assert f["scores"][c] == pytest.approx((a["scores"][c] + b["scores"][c]) / 2)
        assert f["predicted"] == max(f["scores"], key=f["scores"].get)

    table = (out / "results.md").read_text()
    assert "Best two:" in table and "p = " in table and "(fusion)" in table
    summary = json.loads((out / "study.json").read_text())
    assert {c["data"] for c in summary["comparisons"]} == {"mine", "mine3"}
    for name in (
        "comparison-mine.png",
        "comparison-mine3.png",
        "explore/mine/mfcc-functionals/projection_pca_emotion.png",
        "explore/mine3/mfcc-functionals/projection_pca_speaker.png",
    ):
        assert (out / name).stat().st_size > 1000, name
    assert "projection_pca_emotion.png" in (out / "explore/mine/mfcc-functionals/index.md").read_text()
    assert "explore/mine/mfcc-functionals/index.md" in table


def test_dry_run_lists_the_grid_and_runs_nothing(tmp_path, corpus, capsys):
    study_file = tmp_path / "study.toml"
    study_file.write_text(_study_text(corpus, tmp_path / "cache", extra=FUSION))
    assert main(["run", str(study_file), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "mine/mfcc-functionals/linear/seed0" and lines[-1].startswith("4 runs, 1 fusions")
    assert not (tmp_path / "out").exists()


def _run_cli(args, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "emovox.cli.main", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_a_killed_study_resumes_where_it_stopped_with_the_same_table(tmp_path, corpus):
    study_file = tmp_path / "study.toml"
    study_file.write_text(_study_text(corpus, tmp_path / "cache", models=("linear", "knn", "rf")))
    out = tmp_path / "out"
    first = out / "runs/mine/mfcc-functionals/linear/seed0/result.json"
    process = _run_cli(["run", str(study_file), "--out", str(out)])
    deadline = time.monotonic() + 600
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # waits on the event (the first result written), bounded
    assert first.exists(), process.communicate()[1]
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert not (out / "results.csv").exists() or process.returncode == 0

    resumed = _run_cli(["run", str(study_file), "--out", str(out)])
    _, log = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, log
    assert "mine/mfcc-functionals/linear/seed0: done before, read back" in log
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 6

    # The same table as a run that was never interrupted (runs are seeded).
    fresh = tmp_path / "fresh"
    assert main(["run", str(study_file), "--out", str(fresh), "--quiet"]) == 0
    again = list(csv.DictReader((fresh / "results.csv").open()))
    assert [(r["run"], r["value"], r["low"], r["high"]) for r in rows] == [
        (r["run"], r["value"], r["low"], r["high"]) for r in again
    ]

    # A changed setting in the file is run again, not read back.
    study_file.write_text(study_file.read_text().replace("folds = 3", "folds = 2"))
    rerun = _run_cli(["run", str(study_file), "--out", str(out)])
    _, log = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, log
    assert "mine3/mfcc-functionals/linear/seed0: running" in log
    assert "mine/mfcc-functionals/linear/seed0: done before" in log


@pytest.mark.parametrize(
    "text, message",
    [
        ('features = ["egemaps"]\nmodels = ["linear"]\n', "at least one [[data]]"),
        ('featurs = ["egemaps"]\n', "did you mean 'features'"),
        (
            'features = ["egemaps"]\nmodels = ["linear"]\n[[data]]\nname = "x"\ncorpora = ["emodb"]\nprotocol = "lso"\n',
            "unknown protocol 'lso'",
        ),
        (
            'features = ["egemaps"]\nmodels = ["linear"]\n[[data]]\nname = "x"\ncorpora = ["emodb"]\nfolds = 1\n',
            "'folds' must be an integer ≥ 2",
        ),
        (
            'features = ["egemaps"]\nmodels = ["linear", "knn"]\n[[data]]\nname = "x"\ncorpora = ["emodb"]\n'
            '[[fusion]]\nname = "f"\ndata = "x"\nmembers = ["egemaps/linear", "egemaps/knnn"]\n',
            "did you mean 'egemaps/knn/seed0'",
        ),
        (
            'features = ["egemaps"]\nmodels = ["linear", "knn"]\n[[data]]\nname = "x"\ncorpora = ["emodb"]\n'
            '[[fusion]]\nname = "f"\ndata = "y"\nmembers = ["egemaps/linear", "egemaps/knn"]\n',
            "unknown data set 'y'",
        ),
        (
            'features = ["egemaps"]\nmodels = ["linear"]\n[[data]]\nname = "x"\ncorpora = ["emodb"]\n'
            '[explore]\nprojections = ["pcb"]\n',
            "unknown projection 'pcb'",
        ),
        ('features = "egemaps\n', "not valid TOML"),
        (
            'features = ["egemaps"]\nmodels = ["knn"]\n[[data]]\nname = "x"\ncorpora = ["emodbb"]\n',
            "unknown corpus 'emodbb'",
        ),
        (
            'features = ["egemaps"]\nmodels = ["knn"]\n[[data]]\nname = "x"\ncorpora = ["emodb"]\ntarget = "arousl"\n',
            "unknown target 'arousl'",
        ),
        (
            'features = ["egemaps"]\nmodels = ["knn"]\n[[data]]\nname = "x"\ncorpora = ["emodb"]\ntarget = "speaker"\n',
            "speaker cannot be predicted",
        ),
        ('features = ["egemaps"]\nmodels = ["knn"]\n[[data]]\nname = ".."\ncorpora = ["emodb"]\n', "it names a folder"),
        (
            'features = ["egemaps"]\nmodels = ["knn"]\ncache_dir = 5\n[[data]]\nname = "x"\ncorpora = ["emodb"]\n',
            "'cache_dir' must be a path",
        ),
        (
            'features = ["egemaps"]\nmodels = ["linear"]\n[[data]]\nname = "x"\ncorpora = ["emodb"]\n'
            '[explore]\nprojections = ["pca"]\ncolors = ["gender"]\n',
            "unknown colouring 'gender'",
        ),
        (
            'features = ["egemaps"]\nmodels = ["linear", "knn"]\n[[data]]\nname = "x"\ncorpora = ["emodb"]\n'
            '[[fusion]]\nname = "f"\ndata = "x"\nmembers = ["egemaps/linear", "egemaps/knn"]\nmethod = "weighted"\n'
            "weights = [1]\n",
            "needs one weight per member (2)",
        ),
        (
            'features = ["egemaps"]\nmodels = ["linear", "knn"]\n[[data]]\nname = "x"\ncorpora = ["ravdess"]\n'
            'target = "intensity"\n[[fusion]]\nname = "f"\ndata = "x"\nmembers = ["egemaps/linear", "egemaps/knn"]\n',
            "is regressed",
        ),
        (
            'features = ["egemaps"]\nmodels = ["knnn"]\n[[data]]\nname = "x"\ncorpora = ["emodb"]\n',
            "unknown model 'knnn'",
        ),
        ('features = ["egemap"]\nmodels = ["knn"]\n[[data]]\nname = "x"\ncorpora = ["emodb"]\n', "egemap"),
        (
            '[[grid]]\nfeatures = ["egemaps"]\nmodel = ["knn"]\n[[data]]\nname = "x"\ncorpora = ["emodb"]\n',
            "[[grid]] #1: unknown key 'model'",
        ),
    ],
)
def test_a_bad_study_file_is_one_line_and_exit_2(tmp_path, capsys, text, message):
    study_file = tmp_path / "study.toml"
    study_file.write_text(text)
    assert main(["run", str(study_file), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_missing_study_file_and_an_out_path_that_is_a_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    study_file = tmp_path / "s.toml"
    study_file.write_text('features = ["egemaps"]\nmodels = ["linear"]\n[[data]]\nname = "x"\ncorpora = ["emodb"]\n')
    (tmp_path / "file").write_text("x")
    assert main(["run", str(study_file), "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_a_changed_features_file_is_run_again_not_read_back(tmp_path, corpus):
    """Resume keys on the feature set's full description: a features file's SHA-256 is part of it."""
    rows = corpus.read_text().splitlines()[1:]
    features = tmp_path / "feats.csv"
    rng = np.random.default_rng(0)

    def write_features(shift: float) -> None:
        lines = ["path,a,b"] + [
            f"{r.split(',')[0]},{rng.normal() + shift * (i % 3)},{rng.normal()}" for i, r in enumerate(rows)
        ]
        features.write_text("\n".join(lines) + "\n")

    write_features(1.0)
    study_file = tmp_path / "study.toml"
    study_file.write_text(
        f'features = ["file:feats.csv"]\nmodels = ["linear"]\ncache_dir = "cache"\n'
        f'[[data]]\nname = "mine"\ncorpora = ["csv:{corpus}"]\nprotocol = "loso"\n'
    )
    logs: list[str] = []
    from emovox.evaluation.study import run_study

    out = tmp_path / "out"
    first = run_study(load_study(study_file), out, log=logs.append)
    assert first["rows"][0]["run"] == "file-feats/linear/seed0"  # the path is relative to the study file
    run_study(load_study(study_file), out, log=logs.append)
    assert logs[-1].endswith("done before, read back")
    write_features(3.0)
    again = run_study(load_study(study_file), out, log=logs.append)
    assert logs[-1].endswith("running") and again["rows"][0]["value"] != first["rows"][0]["value"]


def test_compare_refuses_runs_whose_clips_have_other_speakers():
    from emovox.evaluation.uncertainty import compare_results

    truth = ["a", "b", "a", "b"]
    r1 = _result(np.full((4, 2), 0.5), truth)
    r2 = _result(np.full((4, 2), 0.5), truth)
    for entry in r2["predictions"]:
        entry["speaker"] = "someone-else"
    with pytest.raises(ConfigError, match="different speakers"):
        compare_results(r1, r2)


def test_fusion_refuses_regression_results():
    truth = ["a", "b", "a", "b"]
    r = _result(np.full((4, 2), 0.5), truth)
    regression = {**r, "task": "regression"}
    with pytest.raises(ConfigError, match="fuses classification runs only"):
        fuse_results([r, regression])


def test_relative_corpora_root_is_relative_to_the_study_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "s.toml"
    path.write_text(
        'corpora_root = "../data"\nfeatures = ["egemaps"]\nmodels = ["linear"]\n'
        '[[data]]\nname = "x"\ncorpora = ["emodb"]\n'
    )
    assert load_study(path).corpora_root == str((tmp_path / "data").resolve())


def test_grid_order_and_fusion_member_names():
    study = parse_study(
        {"features": ["a", "b"], "models": ["m"], "seeds": [0, 1], "data": [{"name": "d", "corpora": ["emodb"]}]},
        check=False,
    )
    assert [r.run_id for r in study.runs()] == ["d/a/m/seed0", "d/a/m/seed1", "d/b/m/seed0", "d/b/m/seed1"]
    assert study.find_run("d", "b/m").member == "b/m/seed0"
    assert study.find_run("d", "a/m/seed1").seed == 1
    with pytest.raises(ConfigError, match="not a run of data set 'd'"):
        study.find_run("d", "a/m/seed7")


def test_grid_tables_add_cells_each_once():
    study = parse_study(
        {
            "features": ["a"],
            "models": ["m", "n"],
            "grid": [{"features": ["b"], "models": ["m"]}, {"features": ["a"], "models": ["m"]}],
            "data": [{"name": "d", "corpora": ["emodb"]}],
        },
        check=False,
    )
    assert study.cells == (("a", "m"), ("a", "n"), ("b", "m"))
    assert study.features == ("a", "b")
    only_grids = parse_study(
        {"grid": [{"features": ["b"], "models": ["m"]}], "data": [{"name": "d", "corpora": ["emodb"]}]}, check=False
    )
    assert [r.run_id for r in only_grids.runs()] == ["d/b/m/seed0"]


# ---------------------------------------------------------------------------
# Fusion on hand-made results.


def _result(scores: np.ndarray, truth: list[str], *, classes=("a", "b"), paths=None) -> dict:
    paths = paths or [f"/clip{i}.wav" for i in range(len(truth))]
    predictions = [
        {
            "path": p,
            "fold": f"f{i % 2}",
            "speaker": f"s{i % 4}",
            "true": t,
            "predicted": classes[int(np.argmax(s))],
            "scores": dict(zip(classes, map(float, s))),
        }
        for i, (p, t, s) in enumerate(zip(paths, truth, scores))
    ]
    folds = [
        {"name": f"f{k}", "n_train": 4, "n_test": len(truth) // 2, "test_speakers": [], "speaker_overlap": []}
        for k in range(2)
    ]
    return {
        "classes": list(classes),
        "predictions": predictions,
        "folds": folds,
        "protocol": "loso",
        "speaker_independent": True,
        "config": {"model": "x"},
        "n_samples": len(truth),
    }


def test_fusion_averages_probabilities_and_can_beat_each_member():
    truth = ["a", "b"] * 4
    # Member 1 is sure and right on even clips, unsure and wrong on odd ones; member 2 the reverse.
    right = lambda t: np.array([0.9, 0.1]) if t == "a" else np.array([0.1, 0.9])  # noqa: E731
    wrong_soft = lambda t: np.array([0.4, 0.6]) if t == "a" else np.array([0.6, 0.4])  # noqa: E731
    s1 = np.stack([right(t) if i < 4 else wrong_soft(t) for i, t in enumerate(truth)])
    s2 = np.stack([wrong_soft(t) if i < 4 else right(t) for i, t in enumerate(truth)])
    r1, r2 = _result(s1, truth), _result(s2, truth)
    fused = fuse_results([r1, r2], names=["one", "two"])
    assert fused["pooled"]["accuracy"] == 1.0
    assert max(compute(r) for r in (r1, r2)) == 0.5
    assert fused["config"]["fusion"] == {"members": ["one", "two"], "method": "mean", "weights": [0.5, 0.5]}
    assert "intervals" in fused and fused["intervals"]["uar"]["estimate"] == 1.0
    weighted = fuse_results([r1, r2], method="weighted", weights=[3, 1])
    assert weighted["predictions"][0]["scores"]["a"] == pytest.approx(0.75 * 0.9 + 0.25 * 0.4)


def compute(result) -> float:
    return float(np.mean([p["true"] == p["predicted"] for p in result["predictions"]]))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["predictions"][0].pop("scores"), "stored no class scores"),
        (lambda r: r["predictions"][0].update(path="/other.wav"), "tested other clips"),
        (lambda r: r.update(classes=["b", "a"]), "with the same label scheme"),
    ],
)
def test_fusion_refuses_runs_it_cannot_fuse(change, message):
    truth = ["a", "b", "a", "b"]
    r1 = _result(np.full((4, 2), 0.5), truth)
    r2 = _result(np.full((4, 2), 0.5), truth)
    change(r2)
    with pytest.raises(ConfigError, match=message):
        fuse_results([r1, r2])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "max"}, "unknown fusion method"),
        ({"method": "weighted"}, "needs one weight per run"),
        ({"method": "weighted", "weights": [1, -1]}, "non-negative"),
        ({"weights": [1, 1]}, "takes no weights"),
    ],
)
def test_fusion_settings_errors(kwargs, message):
    r = _result(np.full((4, 2), 0.5), ["a", "b", "a", "b"])
    with pytest.raises(ConfigError, match=message):
        fuse_results([r, r], **kwargs)
