"""The workbench's per-fold models: a named classifier or regressor, refitted (and tuned) in every fold.

:func:`make_classifier` / :func:`make_regressor` turn a ``--model`` name into
an object the fold runner trains and tests (``name``, ``feature_set``,
``fit_predict(train, test) -> FoldOutput``, ``to_dict()``). The estimators
themselves, their hyper-parameter defaults and grids, the scaling and the
scores live in the models layer (:mod:`emovox.models.classifiers`,
:mod:`emovox.models.regressors`); what is here is the evaluation's part: the
fold's fit and prediction, and with ``tune=True`` the choice of
hyper-parameters by an inner speaker-disjoint k-fold over the fold's
*training speakers only* (classifiers: UAR; regressors: mean CCC; first best
in grid order), then a refit on the whole training fold. One code path
(:meth:`Classifier.tune_on`) serves every classifier.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emovox.errors import ConfigError
from emovox.models.classifiers import (
    ALIASES,
    LEGACY_MODELS,
    SCALING,
    ClassifierSpec,
    class_scores,
    fit_estimator,
    get_classifier,
    impute_and_scale,
)
from emovox.models.regressors import (
    REGRESSOR_ALIASES,
    REGRESSORS,
    RegressorKind,
    fit_predict_regressor,
    regressor_names,
)

__all__ = ["Classifier", "WorkbenchRegressor", "make_classifier", "make_regressor"]


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass
class Classifier:
    """A named classifier on a feature set, refitted per fold (see :mod:`emovox.models.classifiers`).

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
        return fit_estimator(self.spec, params, X, y, seed=self.seed)

    def _scores(self, estimator, X: np.ndarray, n_classes: int) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``; a class absent from training gets 0."""
        return class_scores(self.spec, estimator, X, n_classes)

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
        A :data:`~emovox.models.classifiers.CLASSIFIERS` name, an alias (``"logreg"``) or a legacy name
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


@dataclass
class WorkbenchRegressor:
    """A regressor family with fixed or tuned hyper-parameters, refitted per fold.

    Attributes
    ----------
    name : str
        Family name (see :data:`emovox.models.regressors.REGRESSORS`), or the alias it was asked by.
    kind : RegressorKind
    feature_set : str or None
        Feature set the runner extracts for ``X``.
    params : dict
        Hyper-parameters without ``tune`` (the family's defaults).
    tune : bool
        Pick hyper-parameters per fold by inner speaker-disjoint CV (CCC).
    inner_folds : int
        Folds of the inner CV (capped by the number of training speakers).
    seed : int
        Seeds the estimators and the inner split.
    """

    name: str
    kind: RegressorKind
    feature_set: str | None
    params: dict = field(default_factory=dict)
    tune: bool = False
    inner_folds: int = 3
    seed: int = 0

    def to_dict(self) -> dict:
        data: dict[str, Any] = {
            "name": self.name,
            "family": self.kind.name,
            "estimator": self.kind.estimator,
            "feature_set": self.feature_set,
            "task": "regression",
            "scaling": "features and target standardised on the training fold",
            "tune": self.tune,
            "params": dict(self.params),
        }
        if self.tune:
            data.update(
                inner_folds=self.inner_folds,
                grid={k: list(v) for k, v in self.kind.grid.items()},
                selection="inner speaker-disjoint k-fold on training speakers, by CCC",
            )
        return data

    def _fit_predict_arrays(self, X_train, y_train, X_test, params: Mapping[str, Any]) -> np.ndarray:
        return fit_predict_regressor(self.kind, params, X_train, y_train, X_test, seed=self.seed)

    def _tune(self, X: np.ndarray, y: np.ndarray, speakers: np.ndarray) -> tuple[float, dict]:
        from emovox.evaluation.protocols import speaker_kfold
        from emovox.evaluation.regression import target_bins
        from emovox.evaluation.regression_metrics import ccc

        n_speakers = len(set(speakers))
        if n_speakers < 2:
            raise ConfigError("tuning needs at least 2 training speakers per fold; drop --tune")
        inner = speaker_kfold(speakers, k=min(self.inner_folds, n_speakers), seed=self.seed, labels=target_bins(y))
        names = list(self.kind.grid)
        best: tuple[float, dict] = (-np.inf, dict(self.params))
        for values in itertools.product(*(self.kind.grid[n] for n in names)):
            params = {**self.params, **dict(zip(names, values))}
            scores = [
                ccc(y[s.test_idx], self._fit_predict_arrays(X[s.train_idx], y[s.train_idx], X[s.test_idx], params))
                for s in inner
            ]
            score = float(np.mean(scores))
            if score > best[0] + 1e-12:
                best = (score, params)
        return best

    def fit_predict(self, train: Any, test: Any):
        """Fit on ``train``, predict ``test`` (both :class:`~emovox.evaluation.experiment.FoldData`).

        ``train.y`` holds the numeric target ``(n_train,)`` in its own unit.

        Returns
        -------
        FoldOutput
            ``predicted`` float64 ``(n_test,)`` in the target's unit; ``info``
            holds the hyper-parameters used (and the inner CCC when tuned).
        """
        from emovox.evaluation.folds import FoldOutput

        if train.X is None or test.X is None:
            raise ConfigError(f"{self.name} needs feature vectors: give a feature set (--features NAME)")
        X = np.asarray(train.X, dtype=np.float64)
        y = np.asarray(train.y, dtype=np.float64)
        info: dict = {}
        params = dict(self.params)
        if self.tune:
            inner_ccc, params = self._tune(X, y, np.asarray(train.speakers))
            info["inner_ccc"] = round(inner_ccc, 4)
        predicted = self._fit_predict_arrays(X, y, test.X, params)
        info["params"] = {k: params[k] for k in self.kind.grid} if self.tune else dict(params)
        return FoldOutput(predicted=predicted, info=info)


def make_regressor(
    name: str, *, features: str | None = None, seed: int = 0, tune: bool = False, **params: Any
) -> WorkbenchRegressor:
    """A workbench regressor by model name.

    Parameters
    ----------
    name : str
        A family (``linear``, ``svm-linear``, ``svm-rbf``, ``mlp``, ``gbt``,
        ``rf``, ``knn``) or an alias (``logreg``, ``svm-egemaps``, ``svm-mfcc``).
    features : str or None
        Feature set; ``None``: the alias's own (``svm-egemaps`` -> ``egemaps``).
    seed : int
    tune : bool
    **params
        Hyper-parameters overriding the family's defaults.

    Raises
    ------
    ConfigError
        Unknown name (the message lists the known ones), an unknown parameter,
        or a family without a feature set of its own and no ``features``.
    """
    family, own = REGRESSOR_ALIASES.get(name, (name, None))
    if own is not None and features is not None and features != own:
        raise ConfigError(
            f"model {name!r} reads {own!r}; for {features!r} write --model {family} --features {features}"
        )
    if family not in REGRESSORS.names():
        raise ConfigError(
            f"unknown model {name!r} for a numeric target: expected one of {', '.join(regressor_names())}"
        )
    kind = REGRESSORS.get(family)
    unknown = sorted(set(params) - set(kind.defaults))
    if unknown:
        raise ConfigError(
            f"regressor {family!r} has no parameter(s) {unknown}; its parameters are {sorted(kind.defaults)}"
        )
    feature_set = features or own
    if feature_set is None:
        raise ConfigError(
            f"model {name!r} needs a feature set: pass --features NAME "
            "(e.g. egemaps, compare, mfcc-functionals, whisper-base, file:PATH)"
        )
    return WorkbenchRegressor(
        name=name, kind=kind, feature_set=feature_set, params={**kind.defaults, **params}, tune=tune, seed=seed
    )
