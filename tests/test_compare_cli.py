"""``emovox compare RUN_A RUN_B``: paired comparison of two evaluation runs on the same clips."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from emovox.cli.main import main
from emovox.corpora import default_corpora_root
from emovox.evaluation import leave_one_speaker_out, run_experiment
from emovox.evaluation.report import to_json
from emovox.evaluation.uncertainty import paired_difference

CLASSES = ("angry", "happy", "neutral")
CORPORA = default_corpora_root()


@dataclass(frozen=True)
class _Clip:
    path: str
    corpus: str
    gender: str | None = None


def _data(n_speakers=10, per_speaker=12, seed=0):
    rng = np.random.default_rng(seed)
    speakers = np.repeat([f"toy/{s:02d}" for s in range(n_speakers)], per_speaker)
    y = np.tile(np.arange(3), n_speakers * per_speaker // 3)
    offsets = rng.normal(0, 0.8, (n_speakers, 2))
    X = np.array([[0, 0], [2.5, 0], [0, 2.5]], float)[y] + rng.normal(0, 1.0, (len(y), 2))
    X += offsets[np.repeat(np.arange(n_speakers), per_speaker)]
    records = [_Clip(f"/clips/{i:04d}.wav", "toy") for i in range(len(y))]
    return X, y, speakers, records


def _centroid(use):
    def fit_predict(train, test):
        centres = np.stack([train.X[train.y == c][:, use].mean(axis=0) for c in range(3)])
        return ((test.X[:, None, use] - centres[None]) ** 2).sum(-1).argmin(axis=1)

    return fit_predict


def _write(folder, result):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(to_json(result))
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A: centroid on one feature (weak); B: centroid on both (strong); same clips."""
    root = tmp_path_factory.mktemp("runs")
    X, y, speakers, records = _data()
    common = {"y": y, "classes": CLASSES, "speakers": speakers, "X": X, "records": records, "protocol": "loso"}
    a = run_experiment(leave_one_speaker_out(speakers), _centroid([0]), config={"model": "weak"}, **common)
    b = run_experiment(leave_one_speaker_out(speakers), _centroid([0, 1]), config={"model": "strong"}, **common)
    return _write(root / "weak", a), _write(root / "strong", b), a, b


def _one_error_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("emovox: error: ") and message in err, err


def test_compare_prints_both_runs_and_the_paired_difference(runs, capsys):
    weak, strong, a, b = runs
    assert main(["compare", str(weak), str(strong)]) == 0
    out = capsys.readouterr().out
    assert f"UAR {a['pooled']['uar']:.3f}" in out and f"UAR {b['pooled']['uar']:.3f}" in out
    assert f"B - A  {b['pooled']['uar'] - a['pooled']['uar']:+.3f}" in out
    assert "p = " in out and "permutation" in out and "120 clips, 10 speakers" in out


def test_compare_json_agrees_with_paired_difference(runs, capsys):
    weak, strong, a, b = runs
    assert main(["compare", str(weak / "result.json"), str(strong), "--json", "--n-boot", "500", "--seed", "3"]) == 0
    answer = json.loads(capsys.readouterr().out)
    diff = answer["difference"]
    assert answer["matched_by"] == "path" and answer["n_clips"] == 120 and answer["n_speakers"] == 10
    assert answer["a"]["estimate"] == pytest.approx(a["pooled"]["uar"])
    assert diff["estimate"] == pytest.approx(b["pooled"]["uar"] - a["pooled"]["uar"])
    expected = paired_difference(
        "uar",
        [p["true"] for p in a["predictions"]],
        [p["predicted"] for p in a["predictions"]],
        [p["predicted"] for p in b["predictions"]],
        [p["speaker"] for p in a["predictions"]],
        n_boot=500,
        seed=3,
    )
    assert (diff["low"], diff["high"], diff["p_value"]) == pytest.approx(
        (expected["low"], expected["high"], expected["p_value"])
    )
    assert diff["n_permutations"] == 500 and diff["low"] > 0 and diff["p_value"] < 0.05  # B is truly better
    # accuracy, and the same run against itself: no difference, p = 1
    assert main(["compare", str(weak), str(weak), "--json", "--metric", "accuracy", "--n-boot", "200"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["metric"] == "accuracy" and same["a"]["estimate"] == pytest.approx(a["pooled"]["accuracy"])
    assert same["difference"]["estimate"] == 0 and same["difference"]["p_value"] == 1.0


def test_compare_matches_clips_by_path_not_order(runs, tmp_path, capsys):
    weak, strong, a, b = runs
    shuffled = dict(b, predictions=b["predictions"][::-1])
    _write(tmp_path / "shuffled", shuffled)
    assert main(["compare", str(weak), str(tmp_path / "shuffled"), "--json", "--n-boot", "300"]) == 0
    reordered = json.loads(capsys.readouterr().out)
    assert main(["compare", str(weak), str(strong), "--json", "--n-boot", "300"]) == 0
    assert json.loads(capsys.readouterr().out)["difference"] == reordered["difference"]


def test_compare_different_clip_sets_and_intersect(runs, tmp_path, capsys):
    weak, strong, a, b = runs
    _write(tmp_path / "part", dict(b, predictions=b["predictions"][:90]))
    _one_error_line(capsys, ["compare", str(weak), str(tmp_path / "part")], "--intersect")
    assert main(["compare", str(weak), str(tmp_path / "part"), "--intersect", "--n-boot", "200"]) == 0
    out = capsys.readouterr().out
    assert "90 shared clips" in out and "30 only in A" in out
    other = [dict(p, path=p["path"] + ".other") for p in b["predictions"]]
    _write(tmp_path / "other", dict(b, predictions=other))
    _one_error_line(capsys, ["compare", str(weak), str(tmp_path / "other"), "--intersect"], "share no clips")


def test_compare_by_position_when_no_paths(runs, tmp_path, capsys):
    weak, strong, a, b = runs

    def strip(r):
        return dict(r, predictions=[{k: v for k, v in p.items() if k != "path"} for p in r["predictions"]])

    _write(tmp_path / "a", strip(a))
    _write(tmp_path / "b", strip(b))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--n-boot", "200"]) == 0
    assert "matched by position" in capsys.readouterr().out
    _write(tmp_path / "short", dict(strip(b), predictions=strip(b)["predictions"][:50]))
    _one_error_line(capsys, ["compare", str(tmp_path / "a"), str(tmp_path / "short")], "cannot match clips")


def test_compare_plot(runs, tmp_path, capsys):
    weak, strong, _, _ = runs
    plot = tmp_path / "figs" / "a-vs-b.png"
    assert main(["compare", str(weak), str(strong), "--n-boot", "200", "--plot", str(plot)]) == 0
    assert f"plot: {plot}" in capsys.readouterr().out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_bad_input_exits_2_with_one_line(runs, tmp_path, capsys):
    weak, strong, a, b = runs
    _one_error_line(capsys, ["compare", str(tmp_path / "nope"), str(strong)], "not found")
    (tmp_path / "empty").mkdir()
    _one_error_line(capsys, ["compare", str(tmp_path / "empty"), str(strong)], "no result.json")
    (tmp_path / "bad.json").write_text("{not json")
    _one_error_line(capsys, ["compare", str(tmp_path / "bad.json"), str(strong)], "not a readable JSON result")
    (tmp_path / "other.json").write_text(json.dumps({"model": "x"}))
    _one_error_line(capsys, ["compare", str(tmp_path / "other.json"), str(strong)], "not an evaluation result")
    relabelled = [dict(p, true="sad") for p in b["predictions"]]
    _write(tmp_path / "relabelled", dict(b, predictions=relabelled))
    _one_error_line(capsys, ["compare", str(weak), str(tmp_path / "relabelled")], "label the same clip differently")
    _one_error_line(capsys, ["compare", str(weak), str(strong), "--metric", "f1"], "unknown metric 'f1'")
    _one_error_line(capsys, ["compare", str(weak), str(strong), "--n-boot", "0"], "--n-boot must be at least 1")
    _write(tmp_path / "regression", {"task": "regression", "predictions": [{"speaker": "s", "true": 1.0}]})
    _one_error_line(capsys, ["compare", str(weak), str(tmp_path / "regression")], "regression result")


def test_compare_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "emovox compare runs/" in out and "--intersect" in out and "--json" in out


@pytest.mark.corpora
@pytest.mark.skipif(not (CORPORA / "emodb").is_dir(), reason=f"no EMO-DB under {CORPORA}")
def test_compare_two_real_runs(tmp_path, capsys):
    """Two real EMO-DB runs (3 speakers): the SVM as is and tuned by inner CV, compared clip by clip."""
    cache = tmp_path / "cache"
    base = [
        "evaluate",
        "--corpus",
        "emodb",
        "--max-speakers",
        "3",
        "--model",
        "svm-mfcc",
        "--protocol",
        "loso",
        "--cache-dir",
        str(cache),
        "--quiet",
    ]
    assert main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert main([*base, "--tune", "--out", str(tmp_path / "tuned")]) == 0
    capsys.readouterr()
    plain = json.loads((tmp_path / "plain" / "result.json").read_text())
    assert plain["intervals"]["uar"]["n_clusters"] == 3
    assert {p["gender"] for p in plain["predictions"]} <= {"female", "male"}
    assert main(["compare", str(tmp_path / "plain"), str(tmp_path / "tuned"), "--json", "--n-boot", "500"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["matched_by"] == "path" and answer["n_clips"] == plain["n_samples"]
    assert answer["n_speakers"] == 3 and answer["difference"]["exact"]  # 2**3 patterns: exact test
    assert answer["a"]["estimate"] == pytest.approx(plain["pooled"]["uar"])
