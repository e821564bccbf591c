"""Classifiers on utterance-level feature vectors: any model on any feature set.

Named scikit-learn classifiers (:data:`CLASSIFIERS`), refitted per fold by the
evaluation runner (:func:`emovox.evaluation.resolve_model`):

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
   layer itself refuses non-finite values);
2. a :class:`emovox.features.StandardScaler` is fitted on the training fold
   and applied to both sides (normalisation never sees a test speaker);
3. the classifier is fitted with balanced class weights (``class_weight=
   "balanced"``, or balanced sample weights for the MLP; none for kNN).

Hyper-parameters are fixed, seeded defaults. With ``tune=True`` each fold
picks them from the model's small grid by an inner speaker-disjoint k-fold over
its *training speakers only* (UAR criterion, first best in grid order), then
refits on the whole training fold; the choice and the inner UAR are recorded
per fold. One code path (:meth:`Classifier.tune_on`) serves every model.

Scores are class probabilities ``(n_test, n_classes)`` (for late fusion): the
classifier's ``predict_proba``, except for the SVMs, whose scores are a
softmax of the one-vs-rest ``decision_function`` while the label stays
``predict()`` (libsvm's one-vs-one vote). ``SVC(probability=True)`` would add
an internal 5-fold Platt calibration to every fit (5x the cost, seeded
randomness) and its arg-max can disagree with ``predict()``; the softmaxed
decision values are cheap, deterministic and rank the classes as the votes do
(ties aside). They are not calibrated probabilities. Nothing here pickles
anything; the fitted models are not saved.
"""

from __future__ import annotations

import itertools
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
    "Classifier",
    "ClassifierSpec",
    "canonical_name",
    "classifier_names",
    "get_classifier",
    "impute_and_scale",
    "is_classifier",
    "make_classifier",
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


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass
class Classifier:
    """A named classifier on a feature set, refitted per fold (see the module docstring).

    Attributes
    ----------
    name : str
        Registered classifier name (``"linear"``, ``"svm-rbf"``, ...).
    feature_set : str
        Feature set the runner extracts for ``X``.
    params : dict
        Hyper-parameters used unless tuned (the spec's defaults, overridden).
    tune : bool
        Pick hyper-parameters per fold by inner speaker-disjoint CV.
    inner_folds : int
        Folds of the inner CV (capped by the number of training speakers).
    seed : int
        Seeds the estimator and the inner split.
    alias : str or None
        The name it was asked for when that differs (``"svm-egemaps"``, ``"logreg"``).
    """

    name: str
    feature_set: str
    params: dict = field(default_factory=dict)
    tune: bool = False
    inner_folds: int = 3
    seed: int = 0
    alias: str | None = None

    @property
    def spec(self) -> ClassifierSpec:
        return get_classifier(self.name)

    @property
    def grid(self) -> dict[str, tuple]:
        return dict(self.spec.grid)

    def weighting(self) -> str:
        """How classes are balanced, in words."""
        return {
            "class_weight": "balanced (class_weight='balanced')",
            "sample_weight": "balanced (sample weights n / (n_classes * n_class) in fit)",
            "none": "none: kNN cannot weight classes or samples (a majority class can dominate a neighbourhood)",
        }[self.spec.weighting]

    def to_dict(self) -> dict:
        """JSON-ready description: name, feature set, estimator, weighting, scaling, scores, parameters or grid."""
        spec = self.spec
        data: dict[str, Any] = {
            "name": self.alias or self.name,
            "classifier": self.name,
            "feature_set": self.feature_set,
            "estimator": spec.estimator,
            "class_weight": self.weighting(),
            "scaling": SCALING,
            "scores": (
                "softmax of the one-vs-rest decision function (label: predict())"
                if spec.scores == "decision"
                else "predict_proba"
            ),
            "seed": self.seed,
            "tune": self.tune,
        }
        if self.tune:
            data.update(
                inner_folds=self.inner_folds,
                grid={k: [_jsonable(v) for v in vs] for k, vs in spec.grid.items()},
                fixed={
                    k: _jsonable(v)
                    for k, v in self.params.items()
                    if k not in spec.grid and f"{k}_scale" not in spec.grid
                },
                selection="inner speaker-disjoint k-fold on the training fold's speakers, by UAR; "
                "first best in grid order; refit on the whole training fold",
            )
        else:
            data.update({k: _jsonable(v) for k, v in self.params.items()})
        return data

    # -- fitting ------------------------------------------------------------

    def _fit(self, params: Mapping, X: np.ndarray, y: np.ndarray):
        estimator, resolved = self.spec.build(dict(params), seed=self.seed, n_features=X.shape[1])
        fit_kw = {}
        if self.spec.weighting == "sample_weight":
            import inspect

            from sklearn.utils.class_weight import compute_sample_weight

            if "sample_weight" not in inspect.signature(estimator.fit).parameters:
                raise ConfigError(
                    f"classifier {self.name!r} needs scikit-learn >= 1.7 (sample weights in "
                    "MLPClassifier.fit): pip install -U scikit-learn"
                )
            fit_kw["sample_weight"] = compute_sample_weight("balanced", y)
        with warnings.catch_warnings():
            from sklearn.exceptions import ConvergenceWarning

            warnings.simplefilter("ignore", ConvergenceWarning)  # iteration caps are part of the defaults
            estimator.fit(X, y, **fit_kw)
        return estimator, resolved

    def _scores(self, estimator, X: np.ndarray, n_classes: int) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``; a class absent from training gets 0."""
        known = np.asarray(estimator.classes_, dtype=np.int64)
        if self.spec.scores == "proba":
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

    def tune_on(self, X: np.ndarray, y: np.ndarray, speakers: np.ndarray) -> tuple[dict, float]:
        """Best grid point by inner speaker-disjoint k-fold over these (training) rows only.

        Parameters
        ----------
        X : np.ndarray [shape=(n, d)]
        y : np.ndarray [shape=(n,)], int
        speakers : np.ndarray [shape=(n,)]
            Speaker of each row: inner folds never split a speaker.

        Returns
        -------
        (dict, float)
            The chosen hyper-parameters and their mean inner UAR.
        """
        from emovox.evaluation.metrics import compute_metrics
        from emovox.evaluation.protocols import speaker_kfold

        n_speakers = len(set(speakers))
        if n_speakers < 2:
            raise ConfigError("tuning needs at least 2 training speakers per fold; drop --tune")
        inner = speaker_kfold(speakers, k=min(self.inner_folds, n_speakers), seed=self.seed, labels=y)
        # An inner training side with one class cannot be fitted (e.g. a target constant per speaker
        # and few speakers): such splits are left out, and all of them is a clear error.
        inner = [s for s in inner if len(np.unique(y[s.train_idx])) >= 2]
        if not inner:
            raise ConfigError(
                "tuning: every inner speaker split leaves a single class on its training side; "
                "add speakers or drop --tune"
            )
        classes = [str(i) for i in range(int(y.max()) + 1)]
        grid = self.spec.grid
        scaled = [impute_and_scale(X[s.train_idx], X[s.test_idx]) for s in inner]
        best: tuple[float, dict] = (-1.0, dict(self.params))
        for values in itertools.product(*grid.values()):
            point = {**self.params, **dict(zip(grid, values))}
            uars = []
            for split, (X_fit, X_val) in zip(inner, scaled):
                estimator, _ = self._fit(point, X_fit, y[split.train_idx])
                uars.append(compute_metrics(y[split.test_idx], estimator.predict(X_val), classes=classes)["uar"])
            score = float(np.mean(uars))
            if score > best[0] + 1e-12:
                best = (score, point)
        return best[1], best[0]

    def fit_predict(self, train: Any, test: Any):
        """Fit on ``train`` (a :class:`~emovox.evaluation.experiment.FoldData`), predict ``test``.

        Returns
        -------
        FoldOutput
            ``predicted`` class indices ``(n_test,)``, ``scores`` class
            probabilities ``(n_test, n_classes)`` and ``info``: the
            hyper-parameters used (with ``inner_uar`` and ``tuned`` when tuned).
        """
        from emovox.evaluation.folds import FoldOutput

        label = self.alias or self.name
        if train.X is None or test.X is None:
            raise ConfigError(f"{label} needs feature vectors: run it with a feature set (--features NAME)")
        y = np.asarray(train.y, dtype=np.int64)
        if len(np.unique(y)) < 2:
            raise ConfigError(f"{label}: the training fold holds a single class; a classifier needs at least 2")
        info: dict = {}
        params = dict(self.params)
        if self.tune:
            params, inner_uar = self.tune_on(np.asarray(train.X, dtype=np.float64), y, np.asarray(train.speakers))
            info["inner_uar"] = round(inner_uar, 4)
            info["tuned"] = {k: _jsonable(params[k]) for k in self.spec.grid}
        X_train, X_test = impute_and_scale(train.X, test.X)
        estimator, resolved = self._fit(params, X_train, y)
        info.update({k: _jsonable(v) for k, v in resolved.items()})
        if hasattr(estimator, "n_support_"):
            info["n_support"] = int(estimator.n_support_.sum())
        if hasattr(estimator, "n_iter_") and np.ndim(estimator.n_iter_) == 0:
            info["n_iter"] = int(estimator.n_iter_)
        return FoldOutput(
            predicted=np.asarray(estimator.predict(X_test), dtype=np.int64),
            scores=self._scores(estimator, X_test, len(train.classes)),
            info=info,
        )


def make_classifier(
    name: str, *, features: str | None = None, seed: int = 0, tune: bool = False, inner_folds: int = 3, **params: Any
) -> Classifier:
    """A classifier by name on a feature set.

    Parameters
    ----------
    name : str
        A :data:`CLASSIFIERS` name, an alias (``"logreg"``) or a legacy name
        (``"svm-egemaps"``, ``"svm-mfcc"``: ``svm-rbf`` on their own set).
    features : str, optional
        Feature set name; required except for the legacy names.
    seed : int
    tune : bool
    inner_folds : int
    **params
        Hyper-parameters overriding the defaults (unknown names raise).

    Raises
    ------
    ConfigError
        Unknown name, missing or conflicting feature set, unknown hyper-parameter.
    """
    alias = None
    if name in LEGACY_MODELS:
        classifier, own = LEGACY_MODELS[name]
        if features is not None and features != own:
            raise ConfigError(
                f"model {name!r} reads {own!r}; for {features!r} write --model {classifier} --features {features}"
            )
        alias, name, features = name, classifier, own
    elif name in ALIASES:
        alias, name = name, ALIASES[name]
    spec = get_classifier(name)
    if features is None:
        raise ConfigError(
            f"model {alias or name!r} needs a feature set: pass --features NAME "
            "(e.g. egemaps, compare, mfcc-functionals, whisper-base, file:PATH)"
        )
    unknown = sorted(set(params) - set(spec.defaults))
    if unknown:
        raise ConfigError(f"classifier {name!r} has no hyper-parameter(s) {unknown}; it has {sorted(spec.defaults)}")
    if isinstance(inner_folds, bool) or not isinstance(inner_folds, int) or inner_folds < 2:
        raise ConfigError(f"inner_folds={inner_folds!r} must be an integer >= 2")
    return Classifier(
        name=name,
        feature_set=features,
        params={**spec.defaults, **params},
        tune=tune,
        inner_folds=inner_folds,
        seed=seed,
        alias=alias,
    )
