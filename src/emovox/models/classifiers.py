"""Classifiers on utterance-level feature vectors: the estimators behind the workbench's ``--model NAME``.

Named scikit-learn classifiers (:data:`CLASSIFIERS`); the workbench wrapper
that refits one per fold, and tunes it, is
:class:`emovox.evaluation.workbench_models.Classifier` (resolved by
:func:`emovox.evaluation.resolve_model`):

``linear`` (alias ``logreg``)
    Multinomial logistic regression (``LogisticRegression``).
``svm-linear``, ``svm-rbf``
    Support-vector machines (``SVC``, linear / RBF kernel, one-vs-one).
``mlp``
    One-hidden-layer perceptron (``MLPClassifier``, Adam).
``gbt``
    Gradient-boosted trees (``HistGradientBoostingClassifier``).
``rf``
    Random forest (``RandomForestClassifier``).
``knn``
    k nearest neighbours (``KNeighborsClassifier``): cannot weight classes.

The legacy names ``svm-egemaps`` / ``svm-mfcc`` (:data:`LEGACY_MODELS`) mean
``svm-rbf`` on ``egemaps`` / ``mfcc-functionals`` with the same settings as
before, so they give the same predictions.

Per fold, on the training side only:

1. non-finite feature values are replaced by the training mean of that
   feature (a guard for arrays given directly to ``fit_predict``: the features
   layer itself refuses non-finite values) (:func:`impute_and_scale`);
2. a :class:`emovox.features.StandardScaler` is fitted on the training fold
   and applied to both sides (normalisation never sees a test speaker);
3. the classifier is fitted with balanced class weights (``class_weight=
   "balanced"``, or balanced sample weights for the MLP; none for kNN)
   (:func:`fit_estimator`).

Hyper-parameters are fixed, seeded defaults; each spec's ``grid`` is what
tuning (inner speaker-disjoint CV, in the evaluation layer) searches.

Scores (:func:`class_scores`) are class probabilities ``(n_test, n_classes)``
(for late fusion): the classifier's ``predict_proba``, except for the SVMs,
whose scores are a softmax of the one-vs-rest ``decision_function`` while the
label stays ``predict()`` (libsvm's one-vs-one vote). ``SVC(probability=True)``
would add an internal 5-fold Platt calibration to every fit (5x the cost,
seeded randomness) and its arg-max can disagree with ``predict()``; the
softmaxed decision values are cheap, deterministic and rank the classes as the
votes do (ties aside). They are not calibrated probabilities. Nothing here
pickles anything; the fitted models are not saved.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emovox.errors import ConfigError
from emovox.registry import Registry

__all__ = [
    "ALIASES",
    "CLASSIFIERS",
    "LEGACY_MODELS",
    "SCALING",
    "ClassifierSpec",
    "canonical_name",
    "class_scores",
    "classifier_names",
    "fit_estimator",
    "get_classifier",
    "impute_and_scale",
    "is_classifier",
]

#: Legacy model name -> (classifier, feature set).
LEGACY_MODELS: dict[str, tuple[str, str]] = {
    "svm-egemaps": ("svm-rbf", "egemaps"),
    "svm-mfcc": ("svm-rbf", "mfcc-functionals"),
}
#: Other names of classifiers.
ALIASES: dict[str, str] = {"logreg": "linear"}

SCALING = "StandardScaler fitted on the training fold (non-finite values -> training mean first)"


@dataclass(frozen=True)
class ClassifierSpec:
    """How to build one named classifier.

    Attributes
    ----------
    name : str
    estimator : str
        The scikit-learn class, for the record.
    build : callable
        ``build(params, *, seed, n_features) -> (estimator, resolved)``:
        an unfitted estimator and the JSON-able hyper-parameters it really uses.
    defaults : mapping
        Fixed hyper-parameters (used unless tuned).
    grid : mapping of str to tuple
        Values tried by inner CV when tuning (full product, in this order).
    weighting : str
        ``"class_weight"`` (balanced, inside the estimator), ``"sample_weight"``
        (balanced weights passed to ``fit``) or ``"none"``.
    scores : str
        ``"proba"`` (``predict_proba``) or ``"decision"`` (softmax of ``decision_function``).
    description : str
    """

    name: str
    estimator: str
    build: Callable[..., tuple[Any, dict]] = field(repr=False)
    defaults: Mapping[str, Any]
    grid: Mapping[str, tuple]
    weighting: str
    scores: str
    description: str


_CLASSIFIERS: dict[str, ClassifierSpec] = {}
#: Named classifiers (:class:`emovox.registry.Registry` over :class:`ClassifierSpec`).
CLASSIFIERS = Registry("classifier", lookup_error=ConfigError, modules=(), entries=lambda: _CLASSIFIERS)


def _linear(p, *, seed, n_features):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=p["C"], class_weight="balanced", max_iter=p["max_iter"], random_state=seed), {
        "C": p["C"],
        "max_iter": p["max_iter"],
    }


def _svm(kernel):
    def build(p, *, seed, n_features):
        from sklearn.svm import SVC

        resolved = {"C": p["C"]}
        if kernel == "rbf":  # gamma_scale: gamma as a multiple of 1/d (1/d = "scale" on standardised features)
            resolved["gamma"] = p["gamma_scale"] / n_features if "gamma_scale" in p else p["gamma"]
        return SVC(kernel=kernel, class_weight="balanced", **resolved), resolved

    return build


def _mlp(p, *, seed, n_features):
    from sklearn.neural_network import MLPClassifier

    resolved = {"hidden_layer_sizes": list(p["hidden_layer_sizes"]), "alpha": p["alpha"], "max_iter": p["max_iter"]}
    return MLPClassifier(
        hidden_layer_sizes=tuple(p["hidden_layer_sizes"]), alpha=p["alpha"], max_iter=p["max_iter"], random_state=seed
    ), resolved


def _gbt(p, *, seed, n_features):
    from sklearn.ensemble import HistGradientBoostingClassifier

    resolved = {k: p[k] for k in ("learning_rate", "max_iter", "max_leaf_nodes")}
    return HistGradientBoostingClassifier(
        **resolved, class_weight="balanced", early_stopping=False, random_state=seed
    ), resolved


def _rf(p, *, seed, n_features):
    from sklearn.ensemble import RandomForestClassifier

    resolved = {k: p[k] for k in ("n_estimators", "max_features", "min_samples_leaf")}
    return RandomForestClassifier(**resolved, class_weight="balanced", n_jobs=1, random_state=seed), resolved


def _knn(p, *, seed, n_features):
    from sklearn.neighbors import KNeighborsClassifier

    resolved = {"n_neighbors": p["n_neighbors"], "weights": p["weights"]}
    return KNeighborsClassifier(**resolved), resolved


for _spec in (
    ClassifierSpec(
        "linear",
        "sklearn.linear_model.LogisticRegression",
        _linear,
        {"C": 1.0, "max_iter": 2000},
        {"C": (0.001, 0.01, 0.1, 1.0, 10.0)},
        "class_weight",
        "proba",
        "multinomial logistic regression",
    ),
    ClassifierSpec(
        "svm-linear",
        "sklearn.svm.SVC(kernel='linear')",
        _svm("linear"),
        {"C": 1.0},
        {"C": (0.001, 0.01, 0.1, 1.0)},
        "class_weight",
        "decision",
        "linear support-vector machine",
    ),
    ClassifierSpec(
        "svm-rbf",
        "sklearn.svm.SVC(kernel='rbf')",
        _svm("rbf"),
        {"C": 1.0, "gamma": "scale"},
        {"C": (0.1, 1.0, 10.0, 100.0), "gamma_scale": (0.25, 1.0, 4.0)},
        "class_weight",
        "decision",
        "RBF support-vector machine (gamma_scale: gamma = gamma_scale / d)",
    ),
    ClassifierSpec(
        "mlp",
        "sklearn.neural_network.MLPClassifier",
        _mlp,
        {"hidden_layer_sizes": (128,), "alpha": 0.01, "max_iter": 300},
        {"hidden_layer_sizes": ((64,), (256,)), "alpha": (0.001, 0.1)},
        "sample_weight",
        "proba",
        "one-hidden-layer perceptron (ReLU, Adam)",
    ),
    ClassifierSpec(
        "gbt",
        "sklearn.ensemble.HistGradientBoostingClassifier",
        _gbt,
        {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 15},
        {"learning_rate": (0.05, 0.1), "max_leaf_nodes": (7, 31)},
        "class_weight",
        "proba",
        "gradient-boosted trees (histogram)",
    ),
    ClassifierSpec(
        "rf",
        "sklearn.ensemble.RandomForestClassifier",
        _rf,
        {"n_estimators": 300, "max_features": "sqrt", "min_samples_leaf": 1},
        {"max_features": ("sqrt", 0.2), "min_samples_leaf": (1, 4)},
        "class_weight",
        "proba",
        "random forest",
    ),
    ClassifierSpec(
        "knn",
        "sklearn.neighbors.KNeighborsClassifier",
        _knn,
        {"n_neighbors": 10, "weights": "distance"},
        {"n_neighbors": (5, 10, 20, 40), "weights": ("uniform", "distance")},
        "none",
        "proba",
        "k nearest neighbours (Euclidean on standardised features; cannot weight classes)",
    ),
):
    CLASSIFIERS.register(_spec.name, _spec)
del _spec


def classifier_names() -> list[str]:
    """Registered classifier names, sorted (aliases and legacy names not included)."""
    return CLASSIFIERS.names()


def canonical_name(name: str) -> str:
    """The registered name behind an alias (``"logreg"`` -> ``"linear"``); other names unchanged."""
    return ALIASES.get(name, name)


def is_classifier(name: str) -> bool:
    """Whether ``name`` is a classifier, an alias of one or a legacy model name."""
    return isinstance(name, str) and (canonical_name(name) in _CLASSIFIERS or name in LEGACY_MODELS)


def get_classifier(name: str) -> ClassifierSpec:
    """The :class:`ClassifierSpec` of a name or alias; :class:`ConfigError` lists the known ones."""
    return CLASSIFIERS.get(canonical_name(name))


def impute_and_scale(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace non-finite values by the training mean, standardise with training statistics.

    Parameters
    ----------
    X_train : np.ndarray [shape=(n_train, d)]
    X_test : np.ndarray [shape=(n_test, d)]

    Returns
    -------
    (np.ndarray [shape=(n_train, d)], np.ndarray [shape=(n_test, d)]), float64
    """
    from emovox.features import StandardScaler

    X_train = np.asarray(X_train, dtype=np.float64)
    X_test = np.asarray(X_test, dtype=np.float64)
    if not (np.isfinite(X_train).all() and np.isfinite(X_test).all()):
        with np.errstate(all="ignore"):
            fill = np.nanmean(np.where(np.isfinite(X_train), X_train, np.nan), axis=0)
        fill = np.where(np.isfinite(fill), fill, 0.0)
        X_train = np.where(np.isfinite(X_train), X_train, fill)
        X_test = np.where(np.isfinite(X_test), X_test, fill)
    scaler = StandardScaler().fit(X_train)

    def as64(X):
        return np.asarray(scaler.transform(X), dtype=np.float64)

    return as64(X_train), as64(X_test)


def fit_estimator(spec: ClassifierSpec, params: Mapping[str, Any], X: np.ndarray, y: np.ndarray, *, seed: int):
    """Build ``spec``'s estimator with ``params`` and fit it on ``(X, y)`` with its class balancing.

    Parameters
    ----------
    spec : ClassifierSpec
    params : mapping
        Hyper-parameters (the spec's defaults, overridden or tuned).
    X : np.ndarray [shape=(n, d)]
        Scaled features (:func:`impute_and_scale`).
    y : np.ndarray [shape=(n,)], int
    seed : int

    Returns
    -------
    (estimator, dict)
        The fitted estimator and the JSON-able hyper-parameters it really used.
    """
    estimator, resolved = spec.build(dict(params), seed=seed, n_features=X.shape[1])
    fit_kw = {}
    if spec.weighting == "sample_weight":
        import inspect

        from sklearn.utils.class_weight import compute_sample_weight

        if "sample_weight" not in inspect.signature(estimator.fit).parameters:
            raise ConfigError(
                f"classifier {spec.name!r} needs scikit-learn >= 1.7 (sample weights in "
                "MLPClassifier.fit): pip install -U scikit-learn"
            )
        fit_kw["sample_weight"] = compute_sample_weight("balanced", y)
    with warnings.catch_warnings():
        from sklearn.exceptions import ConvergenceWarning

        warnings.simplefilter("ignore", ConvergenceWarning)  # iteration caps are part of the defaults
        estimator.fit(X, y, **fit_kw)
    return estimator, resolved


def class_scores(spec: ClassifierSpec, estimator: Any, X: np.ndarray, n_classes: int) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` of a fitted estimator; a class absent from training gets 0.

    ``predict_proba``, or for ``scores="decision"`` a softmax of the one-vs-rest
    ``decision_function`` (see the module docstring).
    """
    known = np.asarray(estimator.classes_, dtype=np.int64)
    if spec.scores == "proba":
        out = np.zeros((len(X), n_classes))
        out[:, known] = estimator.predict_proba(X)
        return out
    decision = np.asarray(estimator.decision_function(X), dtype=np.float64)
    if decision.ndim == 1:  # binary: positive means classes_[1]
        decision = np.stack([-decision, decision], axis=1) / 2.0
    full = np.full((len(X), n_classes), -np.inf)
    full[:, known] = decision
    from scipy.special import softmax

    return np.asarray(softmax(full, axis=1))
