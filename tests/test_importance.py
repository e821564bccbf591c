"""Speaker-independent permutation feature importance, and feature names/groups."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.errors import ConfigError
from emovox.evaluation.importance import permutation_importance, plot_importance
from emovox.evaluation.workbench_models import make_classifier
from emovox.features.names import feature_groups, feature_names

CLASSES = ("neutral", "happy", "angry")


def speaker_data(n_speakers: int = 8, per_speaker: int = 30, d: int = 6, informative: int = 2, seed: int = 0):
    """Clips of several speakers; only column ``informative`` depends on the class.

    Every column carries a per-speaker offset (the speaker effect a random split
    would leak); the informative one adds a class shift on top.
    """
    rng = np.random.default_rng(seed)
    speakers = np.repeat([f"toy/{s:02d}" for s in range(n_speakers)], per_speaker)
    y = rng.integers(0, len(CLASSES), size=len(speakers))
    offsets = {s: rng.normal(scale=0.5, size=d) for s in set(speakers)}
    X = rng.normal(size=(len(y), d)) + np.stack([offsets[s] for s in speakers])
    X[:, informative] += 2.0 * y
    return X, y, speakers


def linear():
    return make_classifier("linear", features="egemaps", seed=0)  # the feature set is only a label here


def test_finds_the_one_informative_feature_and_ranks_it_first():
    X, y, speakers = speaker_data()
    names = [f"noise_{i}" for i in range(6)]
    names[2] = "signal"
    result = permutation_importance(
        X, y, speakers, classes=CLASSES, model=linear(), names=names, folds=4, n_repeats=3, seed=0
    )
    top, *rest = result.rows
    assert top["feature"] == "signal" and top["n"] == 4 * 3
    assert top["mean_drop"] > 0.25, "shuffling the only informative feature must hurt UAR a lot"
    assert all(abs(r["mean_drop"]) < 0.05 for r in rest)
    assert result.baseline_uar > 0.6 and len(result.fold_uar) == 4
    assert result.config["fits"] == 4 and result.config["grouped"] is False
    csv = result.to_csv().splitlines()
    assert csv[0] == "rank,feature,n_columns,mean_uar_drop,std_uar_drop,n" and csv[1].startswith("1,signal,1,")


class SpyModel:
    """Wraps a model; records what each fit saw and how many rows it predicted."""

    feature_set = "egemaps"
    name = "spy"

    def __init__(self):
        self.inner = linear()
        self.calls = []

    def fit_predict(self, train, test):
        assert test.y is None, "the test side reaches the model without labels"
        self.calls.append((set(train.speakers), set(test.speakers), len(test)))
        return self.inner.fit_predict(train, test)

    def to_dict(self):
        return {"name": self.name}


def test_folds_are_speaker_disjoint_and_chunking_changes_nothing():
    X, y, speakers = speaker_data(n_speakers=6)
    spy = SpyModel()
    whole = permutation_importance(X, y, speakers, classes=CLASSES, model=spy, folds=3, n_repeats=2, seed=1)
    assert len(spy.calls) == 3, "one fit per fold"
    for train_speakers, test_speakers, rows in spy.calls:
        assert not train_speakers & test_speakers
        assert rows == 60 * (1 + 6 * 2)  # unshuffled rows + 6 features x 2 shuffles, stacked
    assert set().union(*(c[1] for c in spy.calls)) == set(speakers), "every speaker tested once"
    chunked = permutation_importance(
        X, y, speakers, classes=CLASSES, model=SpyModel(), folds=3, n_repeats=2, seed=1, max_cells=60 * 6 * 4
    )
    assert chunked.config["fits"] > 3
    assert [(r["feature"], round(r["mean_drop"], 12)) for r in chunked.rows] == [
        (r["feature"], round(r["mean_drop"], 12)) for r in whole.rows
    ]


def test_groups_shuffle_a_descriptor_together(tmp_path):
    X, y, speakers = speaker_data(d=4, informative=1)
    names = [
        "loudness_sma3_amean",
        "F0semitoneFrom27.5Hz_sma3nz_amean",
        "F0semitoneFrom27.5Hz_sma3nz_stddevNorm",
        "loudness_sma3_stddevNorm",
    ]
    result = permutation_importance(
        X, y, speakers, classes=CLASSES, model=linear(), names=names, group=True, folds=2, n_repeats=2
    )
    assert [r["feature"] for r in result.rows][0] == "F0semitoneFrom27.5Hz_sma3nz"
    assert {r["feature"]: r["n_columns"] for r in result.rows} == {"F0semitoneFrom27.5Hz_sma3nz": 2, "loudness_sma3": 2}
    path = plot_importance(result, tmp_path / "imp.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result.write_csv(tmp_path / "imp.csv")
    assert (tmp_path / "imp.csv").read_text().count("\n") == 3


def test_errors():
    X, y, speakers = speaker_data(n_speakers=2)
    with pytest.raises(ConfigError, match="at least 2 speakers"):
        permutation_importance(X, y, np.full(len(y), "one"), classes=CLASSES, model=linear())
    with pytest.raises(ConfigError, match="names"):
        permutation_importance(X, y, speakers, classes=CLASSES, model=linear(), names=["a"])
    with pytest.raises(ConfigError, match="needs a feature set"):
        permutation_importance(X, y, speakers, classes=CLASSES, model="linear")
    with pytest.raises(ConfigError, match="unknown model"):
        permutation_importance(X, y, speakers, classes=CLASSES, model="no-such-model", features="egemaps")


def test_mfcc_functional_names_follow_the_extractor():
    from emovox.features import extract_features
    from emovox.features.classic import mfcc
    from emovox.testing import speech_like

    names = feature_names("mfcc-functionals")
    assert len(names) == 960 and names[0] == "mfcc_0_mean" and names[40] == "d_mfcc_0_mean"
    assert names[120] == "mfcc_0_std" and names[-1] == "dd_mfcc_39_slope"
    y = speech_like(1.0, seed=3)
    x = extract_features("mfcc-functionals", y, sample_rate_hz=16000)
    frames = mfcc(y, sample_rate_hz=16000, n_mfcc=40, n_mels=128, n_fft=2048, hop_length=512, deltas=True)
    assert x[names.index("d_mfcc_5_max")] == pytest.approx(frames[45].max(), rel=1e-5)
    assert x[names.index("dd_mfcc_2_p50")] == pytest.approx(np.median(frames[82]), rel=1e-4, abs=1e-6)
    assert len(feature_names("classic")) == 488 and feature_names("classic")[40:42] == ["zcr_mean", "rms_mean"]
    assert feature_names("whisper-base", 4) == ["f0", "f1", "f2", "f3"]
    assert feature_names("mfcc-functionals", 12) == [f"f{i}" for i in range(12)]  # a width that does not fit


def test_opensmile_names_and_groups():
    pytest.importorskip("opensmile")
    names = feature_names("egemaps")
    assert len(names) == 88 and names[0] == "F0semitoneFrom27.5Hz_sma3nz_amean"
    groups = feature_groups(names)
    assert groups[0] == groups[9] == "F0semitoneFrom27.5Hz_sma3nz"
    assert "equivalentSoundLevel_dBp" in groups  # a name without a descriptor is its own group
    assert feature_groups(["mfcc_sma_de[3]_lpc0", "mfcc_sma[3]_quartile1", "d_mfcc_3_p90"]) == [
        "mfcc_sma_de[3]",
        "mfcc_sma[3]",
        "d_mfcc_3",
    ]
