"""Speaker-level bootstrap intervals, the paired test, per-group breakdown and intervals in reports.

Synthetic data only (no corpora): clustered predictions whose population UAR
is known, so interval coverage and p-value behaviour can be measured.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss

from emovox.errors import ConfigError
from emovox.evaluation import (
    format_summary,
    leave_one_speaker_out,
    run_experiment,
    write_report,
)
from emovox.evaluation.groups import group_metrics
from emovox.evaluation.metrics import compute_metrics
from emovox.evaluation.uncertainty import (
    bootstrap_interval,
    paired_difference,
    result_intervals,
)

# Per-class logits of being right, and the spread of speakers' skill (logit scale):
# speaker effects strong enough that clips of one speaker are far from independent.
MU = np.array([0.5, 1.0, 0.0, 1.5])
SIGMA = 1.2


def _population_uar(mu=MU, sigma=SIGMA) -> float:
    """mean_c E_z[expit(mu_c + sigma z)], z ~ N(0, 1), by Gauss-Hermite quadrature."""
    x, w = hermegauss(80)
    w = w / w.sum()
    return float(np.mean([np.sum(w / (1 + np.exp(-(m + sigma * x)))) for m in mu]))


def _sample(rng, n_speakers=40, per_class=6, shift=0.0, z=None):
    """Balanced clips per speaker and class; a clip is right with prob expit(mu_c + sigma z_s + shift)."""
    c = len(MU)
    speakers = np.repeat(np.arange(n_speakers), c * per_class)
    truth = np.tile(np.repeat(np.arange(c), per_class), n_speakers)
    z = rng.normal(size=n_speakers) if z is None else z
    right = rng.random(len(truth)) < 1 / (1 + np.exp(-(MU[truth] + SIGMA * z[speakers] + shift)))
    wrong = (truth + rng.integers(1, c, len(truth))) % c
    return truth, np.where(right, truth, wrong), speakers, z


def _uar(t, p):
    return compute_metrics(t, p, classes=list(range(len(MU))))["uar"]


def test_vectorised_uar_matches_compute_metrics_on_every_resample():
    rng = np.random.default_rng(0)
    truth, pred, speakers, _ = _sample(rng, n_speakers=12)
    # class 3 only for speaker 0: many resamples lack it, and UAR must then average the classes present
    keep = (truth != 3) | (speakers == 0)
    truth, pred, speakers = truth[keep], pred[keep], speakers[keep]
    fast = bootstrap_interval("uar", truth, pred, speakers, n_boot=500, seed=3)
    generic = bootstrap_interval(_uar, truth, pred, speakers, n_boot=500, seed=3)
    assert fast["estimate"] == pytest.approx(_uar(truth, pred), abs=1e-12)
    assert fast["low"] == pytest.approx(generic["low"], abs=1e-12)
    assert fast["high"] == pytest.approx(generic["high"], abs=1e-12)
    acc = bootstrap_interval("accuracy", truth, pred, speakers, n_boot=500, seed=3)
    acc_generic = bootstrap_interval(lambda t, p: float(np.mean(t == p)), truth, pred, speakers, n_boot=500, seed=3)
    assert (acc["low"], acc["high"]) == pytest.approx((acc_generic["low"], acc_generic["high"]), abs=1e-12)
    assert fast["low"] < fast["estimate"] < fast["high"]
    assert fast["n_clusters"] == 12 and fast["n_boot"] == 500 and fast["level"] == 0.95
    assert "speaker" in fast["method"]


def test_string_labels_and_seeds():
    rng = np.random.default_rng(1)
    truth, pred, speakers, _ = _sample(rng, n_speakers=10)
    names = np.array(["angry", "happy", "neutral", "sad"], dtype=object)
    as_text = bootstrap_interval("uar", names[truth], names[pred], [f"s{s}" for s in speakers], seed=5)
    assert as_text["estimate"] == pytest.approx(_uar(truth, pred))
    again = bootstrap_interval("uar", names[truth], names[pred], [f"s{s}" for s in speakers], seed=5)
    other = bootstrap_interval("uar", names[truth], names[pred], [f"s{s}" for s in speakers], seed=6)
    assert again == as_text and other != as_text


def test_coverage_of_speaker_bootstrap_and_failure_of_clip_bootstrap():
    truth_uar = _population_uar()
    rng = np.random.default_rng(123)
    covered, naive_covered, n_naive = 0, 0, 100
    reps = 200
    for r in range(reps):
        t, p, s, _ = _sample(rng)
        cluster = bootstrap_interval("uar", t, p, s, n_boot=1000, seed=r)
        covered += cluster["low"] <= truth_uar <= cluster["high"]
        if r < n_naive:  # every clip its own cluster: the naive clip-level bootstrap
            naive = bootstrap_interval("uar", t, p, np.arange(len(t)), n_boot=1000, seed=r)
            naive_covered += naive["low"] <= truth_uar <= naive["high"]
    coverage, naive_coverage = covered / reps, naive_covered / n_naive
    print(f"coverage of nominal 95 %: speaker bootstrap {coverage:.3f}, clip bootstrap {naive_coverage:.3f}")
    assert 0.90 <= coverage <= 0.99
    assert naive_coverage < 0.80 and coverage - naive_coverage > 0.15


def test_paired_p_values_uniform_under_null_small_when_b_is_better():
    rng = np.random.default_rng(7)
    p_values = []
    for r in range(60):  # A and B: the same model, independent noise on the same speakers
        t, a, s, z = _sample(rng, n_speakers=30)
        b = _sample(rng, n_speakers=30, z=z)[1]
        p_values.append(paired_difference("uar", t, a, b, s, n_boot=400, seed=r)["p_value"])
    p_values = np.array(p_values)
    print(f"null p-values: mean {p_values.mean():.3f}, share < 0.05 {np.mean(p_values < 0.05):.3f}")
    assert 0.35 < p_values.mean() < 0.65 and np.mean(p_values < 0.05) <= 0.15
    assert np.histogram(p_values, bins=4, range=(0, 1))[0].min() >= 6  # spread over [0, 1]

    t, a, s, z = _sample(rng, n_speakers=30)
    b = _sample(rng, n_speakers=30, z=z, shift=0.8)[1]  # B truly better
    better = paired_difference("uar", t, a, b, s, n_boot=2000, seed=0)
    assert better["p_value"] < 0.01 and better["low"] > 0
    assert better["difference"] == pytest.approx(_uar(t, b) - _uar(t, a))
    assert better["a"]["estimate"] == pytest.approx(_uar(t, a)) and better["b"]["estimate"] == pytest.approx(_uar(t, b))
    assert better["n_permutations"] == 2000 and not better["exact"]
    assert better["p_value"] >= 1 / 2001  # +1 correction: never 0
    assert paired_difference("uar", t, a, b, s, n_boot=300, seed=4) == paired_difference(
        "uar", t, a, b, s, n_boot=300, seed=4
    )


def test_exact_permutation_test_by_brute_force():
    rng = np.random.default_rng(2)
    t, a, s, z = _sample(rng, n_speakers=4, per_class=3)
    b = _sample(rng, n_speakers=4, per_class=3, z=z, shift=0.5)[1]
    observed = _uar(t, b) - _uar(t, a)
    stats = []
    for pattern in itertools.product([False, True], repeat=4):  # swap A and B within the chosen speakers
        swap = np.array(pattern)[s]
        stats.append(_uar(t, np.where(swap, a, b)) - _uar(t, np.where(swap, b, a)))
    expected = np.mean(np.abs(stats) >= abs(observed) - 1e-12)
    for metric in ("uar", _uar):  # vectorised and generic paths
        result = paired_difference(metric, t, a, b, s, n_boot=100, seed=0)
        assert result["exact"] and result["n_permutations"] == 16
        assert result["p_value"] == pytest.approx(expected)


def test_generic_metric_for_regression_and_single_speaker():
    rng = np.random.default_rng(3)
    speakers = np.repeat(np.arange(20), 10)
    truth = rng.normal(size=200)
    pred = truth + rng.normal(0, 0.5, 200) + rng.normal(0, 0.5, 20)[speakers]

    def mae(t, p):
        return float(np.mean(np.abs(t - p)))

    interval = bootstrap_interval(mae, truth, pred, speakers, n_boot=300)
    assert interval["low"] < mae(truth, pred) == interval["estimate"] < interval["high"]
    one = bootstrap_interval("uar", [0, 1, 1], [0, 1, 0], ["x", "x", "x"])
    assert one["low"] is None and one["high"] is None and one["n_clusters"] == 1 and one["estimate"] == 0.75


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: bootstrap_interval("f1-ish", [0, 1], [0, 1], [0, 1]), "unknown metric 'f1-ish'"),
        (lambda: bootstrap_interval("uar", [0, 1, 1], [0, 1], [0, 1, 1]), "one length"),
        (lambda: bootstrap_interval("uar", [0, 1], [0, 1], [0, 1], level=95), "level must be between 0 and 1"),
        (lambda: paired_difference("uar", [0, 1], [0, 1], [1, 1], [0, 1], n_boot=0), "n_boot must be at least 1"),
        (lambda: result_intervals({"predictions": []}), "no 'predictions'"),
        (
            lambda: group_metrics({"predictions": [{"speaker": "a", "true": "x", "predicted": "x"}]}, "age"),
            "unknown grouping 'age'",
        ),
    ],
)
def test_bad_input_is_a_config_error(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


@dataclass(frozen=True)
class _Clip:
    path: str
    corpus: str
    gender: str | None


def _run():
    """A LOSO run of a nearest-centroid model on toy features; speakers 0-3 female, 4-7 male, two corpora."""
    rng = np.random.default_rng(0)
    classes = ("angry", "happy", "neutral")
    speakers = np.repeat([f"{'a' if s < 6 else 'b'}/{s}" for s in range(8)], 12)
    y = np.tile(np.arange(3), 32)
    X = np.array([[0, 0], [3, 0], [0, 3]], float)[y] + rng.normal(0, 1.2, (96, 2))
    records = [
        _Clip(f"/c/{i}.wav", spk.split("/")[0], "female" if int(spk[2]) < 4 else "male")
        for i, spk in enumerate(speakers)
    ]

    def centroid(train, test):
        centres = np.stack([train.X[train.y == c].mean(axis=0) for c in range(3)])
        return ((test.X[:, None] - centres[None]) ** 2).sum(-1).argmin(axis=1)

    return run_experiment(
        leave_one_speaker_out(speakers),
        centroid,
        y=y,
        classes=classes,
        speakers=speakers,
        X=X,
        records=records,
        protocol="loso",
        config={"model": "centroid", "corpora": ["toy"]},
    )


def test_every_result_carries_intervals_and_groups_are_right(tmp_path):
    result = _run()
    intervals = result["intervals"]
    assert intervals["uar"]["estimate"] == pytest.approx(result["pooled"]["uar"])
    assert intervals["accuracy"]["estimate"] == pytest.approx(result["pooled"]["accuracy"])
    assert intervals["uar"]["n_boot"] == 2000 and intervals["uar"]["n_clusters"] == 8
    assert intervals == result_intervals(result)  # seed 0: reproducible
    assert {p["gender"] for p in result["predictions"]} == {"female", "male"}

    by_gender = group_metrics(result, "gender")
    assert [g["group"] for g in by_gender] == ["female", "male"]
    female = [p for p in result["predictions"] if p["gender"] == "female"]
    idx = {c: i for i, c in enumerate(result["classes"])}
    expected = compute_metrics(
        [idx[p["true"]] for p in female], [idx[p["predicted"]] for p in female], classes=result["classes"]
    )
    assert by_gender[0]["n_clips"] == 48 and by_gender[0]["n_speakers"] == 4
    assert by_gender[0]["uar"] == pytest.approx(expected["uar"])
    assert by_gender[0]["accuracy"] == pytest.approx(expected["accuracy"])
    assert by_gender[0]["intervals"]["uar"]["low"] <= by_gender[0]["uar"] <= by_gender[0]["intervals"]["uar"]["high"]
    by_corpus = group_metrics(result, "corpus")
    assert [(g["group"], g["n_speakers"]) for g in by_corpus] == [("a", 6), ("b", 2)]
    by_speaker = group_metrics(result, "speaker")
    assert len(by_speaker) == 8 and by_speaker[0]["intervals"]["uar"]["low"] is None  # one speaker: no interval

    summary = format_summary(result)
    uar = intervals["uar"]
    assert f"UAR {uar['estimate']:.3f} [{uar['low']:.3f}, {uar['high']:.3f}]" in summary
    assert "95 % CI, speaker bootstrap" in summary

    paths = write_report(result, tmp_path)
    text = paths["markdown"].read_text()
    assert "## By gender" in text and "## By corpus" in text and "uar_intervals.png" in text
    assert f"[{uar['low']:.3f}, {uar['high']:.3f}]" in text
    assert paths["intervals"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(paths["json"].read_text())["intervals"]["uar"]["low"] == pytest.approx(uar["low"])


def test_old_result_without_intervals_and_one_gender(tmp_path):
    result = _run()
    del result["intervals"]
    for p in result["predictions"]:
        p["gender"], p["corpus"] = None, "toy"
    assert "speaker bootstrap" in format_summary(result)  # computed from the predictions
    text = write_report(result, tmp_path)["markdown"].read_text()
    assert "By gender" not in text and "By corpus" not in text  # a single group: no breakdown


def test_regression_results_get_the_regression_report(tmp_path):
    """A regression result goes to the regression report (CCC first, a scatter plot), not the UAR one."""
    from emovox.evaluation.protocols import leave_one_speaker_out
    from emovox.evaluation.regression import run_regression

    rng = np.random.default_rng(0)
    speakers = np.repeat([f"s{i}" for i in range(4)], 10)
    y = rng.normal(size=40)
    result = run_regression(
        leave_one_speaker_out(speakers),
        lambda train, test: np.full(len(test), float(np.mean(train.y))) + rng.normal(scale=0.1, size=len(test)),
        y=y,
        speakers=speakers,
        target="arousal",
    )
    summary = format_summary(result)
    assert "CCC" in summary and "UAR" not in summary
    paths = write_report(result, tmp_path)
    assert (tmp_path / "predicted_vs_true.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "CCC" in paths["markdown"].read_text() and not (tmp_path / "confusion.png").exists()


def test_plot_metric_intervals(tmp_path):
    from emovox.evaluation.plots import plot_metric_intervals

    path = plot_metric_intervals(
        [("svm", 0.62, 0.58, 0.67), ("mlp", 0.65, None, None)], tmp_path / "f.png", metric="uar", chance=0.25
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError, match="at least one"):
        plot_metric_intervals([], tmp_path / "g.png")
