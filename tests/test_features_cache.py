"""featurize_records and the on-disk feature cache."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from emovox.errors import ConfigError, FeatureError
from emovox.features import FeatureSet, features_config, featurize_records, get_feature_set
from emovox.features.cache import FeatureCache, cache_key, file_fingerprint

SR = 16000


def _write(path, seed: int, n: int = SR // 2, sr: int = SR) -> str:
    rng = np.random.default_rng(seed)
    sf.write(path, (0.1 * rng.standard_normal(n)).astype(np.float32), sr, subtype="PCM_16")
    return str(path)


class _Rec:
    def __init__(self, path):
        self.path = path


def _counting_set(calls: list) -> FeatureSet:
    def extractor(y, *, sample_rate_hz, scale=1.0):
        calls.append(len(y))
        return np.array([y.mean(), y.std() * scale, len(y) / sample_rate_hz], dtype=np.float32)

    return FeatureSet("counting", extractor, {"scale": 1.0})


def test_featurize_records_shape_and_order(tmp_path):
    paths = [_write(tmp_path / f"{i}.wav", i, n=SR // 2 + 1000 * i) for i in range(3)]
    x = featurize_records([_Rec(p) for p in paths], "mfcc-functionals")
    assert x.shape == (3, 960) and x.dtype == np.float32 and np.isfinite(x).all()
    calls: list = []
    y = featurize_records(paths, _counting_set(calls))  # plain paths work too
    np.testing.assert_allclose(y[:, 2], [(SR // 2 + 1000 * i) / SR for i in range(3)])


def test_second_call_reads_the_cache(tmp_path):
    paths = [_write(tmp_path / f"{i}.wav", i) for i in range(3)]
    calls: list = []
    fs = _counting_set(calls)
    first = featurize_records(paths, fs, cache_dir=tmp_path / "cache")
    assert len(calls) == 3
    second = featurize_records(paths, fs, cache_dir=tmp_path / "cache")
    assert len(calls) == 3  # nothing recomputed
    np.testing.assert_array_equal(first, second)
    entries = list((tmp_path / "cache").rglob("*"))
    assert sum(p.suffix == ".npy" for p in entries) == 3
    assert not [p for p in entries if p.suffix == ".tmp"]  # atomic writes leave no temp files


def test_changed_param_or_rate_gives_new_key(tmp_path):
    path = _write(tmp_path / "a.wav", 0)
    calls: list = []
    fs = _counting_set(calls)
    featurize_records([path], fs, cache_dir=tmp_path / "c")
    featurize_records([path], fs.with_params(scale=2.0), cache_dir=tmp_path / "c")
    featurize_records([path], fs, sample_rate_hz=8000, cache_dir=tmp_path / "c")
    assert len(calls) == 3
    fp = file_fingerprint(path)
    keys = {
        cache_key(fp, features_config(fs)),
        cache_key(fp, features_config(fs.with_params(scale=2.0))),
        cache_key(fp, features_config(fs, sample_rate_hz=8000)),
        cache_key(fp, features_config(get_feature_set("classic"))),
        cache_key(fp, features_config(get_feature_set("classic").with_params(n_mfcc=20))),
    }
    assert len(keys) == 5
    assert features_config("classic")["features"]["features_version"]


def test_modified_file_invalidates_and_copy_hits(tmp_path):
    path = _write(tmp_path / "a.wav", 0)
    calls: list = []
    fs = _counting_set(calls)
    before = featurize_records([path], fs, cache_dir=tmp_path / "c")
    st = os.stat(path)
    _write(path, 1)  # same size, new content; restore the old mtime
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = featurize_records([path], fs, cache_dir=tmp_path / "c")
    assert len(calls) == 2 and not np.array_equal(before, after)
    copy = shutil.copy(path, tmp_path / "copy.wav")
    featurize_records([copy], fs, cache_dir=tmp_path / "c")
    assert len(calls) == 2  # same bytes elsewhere: cache hit


def test_corrupt_entry_is_recomputed(tmp_path):
    path = _write(tmp_path / "a.wav", 0)
    calls: list = []
    fs = _counting_set(calls)
    featurize_records([path], fs, cache_dir=tmp_path / "c")
    entry = FeatureCache(tmp_path / "c").path_for(cache_key(file_fingerprint(path), features_config(fs)))
    entry.write_bytes(b"not an npy file")
    out = featurize_records([path], fs, cache_dir=tmp_path / "c")
    assert len(calls) == 2 and np.isfinite(out).all()
    assert np.load(entry, allow_pickle=False).shape == (3,)


def test_parallel_equals_serial(tmp_path):
    paths = [_write(tmp_path / f"{i}.wav", i) for i in range(4)]
    serial = featurize_records(paths, "mfcc-functionals")
    parallel = featurize_records(paths, "mfcc-functionals", n_jobs=2, cache_dir=tmp_path / "c")
    np.testing.assert_allclose(parallel, serial, rtol=1e-6)
    assert len(list((tmp_path / "c").rglob("*.npy"))) == 4


def test_unpicklable_set_falls_back_to_serial(tmp_path):
    paths = [_write(tmp_path / f"{i}.wav", i) for i in range(2)]
    calls: list = []
    with pytest.warns(RuntimeWarning, match="cannot be sent to worker processes"):
        out = featurize_records(paths, _counting_set(calls), n_jobs=2)
    assert out.shape == (2, 3) and len(calls) == 2


def test_errors(tmp_path):
    with pytest.raises(FeatureError, match="no records"):
        featurize_records([], "classic")
    with pytest.raises(ConfigError, match=r"n_jobs=0 must be a positive integer or -1"):
        featurize_records([_write(tmp_path / "a.wav", 0)], "classic", n_jobs=0)
    with pytest.raises(ConfigError, match="unknown feature set 'mfcc-functional'"):
        featurize_records([_write(tmp_path / "a.wav", 0)], "mfcc-functional")
    with pytest.raises(ConfigError, match=r"expected records with a \.path"):
        featurize_records([42], "classic")
    short = _write(tmp_path / "short.wav", 0, n=900)
    with pytest.raises(FeatureError, match=r"short\.wav.*needs at least 1025"):
        featurize_records([short], "classic")
