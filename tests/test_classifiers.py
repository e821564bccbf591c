"""The workbench classifiers: each learns, tuning sees training speakers only, legacy aliases are unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.errors import ConfigError
from emovox.evaluation import (
    FoldData,
    leave_one_speaker_out,
    resolve_model,
    run_experiment,
    speaker_kfold,
)
from emovox.evaluation.workbench_models import Classifier, make_classifier
from emovox.models.classifiers import (
    LEGACY_MODELS,
    classifier_names,
    get_classifier,
)

CLASSES = ("angry", "happy", "neutral", "sad")
ALL = ("linear", "svm-linear", "svm-rbf", "mlp", "gbt", "rf", "knn")


def _task(seed=0, n_speakers=6, per_class=8, d=12):
    """Speaker-grouped synthetic data: class centres, a per-speaker offset, one feature on a huge scale."""
    rng = np.random.default_rng(seed)
    speakers, y, X = [], [], []
    centres = rng.normal(0, 2.0, (len(CLASSES), d))
    for s in range(n_speakers):
        shift = rng.normal(0, 0.3, d)
        for c in range(len(CLASSES)):
            speakers += [f"toy/{s}"] * per_class
            y += [c] * per_class
            X.append(centres[c] + rng.normal(0, 1.0, (per_class, d)) + shift + 100.0)
    X = np.concatenate(X)
    X[:, 0] *= 1000.0
    return X, np.array(y), np.array(speakers, dtype=object)


def _sides(X, y, speakers, split, X_test=None):
    X_test = X if X_test is None else X_test
    train = FoldData(
        X=X[split.train_idx], y=y[split.train_idx], records=None, speakers=speakers[split.train_idx], classes=CLASSES
    )
    test = FoldData(X=X_test[split.test_idx], y=None, records=None, speakers=speakers[split.test_idx], classes=CLASSES)
    return train, test


def test_registry_holds_the_seven_names():
    assert sorted(ALL) == classifier_names()
    assert make_classifier("logreg", features="egemaps").name == "linear"
    assert get_classifier("logreg").name == "linear"
    with pytest.raises(ConfigError, match="unknown classifier 'xgb'.*gbt"):
        get_classifier("xgb")


@pytest.mark.parametrize("name", ALL)
def test_each_classifier_learns_and_returns_probabilities(name):
    X, y, speakers = _task()
    model = resolve_model(name, features="egemaps", seed=1)
    splits = speaker_kfold(speakers, k=3, seed=0, labels=y)
    result = run_experiment(
        splits, model.fit_predict, y=y, classes=CLASSES, speakers=speakers, X=X, config=model.to_dict()
    )
    assert result["speaker_independent"]
    assert result["pooled"]["uar"] > 0.85, (name, result["pooled"]["uar"])  # chance: 0.25
    scores = np.array([[p["scores"][c] for c in CLASSES] for p in result["predictions"]])
    assert scores.shape == (len(y), 4) and np.allclose(scores.sum(axis=1), 1.0) and (scores >= 0).all()
    info = result["folds"][0]["model"]
    described = model.to_dict()
    assert described["name"] == name and described["feature_set"] == "egemaps" and described["tune"] is False
    assert set(get_classifier(name).defaults) & set(info), "the fold records the hyper-parameters it used"


def test_svm_egemaps_alias_equals_a_direct_scikit_learn_svm():
    from sklearn.svm import SVC

    X, y, speakers = _task(seed=4)
    model = resolve_model("svm-egemaps")
    assert (model.name, model.feature_set, model.alias) == ("svm-rbf", "egemaps", "svm-egemaps")
    for split in leave_one_speaker_out(speakers)[:3]:
        train, test = _sides(X, y, speakers, split)
        out = model.fit_predict(train, test)
        mean, std = train.X.mean(axis=0), train.X.std(axis=0)

        def scale(A, mean=mean, std=std):  # emovox's scaler stores float32
            return ((A - mean) / std).astype(np.float32).astype(np.float64)

        direct = SVC(kernel="rbf", C=1.0, gamma="scale", class_weight="balanced").fit(scale(train.X), train.y)
        np.testing.assert_array_equal(out.predicted, direct.predict(scale(test.X)))
        assert out.info["C"] == 1.0 and out.info["gamma"] == "scale"
        assert out.info["n_support"] == int(direct.n_support_.sum())


def test_legacy_names_and_feature_rules():
    assert resolve_model("svm-mfcc", features="mfcc-functionals").feature_set == "mfcc-functionals"
    assert LEGACY_MODELS["svm-mfcc"] == ("svm-rbf", "mfcc-functionals")
    with pytest.raises(ConfigError, match="reads 'egemaps'.*--model svm-rbf --features compare"):
        resolve_model("svm-egemaps", features="compare")
    with pytest.raises(ConfigError, match="'gbt' needs a feature set: pass --features NAME"):
        resolve_model("gbt")
    with pytest.raises(ConfigError, match="unknown feature set 'egemap'"):
        resolve_model("gbt", features="egemap")
    with pytest.raises(ConfigError, match="no hyper-parameter"):
        make_classifier("knn", features="egemaps", C=1.0)


def test_a_resolver_model_refuses_features(monkeypatch):
    from emovox.evaluation import model_resolver

    class Own:
        name, feature_set = "own", None

    monkeypatch.setattr(model_resolver, "_RESOLVERS", [])
    model_resolver.register_model_resolver(lambda m: Own() if m == "own" else None)
    assert isinstance(resolve_model("own"), Own)
    with pytest.raises(ConfigError, match="reads its own input.*drop --features egemaps"):
        resolve_model("own", features="egemaps")


def test_knn_says_it_cannot_weight_classes():
    assert "cannot weight" in resolve_model("knn", features="egemaps").to_dict()["class_weight"]
    assert "sample weights" in resolve_model("mlp", features="egemaps").to_dict()["class_weight"]


@pytest.mark.parametrize("name", ["knn", "linear"])
def test_tuning_sees_only_the_training_speakers(name, monkeypatch):
    """Every inner split is drawn from the fold's training rows; test features cannot move the choice."""
    from emovox.evaluation import protocols

    X, y, speakers = _task(seed=2)
    seen: list[set] = []
    real = protocols.speaker_kfold

    def spy(spk, **kw):
        splits = real(spk, **kw)
        spk = np.asarray(spk)
        for s in splits:  # inner folds are speaker-disjoint
            assert not set(spk[s.train_idx]) & set(spk[s.test_idx])
        seen.append(set(spk))
        return splits

    monkeypatch.setattr(protocols, "speaker_kfold", spy)
    model = resolve_model(name, features="egemaps", tune=True)
    assert isinstance(model, Classifier) and model.to_dict()["grid"]
    for split in leave_one_speaker_out(speakers)[:2]:
        seen.clear()
        train, test = _sides(X, y, speakers, split)
        out = model.fit_predict(train, test)
        assert seen == [set(train.speakers)] and not seen[0] & set(test.speakers)
        assert 0.0 <= out.info["inner_uar"] <= 1.0
        for key, value in out.info["tuned"].items():
            assert value in [list(v) if isinstance(v, tuple) else v for v in model.grid[key]]
        noise = np.random.default_rng(0).normal(size=X.shape) * 1e3
        _, noisy_test = _sides(X, y, speakers, split, X_test=noise)
        assert model.fit_predict(train, noisy_test).info["tuned"] == out.info["tuned"]


def test_tuned_svm_rbf_records_gamma_from_its_grid():
    X, y, speakers = _task()
    model = resolve_model("svm-mfcc", tune=True)
    train, test = _sides(X, y, speakers, leave_one_speaker_out(speakers)[0])
    info = model.fit_predict(train, test).info
    assert info["C"] in model.grid["C"]
    assert info["gamma"] == pytest.approx(info["tuned"]["gamma_scale"] / X.shape[1])


def test_binary_svm_scores_and_a_class_missing_from_training():
    X, y, speakers = _task()
    keep = y < 2
    X2, y2, s2 = X[keep], y[keep], speakers[keep]
    split = leave_one_speaker_out(s2)[0]
    train, test = _sides(X2, y2, s2, split)
    for name in ("svm-linear", "linear"):
        out = resolve_model(name, features="egemaps").fit_predict(train, test)
        assert out.scores.shape == (len(test), 4) and np.allclose(out.scores[:, 2:], 0.0)
        assert (out.scores.argmax(axis=1) == out.predicted).mean() > 0.9
