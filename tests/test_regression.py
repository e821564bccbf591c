"""Regression metrics (CCC against a hand computation), regressors, the fold runner and the report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from emovox.errors import ConfigError
from emovox.evaluation.protocols import leave_one_speaker_out, speaker_kfold
from emovox.evaluation.regression import run_regression, target_bins
from emovox.evaluation.regression_metrics import (
    ccc,
    compute_regression_metrics,
    mae,
    pearson_r,
    rmse,
    summarize_regression_folds,
)
from emovox.evaluation.workbench_models import make_regressor
from emovox.models.regressors import regressor_names

FAMILIES = ("linear", "svm-linear", "svm-rbf", "mlp", "gbt", "rf", "knn")


# -- metrics ------------------------------------------------------------------


def test_ccc_matches_a_hand_computation():
    t = [1.0, 2.0, 3.0, 4.0]
    p = [2.0, 2.0, 3.0, 5.0]
    # means 2.5 and 3.0; population variances 1.25 and 1.5; covariance
    # ((-1.5)(-1) + (-0.5)(-1) + (0.5)(0) + (1.5)(2)) / 4 = 5 / 4 = 1.25
    expected = 2 * 1.25 / (1.25 + 1.5 + (2.5 - 3.0) ** 2)  # = 2.5 / 3.0
    assert ccc(t, p) == pytest.approx(expected) == pytest.approx(5 / 6)
    assert mae(t, p) == pytest.approx(0.5)
    assert rmse(t, p) == pytest.approx(math.sqrt(0.5))
    assert pearson_r(t, p) == pytest.approx(1.25 / math.sqrt(1.25 * 1.5))


def test_ccc_edge_cases():
    t = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    assert ccc(t, t) == pytest.approx(1.0)  # perfect
    assert ccc([2.0, 2.0], [2.0, 2.0]) == 1.0  # constant truth predicted exactly: 0/0 taken as agreement
    assert ccc(t, np.full(5, t.mean())) == 0.0  # constant predictions carry no information
    assert math.isnan(pearson_r(t, np.full(5, 1.0)))  # r of a constant is undefined
    # Scaled or shifted predictions keep Pearson r = 1 but lose concordance.
    assert pearson_r(t, 2 * t) == pytest.approx(1.0)
    assert ccc(t, 2 * t) == pytest.approx(2 * 4.0 / (2.0 + 8.0 + 4.0))  # cov 4, var 2 and 8, mean gap 2
    assert ccc(t, t + 1) == pytest.approx(2 * 2.0 / (2.0 + 2.0 + 1.0))
    assert ccc(t - 2.0, 2.0 - t) == pytest.approx(-1.0)  # mirrored about a shared mean
    assert ccc(t, -t) == pytest.approx(2 * -2.0 / (2.0 + 2.0 + 16.0))  # mirrored and shifted
    with pytest.raises(ConfigError):
        ccc([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ConfigError):
        ccc([], [])


def test_summary_skips_undefined_folds():
    folds = [
        compute_regression_metrics([0.0, 1.0, 2.0], [0.0, 1.0, 2.0]),
        compute_regression_metrics([0.0, 1.0, 2.0], [1.0, 1.0, 1.0]),
    ]
    summary = summarize_regression_folds(folds)
    assert summary["ccc"]["mean"] == pytest.approx(0.5) and summary["ccc"]["n_folds"] == 2
    assert summary["pearson_r"]["n_folds"] == 1 and summary["pearson_r"]["mean"] == pytest.approx(1.0)


def test_target_bins():
    assert target_bins([1.0, 2.0, 2.0, 1.0, 3.0]).tolist() == [0, 1, 1, 0, 2]  # ordinal: one bin per level
    bins = target_bins(np.linspace(0.0, 1.0, 100), n_bins=4)
    assert sorted(set(bins.tolist())) == [0, 1, 2, 3] and np.bincount(bins).min() == 25


# -- regressors ---------------------------------------------------------------


def _synthetic(n_speakers: int = 8, per_speaker: int = 25, seed: int = 0):
    """y = x0 + 0.5·x1 + speaker offset-free noise; x2 is irrelevant."""
    rng = np.random.default_rng(seed)
    speakers = np.repeat([f"syn/{i:02d}" for i in range(n_speakers)], per_speaker)
    X = rng.normal(size=(len(speakers), 3))
    y = 3.0 + X[:, 0] + 0.5 * X[:, 1] + 0.1 * rng.normal(size=len(speakers))
    return X, y, speakers


@pytest.mark.parametrize("name", FAMILIES)
def test_each_regressor_learns_a_known_relation_under_speaker_folds(name):
    X, y, speakers = _synthetic()
    splits = speaker_kfold(speakers, k=4, seed=0, labels=target_bins(y))
    model = make_regressor(name, features="synthetic", seed=0)
    result = run_regression(splits, model.fit_predict, y=y, speakers=speakers, X=X, target="y", intervals=False)
    assert result["speaker_independent"] is True
    assert result["pooled"]["ccc"] > 0.8, (name, result["pooled"])
    assert result["pooled"]["mae"] < 0.5


def test_tuning_picks_from_the_grid_on_training_speakers_only():
    X, y, speakers = _synthetic(n_speakers=6, per_speaker=20)
    splits = speaker_kfold(speakers, k=3, seed=0, labels=target_bins(y))
    model = make_regressor("svm-rbf", features="synthetic", tune=True)
    seen: list[set] = []
    original = model._tune

    def spy(X_train, y_train, train_speakers):
        seen.append(set(train_speakers))
        return original(X_train, y_train, train_speakers)

    model._tune = spy
    result = run_regression(splits, model.fit_predict, y=y, speakers=speakers, X=X, intervals=False)
    for fold, train_speakers in zip(result["folds"], seen):
        assert not train_speakers & set(fold["test_speakers"])  # never tuned on a test speaker
        assert fold["model"]["params"]["C"] in (0.1, 1.0, 10.0) and "inner_ccc" in fold["model"]
    assert result["pooled"]["ccc"] > 0.8
    assert model.to_dict()["selection"].endswith("by CCC")


def test_non_finite_features_are_guarded_and_target_scale_is_kept():
    X, y, speakers = _synthetic(n_speakers=4, per_speaker=20)
    X = X.copy()
    X[3, 1] = np.nan
    X[50, 0] = np.inf
    y = 100.0 * y  # the unit of the target is kept: predictions come back in it
    result = run_regression(
        leave_one_speaker_out(speakers),
        make_regressor("linear", features="s").fit_predict,
        y=y,
        speakers=speakers,
        X=X,
        intervals=False,
    )
    predicted = np.array([p["predicted"] for p in result["predictions"]])
    assert np.isfinite(predicted).all() and 200 < predicted.mean() < 400
    assert result["pooled"]["ccc"] > 0.8


def test_regressor_names_and_errors():
    assert set(FAMILIES) <= set(regressor_names())
    assert make_regressor("svm-egemaps").feature_set == "egemaps"
    assert make_regressor("logreg", features="compare").kind.name == "linear"
    with pytest.raises(ConfigError, match="unknown model 'lasso'.*linear"):
        make_regressor("lasso", features="egemaps")
    with pytest.raises(ConfigError, match="needs a feature set"):
        make_regressor("gbt")
    with pytest.raises(ConfigError, match="no parameter"):
        make_regressor("knn", features="egemaps", depth=3)


def test_runner_result_and_report(tmp_path):
    from emovox.evaluation.regression_report import format_summary, write_report
    from emovox.evaluation.report import format_summary as any_summary
    from emovox.evaluation.report import write_report as any_report

    X, y, speakers = _synthetic(n_speakers=6, per_speaker=10)
    splits = speaker_kfold(speakers, k=3, seed=0, labels=target_bins(y))
    result = run_regression(
        splits,
        make_regressor("linear", features="s").fit_predict,
        y=y,
        speakers=speakers,
        X=X,
        target="arousal",
        protocol="speaker-kfold",
        config={"model": "linear"},
    )
    assert result["task"] == "regression" and result["target"] == "arousal" and result["n_samples"] == 60
    assert list(result["summary"])[:2] == ["ccc", "mae"]
    assert {"fold", "speaker", "true", "predicted"} <= set(result["predictions"][0])
    ci = result["intervals"]["ccc"]
    assert ci["low"] <= result["pooled"]["ccc"] <= ci["high"] and ci["n_clusters"] == 6
    assert result["intervals"]["mae"]["estimate"] == pytest.approx(result["pooled"]["mae"])

    text = format_summary(result)
    assert text.splitlines()[1].split()[:2] == ["CCC", "MAE"] and "speaker bootstrap" in text
    assert any_summary(result) == text  # the generic report hands regression results here
    paths = any_report(result, tmp_path / "r")
    assert json.loads(paths["json"].read_text())["task"] == "regression"
    assert paths["scatter"].stat().st_size > 0 and paths["markdown"].name == "report.md"
    assert "| pooled |" in paths["markdown"].read_text()
    direct = write_report(result, tmp_path / "d")
    assert set(direct) == {"json", "markdown", "scatter"}


def test_runner_rejects_bad_predictions():
    X, y, speakers = _synthetic(n_speakers=2, per_speaker=5)
    splits = leave_one_speaker_out(speakers)
    with pytest.raises(ConfigError, match="non-finite"):
        run_regression(splits, lambda tr, te: np.full(len(te), np.nan), y=y, speakers=speakers, X=X)
    with pytest.raises(ConfigError, match="predictions for"):
        run_regression(splits, lambda tr, te: np.zeros(1), y=y, speakers=speakers, X=X)
