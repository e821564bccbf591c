"""Workbench regressors: numeric targets (intensity, arousal, valence, …) from feature vectors.

The names are those of the workbench classifiers, so ``--model NAME`` means
the same family whatever the target:

=============  ==============================================  ===========================
name           estimator (scikit-learn)                        ``tune`` grid
=============  ==============================================  ===========================
``linear``     ``Ridge`` (alias ``logreg``)                    alpha
``svm-linear`` ``SVR(kernel="linear")``                        C
``svm-rbf``    ``SVR(kernel="rbf")``                           C × gamma (multiples of 1/d)
``mlp``        ``MLPRegressor`` (one hidden layer of 128)      alpha
``gbt``        ``HistGradientBoostingRegressor``               learning rate × leaf nodes
``rf``         ``RandomForestRegressor`` (200 trees)           min samples per leaf × max features
``knn``        ``KNeighborsRegressor``                         neighbours
=============  ==============================================  ===========================

``svm-egemaps`` and ``svm-mfcc`` stay aliases of ``svm-rbf`` on ``egemaps`` /
``mfcc-functionals``.

Per fold, on the training side only:

1. non-finite feature values are replaced by the training mean of that feature;
2. features are standardised with statistics of the training fold;
3. the target is standardised with the training fold's mean and std (so SVR's
   ``epsilon`` and the MLP's scale mean the same for every target); predictions
   are mapped back to the target's unit.

With ``tune=True`` each fold picks its hyper-parameters from the grid by an
inner speaker-disjoint k-fold over its training speakers (criterion: mean CCC
over the inner folds), then refits on the whole training fold. Nothing is
chosen by looking at test speakers. Fitted models are not saved (nothing here
pickles anything).
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
    "REGRESSORS",
    "REGRESSOR_ALIASES",
    "RegressorKind",
    "WorkbenchRegressor",
    "make_regressor",
    "regressor_names",
]


@dataclass(frozen=True)
class RegressorKind:
    """One regressor family.

    Attributes
    ----------
    name : str
    estimator : str
        The scikit-learn estimator, for reports.
    build : callable
        ``build(params, seed, n_features) -> estimator`` (unfitted).
    defaults : mapping
        Hyper-parameters used without ``tune``.
    grid : mapping
        Hyper-parameter -> candidate values searched with ``tune``.
    """

    name: str
    estimator: str
    build: Callable[[Mapping[str, Any], int, int], Any] = field(repr=False)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, tuple] = field(default_factory=dict)


def _ridge(p, seed, d):
    from sklearn.linear_model import Ridge

    return Ridge(alpha=p["alpha"])


def _svr_linear(p, seed, d):
    from sklearn.svm import SVR

    return SVR(kernel="linear", C=p["C"], epsilon=p["epsilon"])


def _svr_rbf(p, seed, d):
    from sklearn.svm import SVR

    return SVR(kernel="rbf", C=p["C"], gamma=p["gamma_scale"] / max(d, 1), epsilon=p["epsilon"])


def _mlp(p, seed, d):
    from sklearn.neural_network import MLPRegressor

    return MLPRegressor(hidden_layer_sizes=(p["hidden"],), alpha=p["alpha"], max_iter=p["max_iter"], random_state=seed)


def _gbt(p, seed, d):
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        learning_rate=p["learning_rate"], max_leaf_nodes=p["max_leaf_nodes"], max_iter=p["max_iter"], random_state=seed
    )


def _rf(p, seed, d):
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(
        n_estimators=p["n_estimators"],
        min_samples_leaf=p["min_samples_leaf"],
        max_features=p["max_features"],
        random_state=seed,
        n_jobs=1,
    )


def _knn(p, seed, d):
    from sklearn.neighbors import KNeighborsRegressor

    return KNeighborsRegressor(n_neighbors=p["n_neighbors"], weights="distance")


_REGRESSORS: dict[str, RegressorKind] = {}

#: Regressor families by name; unknown names raise :class:`ConfigError` listing the known ones.
REGRESSORS = Registry("regressor", lookup_error=ConfigError, modules=(), entries=lambda: _REGRESSORS)

for _kind in (
    RegressorKind("linear", "Ridge", _ridge, {"alpha": 1.0}, {"alpha": (0.1, 1.0, 10.0, 100.0, 1000.0)}),
    RegressorKind(
        "svm-linear", "SVR(kernel='linear')", _svr_linear, {"C": 0.1, "epsilon": 0.1}, {"C": (0.01, 0.1, 1.0)}
    ),
    RegressorKind(
        "svm-rbf",
        "SVR(kernel='rbf')",
        _svr_rbf,
        {"C": 1.0, "gamma_scale": 1.0, "epsilon": 0.1},
        {"C": (0.1, 1.0, 10.0), "gamma_scale": (0.25, 1.0, 4.0)},
    ),
    RegressorKind(
        "mlp", "MLPRegressor", _mlp, {"hidden": 128, "alpha": 1e-2, "max_iter": 400}, {"alpha": (1e-4, 1e-2, 1.0)}
    ),
    RegressorKind(
        "gbt",
        "HistGradientBoostingRegressor",
        _gbt,
        {"learning_rate": 0.1, "max_leaf_nodes": 31, "max_iter": 200},
        {"learning_rate": (0.05, 0.1), "max_leaf_nodes": (15, 31)},
    ),
    RegressorKind(
        "rf",
        "RandomForestRegressor",
        _rf,
        {"n_estimators": 200, "min_samples_leaf": 1, "max_features": 1.0},
        {"min_samples_leaf": (1, 5), "max_features": (1.0, "sqrt")},
    ),
    RegressorKind(
        "knn", "KNeighborsRegressor(weights='distance')", _knn, {"n_neighbors": 10}, {"n_neighbors": (5, 10, 20)}
    ),
):
    REGRESSORS.register(_kind.name, _kind)

#: Other model names -> (regressor family, its own feature set or None).
REGRESSOR_ALIASES: dict[str, tuple[str, str | None]] = {
    "logreg": ("linear", None),
    "svm-egemaps": ("svm-rbf", "egemaps"),
    "svm-mfcc": ("svm-rbf", "mfcc-functionals"),
}


def regressor_names() -> list[str]:
    """Every name ``--model`` accepts for a numeric target (families, then aliases)."""
    return [*REGRESSORS.names(), *sorted(REGRESSOR_ALIASES)]


@dataclass
class WorkbenchRegressor:
    """A regressor family with fixed or tuned hyper-parameters, refitted per fold.

    Attributes
    ----------
    name : str
        Family name (see :data:`REGRESSORS`), or the alias it was asked by.
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
        from emovox.models.classifiers import impute_and_scale

        X_fit, X_out = impute_and_scale(X_train, X_test)
        y = np.asarray(y_train, dtype=np.float64)
        centre, spread = float(y.mean()), float(y.std())
        spread = spread if spread > 1e-12 else 1.0
        model = self.kind.build(params, self.seed, X_fit.shape[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLP / SVR convergence warnings: the fit is still used
            model.fit(X_fit, (y - centre) / spread)
            return np.asarray(model.predict(X_out), dtype=np.float64) * spread + centre

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
    if family not in _REGRESSORS:
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
