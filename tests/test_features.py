"""Classic librosa features, functionals, named feature sets, scaling, eGeMAPS."""

from __future__ import annotations

import json
import sys

import librosa
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emovox.errors import ConfigError, FeatureError
from emovox.features import (
    DEFAULT_STATS,
    FEATURE_SETS,
    StandardScaler,
    classic,
    extract_features,
    feature_set_names,
    functional_names,
    functionals,
    get_feature_set,
)

SR = 16000


def _speechlike(n: int = SR, seed: int = 0) -> np.ndarray:
    """Harmonic tone with vibrato and an amplitude envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    f0 = 150 + 20 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t) ** 2)
    return (0.2 * y + 0.005 * rng.standard_normal(n)).astype(np.float32)


# -- classic frame features ---------------------------------------------------


def test_classic_frame_feature_shapes_and_dtypes():
    y = _speechlike()
    frames = 1 + SR // 512
    assert classic.mfcc(y, sample_rate_hz=SR).shape == (40, frames)
    assert classic.mfcc(y, sample_rate_hz=SR, n_mfcc=13, deltas=True).shape == (39, frames)
    assert classic.zero_crossing_rate(y, sample_rate_hz=SR).shape == (1, frames)
    assert classic.rms(y, sample_rate_hz=SR).shape == (1, frames)
    assert classic.log_mel(y, sample_rate_hz=SR, n_mels=64).shape == (64, frames)
    assert classic.chroma(y, sample_rate_hz=SR).shape == (12, frames)
    assert classic.spectral_contrast(y, sample_rate_hz=SR).shape == (7, frames)
    for x in classic.classic_frames(y, sample_rate_hz=SR).values():
        assert x.dtype == np.float32 and x.shape[1] == frames and np.isfinite(x).all()


def test_classic_frames_equal_single_functions():
    y = _speechlike()
    frames = classic.classic_frames(y, sample_rate_hz=SR)
    np.testing.assert_allclose(frames["mfcc"], classic.mfcc(y, sample_rate_hz=SR), atol=1e-3)
    np.testing.assert_allclose(frames["rms"], classic.rms(y, sample_rate_hz=SR), atol=1e-7)
    np.testing.assert_allclose(frames["chroma"], classic.chroma(y, sample_rate_hz=SR), atol=1e-5)
    np.testing.assert_allclose(frames["contrast"], classic.spectral_contrast(y, sample_rate_hz=SR), atol=1e-3)
    ref = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=40)
    np.testing.assert_allclose(frames["mfcc"], ref, atol=1e-3)


def test_deltas_shrink_for_few_frames():
    x = np.arange(5 * 4, dtype=np.float32).reshape(5, 4)
    out = classic.add_deltas(x)  # width 9 -> 3
    assert out.shape == (15, 4) and np.isfinite(out).all()
    assert np.array_equal(classic.add_deltas(x[:, :2])[5:], np.zeros((10, 2), dtype=np.float32))


def test_classic_errors():
    with pytest.raises(FeatureError, match=r"clip has 500 samples .* needs at least 1025"):
        classic.mfcc(np.zeros(500, dtype=np.float32), sample_rate_hz=SR)
    with pytest.raises(FeatureError, match=r"sample_rate_hz=0 is not a positive integer"):
        classic.rms(np.zeros(4000, dtype=np.float32), sample_rate_hz=0)
    with pytest.raises(FeatureError, match=r"mono samples of shape \(n,\), got shape \(2, 4000\)"):
        classic.rms(np.zeros((2, 4000), dtype=np.float32), sample_rate_hz=SR)
    with pytest.raises(FeatureError, match=r"dtype int16"):
        classic.rms(np.zeros(4000, dtype=np.int16), sample_rate_hz=SR)
    with pytest.raises(FeatureError, match=r"NaN or infinite"):
        classic.rms(np.full(4000, np.nan, dtype=np.float32), sample_rate_hz=SR)
    with pytest.raises(FeatureError, match=r"spectral_contrast: Frequency band exceeds Nyquist"):
        classic.spectral_contrast(_speechlike(8000), sample_rate_hz=8000)


# -- functionals ----------------------------------------------------------------


def test_functionals_values_and_layout():
    x = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]])
    out = functionals(x, stats=("mean", "std", "min", "max", "p50", "range", "slope"))
    np.testing.assert_allclose(out, [2.5, 5, np.std([1, 2, 3, 4]), 0, 1, 5, 4, 5, 2.5, 5, 3, 0, 1, 0], rtol=1e-6)
    assert out.dtype == np.float32
    assert functional_names(["a", "b"], stats=("mean", "slope")) == ["a_mean", "b_mean", "a_slope", "b_slope"]
    one = functionals(np.ones((3, 1)))
    assert one.shape == (3 * len(DEFAULT_STATS),) and np.isfinite(one).all()


def test_functionals_errors():
    with pytest.raises(FeatureError, match="0 frames"):
        functionals(np.zeros((3, 0)))
    with pytest.raises(ConfigError, match=r"unknown statistic 'median'"):
        functionals(np.zeros((3, 4)), stats=("median",))
    with pytest.raises(FeatureError, match=r"shape \(n_features, frames\), got shape \(4,\)"):
        functionals(np.zeros(4))


# -- named feature sets -----------------------------------------------------------


@pytest.mark.parametrize(("name", "dim"), [("mfcc-functionals", 960), ("classic", 488)])
def test_feature_sets_shape_dtype_finite(name, dim):
    out = extract_features(name, _speechlike(), sample_rate_hz=SR)
    assert out.shape == (dim,) and out.dtype == np.float32 and np.isfinite(out).all()
    silent = extract_features(name, np.zeros(SR, dtype=np.float32), sample_rate_hz=SR)
    assert np.isfinite(silent).all()


def test_registry_names_errors_and_variants():
    assert {"classic", "egemaps", "mfcc-functionals"} <= set(feature_set_names())
    with pytest.raises(ConfigError, match=r"unknown feature set 'mfcc'; did you mean 'mfcc-functionals'\?"):
        extract_features("mfcc", _speechlike(), sample_rate_hz=SR)
    small = get_feature_set("mfcc-functionals").with_params(n_mfcc=13, stats=("mean", "std"))
    assert extract_features(small, _speechlike(), sample_rate_hz=SR).shape == (13 * 3 * 2,)
    assert small.config()["params"]["stats"] == ["mean", "std"]
    assert small.config() != FEATURE_SETS["mfcc-functionals"].config()
    json.dumps(small.config())
    with pytest.raises(ConfigError, match=r"has no parameter\(s\) \['n_mfccs'\]"):
        small.with_params(n_mfccs=20)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample_rate_hz=st.sampled_from([16000, 22050, 44100]),
    n=st.integers(min_value=0, max_value=6000),
    silent=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_feature_sets_finite_or_clear_error(sample_rate_hz, n, silent, seed):
    """Very short clips give finite features or a FeatureError, never NaN."""
    y = (
        np.zeros(n, dtype=np.float32)
        if silent
        else np.random.default_rng(seed).uniform(-0.5, 0.5, n).astype(np.float32)
    )
    for name in ("mfcc-functionals", "classic"):
        try:
            out = extract_features(name, y, sample_rate_hz=sample_rate_hz)
        except FeatureError as exc:
            assert any(part in str(exc) for part in ("needs at least", "non-finite", "contains no samples"))
            assert n < 1025
        else:
            assert np.isfinite(out).all()


# -- scaling ------------------------------------------------------------------------


def test_scaler_uses_train_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(5.0, 2.0, size=(200, 3))
    train[:, 2] = 7.0  # constant column
    test = rng.normal(-3.0, 10.0, size=(50, 3))
    sc = StandardScaler().fit(train)
    z = sc.transform(test)
    np.testing.assert_allclose(z, (test - train.mean(0)) / np.where(train.std(0) > 0, train.std(0), 1), rtol=1e-5)
    ztrain = sc.transform(train)
    np.testing.assert_allclose(ztrain[:, :2].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(ztrain[:, :2].std(0), 1, atol=1e-5)
    assert np.all(ztrain[:, 2] == 0) and z.dtype == np.float32
    np.testing.assert_allclose(sc.inverse_transform(z), test, rtol=1e-5)


def test_scaler_round_trips_through_json():
    x = np.random.default_rng(1).normal(size=(20, 4))
    sc = StandardScaler().fit(x)
    back = StandardScaler.from_dict(json.loads(json.dumps(sc.to_dict())))
    np.testing.assert_array_equal(back.transform(x), sc.transform(x))
    assert back.n_samples_seen_ == 20


def test_scaler_errors():
    with pytest.raises(FeatureError, match="not fitted; call fit"):
        StandardScaler().transform(np.zeros((2, 2)))
    sc = StandardScaler().fit(np.zeros((3, 2)))
    with pytest.raises(FeatureError, match="features have 3 columns, the scaler was fitted on 2"):
        sc.transform(np.zeros((1, 3)))
    with pytest.raises(FeatureError, match="NaN or infinite"):
        sc.transform(np.array([[np.nan, 0.0]]))
    with pytest.raises(FeatureError, match="0 rows"):
        StandardScaler().fit(np.zeros((0, 2)))
    with pytest.raises(ConfigError, match="not a saved StandardScaler"):
        StandardScaler.from_dict({"mean": [0.0]})


# -- eGeMAPS --------------------------------------------------------------------------


def test_egemaps_gives_88_finite_values():
    pytest.importorskip("opensmile")
    out = extract_features("egemaps", _speechlike(), sample_rate_hz=SR)
    assert out.shape == (88,) and out.dtype == np.float32 and np.isfinite(out).all()
    from emovox.features.egemaps import egemaps_names

    assert len(egemaps_names()) == 88
    with pytest.raises(FeatureError, match=r"needs at least 1600"):
        extract_features("egemaps", _speechlike(800), sample_rate_hz=SR)


def test_egemaps_missing_opensmile_gives_install_hint(monkeypatch):
    from emovox.features import egemaps

    egemaps.smile.cache_clear()
    monkeypatch.setitem(sys.modules, "opensmile", None)  # makes `import opensmile` fail
    try:
        with pytest.raises(FeatureError, match=r'pip install "emovox\[egemaps\]"'):
            extract_features("egemaps", _speechlike(), sample_rate_hz=SR)
    finally:
        egemaps.smile.cache_clear()
