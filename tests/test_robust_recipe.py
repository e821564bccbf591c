"""The channel-robust recipe's pieces (issue 16): the softmax-regression solver, fold heads, embedding ids."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.errors import ConfigError
from emovox.models.softmax_regression import fit_softmax_regression
from emovox.recipes.robust import fit_robust_head, fold_heads, fold_logits


def _blobs(n_per_class=60, d=12, k=3, seed=0, shift=2.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, shift, (k, d))
    x = np.concatenate([centres[c] + rng.normal(0, 1, (n_per_class, d)) for c in range(k)])
    y = np.repeat(np.arange(k), n_per_class)
    return x.astype(np.float32), y


def test_solver_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    x, y = _blobs()
    y = y.copy()
    y[:20] = 1  # unbalanced: class weights matter
    fit = fit_softmax_regression(x, y, C=0.05, n_classes=3)
    xs = (x - x.mean(0)) / x.std(0)
    ref = LogisticRegression(C=0.05, class_weight="balanced", max_iter=5000, tol=1e-8).fit(xs, y)
    ours = fit.logits(x)
    theirs = xs @ ref.coef_.T + ref.intercept_
    np.testing.assert_allclose(ours - ours.mean(1, keepdims=True), theirs - theirs.mean(1, keepdims=True), atol=2e-3)


def test_an_absent_class_is_never_predicted_and_bad_input_is_refused():
    x, y = _blobs(k=3)
    keep = y != 2
    fit = fit_softmax_regression(x[keep], y[keep], C=1.0, n_classes=3)
    assert fit.intercept[2] == -1e4 and not np.any(fit.logits(x).argmax(1) == 2)
    with pytest.raises(ConfigError):
        fit_softmax_regression(x, y, C=0.0, n_classes=3)
    with pytest.raises(ConfigError):
        fit_softmax_regression(x, y[:-1], C=1.0, n_classes=3)


def test_fold_heads_never_see_their_test_group_and_copies_follow_their_clip():
    x, y = _blobs(n_per_class=40)
    groups = np.tile(np.arange(3), len(y) // 3)
    copy = x + np.random.default_rng(1).normal(0, 0.5, x.shape).astype(np.float32)
    heads = fold_heads([x, copy], y, groups, n_classes=3, C=1.0)
    assert len(heads) == 3
    # a head trained without group 0's rows is unchanged by what group 0's rows hold
    poisoned = x.copy()
    poisoned[groups == 0] = 100.0
    again = fit_robust_head([poisoned, copy], y, groups != 0, n_classes=3, C=1.0)
    np.testing.assert_allclose(again.coef, heads[0].coef, atol=1e-6)
    logits = fold_logits(heads, groups, x)
    assert logits.shape == (len(y), 3) and np.mean(logits.argmax(1) == y) > 0.9


def test_band_limit_removes_the_upper_band_and_keeps_length():
    from emovox.audio.effects import band_limit

    rng = np.random.default_rng(0)
    y = rng.standard_normal(16000).astype(np.float32) * 0.1
    out = band_limit(y, sample_rate_hz=16000, rate_hz=8000)
    spec = np.abs(np.fft.rfft(out)) ** 2
    f = np.fft.rfftfreq(out.size, 1 / 16000)
    assert out.shape == y.shape and spec[f > 4300].sum() < 1e-4 * spec[f < 3500].sum()
    assert band_limit(y, sample_rate_hz=8000, rate_hz=8000) is not None


def test_band_limit_preprocessing_is_validated_and_applied(tmp_path):
    from emovox.errors import ModelError
    from emovox.inference.backends import ModelInfo

    base = {"task": {"labels": ["a", "b"], "sample_rate_hz": 16000}}
    assert ModelInfo.from_config({**base, "preprocessing": {"band_limit_hz": 8000}}).band_limit_hz == 8000
    for bad in (True, 16000, 500, "8000"):
        with pytest.raises(ModelError, match="band_limit_hz"):
            ModelInfo.from_config({**base, "preprocessing": {"band_limit_hz": bad}})
