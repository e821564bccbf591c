"""The legacy SVM baselines (svm-egemaps / svm-mfcc) on synthetic features: fit per fold, no test leakage."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.errors import ConfigError
from emovox.evaluation import FoldData, leave_one_speaker_out, resolve_model, run_experiment
from emovox.evaluation.workbench_models import Classifier, make_classifier
from emovox.models.classifiers import LEGACY_MODELS


def make_classical(name, **options):
    return make_classifier(name, **options)


CLASSES = ("angry", "happy", "neutral", "sad")


def _task(seed=0, n_speakers=6, per_class=8, d=12):
    rng = np.random.default_rng(seed)
    speakers, y, X = [], [], []
    centres = rng.normal(0, 2.0, (len(CLASSES), d))
    for s in range(n_speakers):
        shift = rng.normal(0, 0.3, d)  # a speaker's own offset
        for c in range(len(CLASSES)):
            speakers += [f"toy/{s}"] * per_class
            y += [c] * per_class
            X.append(centres[c] + rng.normal(0, 1.0, (per_class, d)) + shift + 100.0)
    X = np.concatenate(X)
    X[:, 0] *= 1000.0  # one feature on a huge scale: standard scaling must matter
    return X, np.array(y), np.array(speakers, dtype=object)


def test_registry_names_and_feature_sets():
    assert LEGACY_MODELS == {"svm-egemaps": ("svm-rbf", "egemaps"), "svm-mfcc": ("svm-rbf", "mfcc-functionals")}
    model = resolve_model("svm-mfcc", seed=3)
    assert isinstance(model, Classifier) and model.feature_set == "mfcc-functionals" and model.seed == 3
    assert model.name == "svm-rbf" and model.to_dict()["name"] == "svm-mfcc"
    assert model.to_dict()["class_weight"].startswith("balanced")
    with pytest.raises(ConfigError, match="unknown model 'svm-nope'"):
        resolve_model("svm-nope")
    with pytest.raises(ConfigError, match="unknown classifier 'cnn'"):
        make_classical("cnn", features="egemaps")


@pytest.mark.parametrize("tune", [False, True])
def test_svm_loso_learns_a_separable_task(tune):
    X, y, speakers = _task()
    model = make_classical("svm-mfcc", tune=tune)
    result = run_experiment(
        leave_one_speaker_out(speakers),
        model.fit_predict,
        y=y,
        classes=CLASSES,
        speakers=speakers,
        X=X,
        protocol="loso",
        config=model.to_dict(),
    )
    assert result["pooled"]["uar"] > 0.9
    info = result["folds"][0]["model"]
    assert {"C", "gamma"} <= set(info)
    if tune:
        assert "inner_uar" in info and info["C"] in model.grid["C"]


def test_scaler_is_fitted_on_training_fold_only():
    """Shifting the test features by a constant changes predictions: test stats are not used."""
    X, y, speakers = _task()
    split = leave_one_speaker_out(speakers)[0]
    model = make_classical("svm-mfcc")

    def side(idx, X_, labels):
        return FoldData(X=X_[idx], y=y[idx] if labels else None, records=None, speakers=speakers[idx], classes=CLASSES)

    base = model.fit_predict(side(split.train_idx, X, True), side(split.test_idx, X, False)).predicted
    shifted = X.copy()
    shifted[split.test_idx] += 5.0  # a transductive scaler (fit on test) would undo this shift
    moved = model.fit_predict(side(split.train_idx, X, True), side(split.test_idx, shifted, False)).predicted
    assert not np.array_equal(base, moved)


def test_non_finite_features_are_imputed_from_training_means():
    X, y, speakers = _task()
    X[::7, 3] = np.nan
    X[5, 4] = np.inf
    model = make_classical("svm-mfcc")
    result = run_experiment(
        leave_one_speaker_out(speakers), model.fit_predict, y=y, classes=CLASSES, speakers=speakers, X=X
    )
    assert result["pooled"]["uar"] > 0.9


def test_single_class_training_fold_is_a_clear_error():
    X, _, speakers = _task()
    y = np.zeros(len(X), dtype=int)
    model = make_classical("svm-mfcc")
    with pytest.raises(ConfigError, match="single class"):
        run_experiment(
            leave_one_speaker_out(speakers)[:1], model.fit_predict, y=y, classes=CLASSES, speakers=speakers, X=X
        )
