"""Temperature scaling, ECE and the rejection threshold (emovox.inference.calibration)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emovox.errors import ConfigError, ModelError
from emovox.inference.backends import ModelInfo
from emovox.inference.calibration import (
    calibrate,
    expected_calibration_error,
    fit_temperature,
    nll,
    rejection_threshold,
    softmax,
    write_calibration,
)


def _synthetic(n: int, c: int, true_t: float, seed: int):
    """Labels drawn from softmax(z); observed logits z * true_t (mis-calibrated by true_t)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, size=(n, c))
    p = softmax(z)
    labels = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return z * true_t, labels


@pytest.mark.parametrize("true_t", [0.5, 2.0, 3.0])
def test_fit_temperature_recovers_a_known_temperature(true_t):
    logits, labels = _synthetic(20000, 5, true_t, seed=1)
    t = fit_temperature(logits, labels)
    assert abs(t - true_t) / true_t < 0.08


def test_calibration_lowers_ece_and_nll_and_keeps_the_argmax():
    logits, labels = _synthetic(5000, 6, 3.0, seed=2)
    result = calibrate(logits, labels)
    assert result.ece_after < result.ece_before / 2
    assert result.nll_after < result.nll_before
    assert result.temperature > 2.0
    assert np.array_equal(softmax(logits).argmax(1), softmax(logits, temperature=result.temperature).argmax(1))


def test_ece_is_small_for_calibrated_probabilities_and_large_for_overconfident():
    logits, labels = _synthetic(20000, 4, 1.0, seed=3)
    assert expected_calibration_error(softmax(logits), labels) < 0.02
    assert expected_calibration_error(softmax(logits * 4), labels) > 0.1


def test_nll_matches_a_direct_computation():
    logits, labels = _synthetic(100, 3, 1.0, seed=4)
    direct = -np.mean(np.log(softmax(logits)[np.arange(100), labels]))
    assert nll(logits, labels) == pytest.approx(direct, rel=1e-9)


@settings(max_examples=50, deadline=None)
@given(conf=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=200), keep=st.floats(0.05, 1.0), seed=st.integers(0, 10))
def test_rejection_threshold_keeps_the_stated_fraction_of_correct_predictions(conf, keep, seed):
    conf = np.array(conf)
    correct = np.random.default_rng(seed).random(conf.size) < 0.7
    t = rejection_threshold(conf, correct, keep_fraction=keep)
    if correct.any():
        kept = np.mean(conf[correct] >= t)
        assert kept >= keep - 1e-9
        # largest such threshold: any higher candidate keeps too few
        higher = conf[correct][conf[correct] > t]
        if higher.size:
            assert np.mean(conf[correct] >= higher.min()) < keep
    else:
        assert t == 0.0


def test_invalid_inputs_raise_config_errors():
    with pytest.raises(ConfigError, match="shaped"):
        fit_temperature(np.zeros(5), np.zeros(5, int))
    with pytest.raises(ConfigError, match="integer class ids"):
        fit_temperature(np.zeros((5, 3)), np.zeros(5))
    with pytest.raises(ConfigError, match=r"lie in \[0, 2\]"):
        fit_temperature(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ConfigError, match="keep_fraction"):
        rejection_threshold(np.ones(3), np.ones(3, bool), keep_fraction=1.5)


def test_write_calibration_stores_temperature_ece_and_threshold(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "task": {"labels": ["a", "b", "c"], "sample_rate_hz": 16000, "clip_s": 3.0},
                "calibration": {"temperature": None},
                "threshold": None,
            }
        )
    )
    logits, labels = _synthetic(3000, 3, 2.5, seed=5)
    result = calibrate(logits, labels, keep_fraction=0.9)
    write_calibration(tmp_path, result)
    config = json.loads((tmp_path / "config.json").read_text())
    cal = config["calibration"]
    assert cal["temperature"] == pytest.approx(result.temperature, rel=1e-5)
    assert cal["ece_after"] < cal["ece_before"]
    assert "90%" in cal["threshold_rule"]
    info = ModelInfo.from_config(config)
    assert info.temperature == pytest.approx(result.temperature, rel=1e-5)
    assert info.threshold == pytest.approx(result.threshold, rel=1e-5)
    with pytest.raises(ModelError, match="model artifact"):
        write_calibration(tmp_path / "missing", result)


def test_calibrate_artifact_uses_the_inference_path_and_updates_the_config(tmp_path):
    from test_inference import LABELS, make_artifact
    from test_vad import bursts

    from emovox.inference import load_model
    from emovox.inference.calibration import calibrate_artifact

    art = make_artifact(tmp_path / "art")
    clips = [bursts(seed=s, n=1)[0] for s in range(6)]
    labels = [LABELS[i % len(LABELS)] for i in range(6)]
    result = calibrate_artifact(art, clips, labels, backend="torch", sample_rate=16000)
    config = json.loads((art / "config.json").read_text())
    assert config["calibration"]["temperature"] == pytest.approx(result.temperature, rel=1e-5)
    assert config["threshold"] == pytest.approx(result.threshold, rel=1e-5)
    model = load_model(art, backend="torch")
    assert model.temperature == pytest.approx(result.temperature, rel=1e-5)
    with pytest.raises(ConfigError, match="not a class"):
        calibrate_artifact(art, clips[:1], ["bored"], backend="torch", sample_rate=16000)


def test_calibrate_pooled_fits_the_temperature_the_pooled_scores_are_computed_at():
    """Clips of several windows: their logits depend on T, so T is fitted to a fixed point (issue 17)."""
    from emovox.inference.calibration import calibrate, calibrate_pooled
    from emovox.inference.scores import pool_logits

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=300)
    windows = []
    for label in labels:
        n = int(rng.integers(1, 6))
        z = rng.normal(0.0, 1.0, size=(n, 4)) * 3.0  # over-confident windows, often wrong
        z[:, label] += rng.normal(1.5, 1.0, size=n)
        windows.append(z.astype(np.float32))
    result = calibrate_pooled(windows, labels)
    refit = calibrate(np.stack([pool_logits(w, temperature=result.temperature) for w in windows]), labels)
    assert refit.temperature == pytest.approx(result.temperature, rel=1e-3)
    naive = calibrate(np.stack([pool_logits(w, temperature=1.0) for w in windows]), labels)
    assert abs(naive.temperature - result.temperature) > 0.01  # pooling at the wrong T fits another T
    single = [w[:1] for w in windows]
    assert calibrate_pooled(single, labels).temperature == pytest.approx(
        calibrate(np.stack([w[0] for w in single]), labels).temperature
    )
