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

The workbench wrapper that refits one per fold (and tunes it) is
:class:`emovox.evaluation.workbench_models.WorkbenchRegressor`
(:func:`~emovox.evaluation.workbench_models.make_regressor`).

Per fold, on the training side only (:func:`fit_predict_regressor`):

1. non-finite feature values are replaced by the training mean of that feature;
2. features are standardised with statistics of the training fold;
3. the target is standardised with the training fold's mean and std (so SVR's
   ``epsilon`` and the MLP's scale mean the same for every target); predictions
   are mapped back to the target's unit.

With ``tune=True`` each fold picks its hyper-parameters from the family's
``grid`` by an inner speaker-disjoint k-fold over its training speakers
(criterion: mean CCC over the inner folds; in the evaluation layer), then
refits on the whole training fold. Nothing is chosen by looking at test
speakers. Fitted models are not saved (nothing here pickles anything).
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
    "REGRESSORS",
    "REGRESSOR_ALIASES",
    "RegressorKind",
    "fit_predict_regressor",
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


def fit_predict_regressor(
    kind: RegressorKind,
    params: Mapping[str, Any],
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    *,
    seed: int,
) -> np.ndarray:
    """Fit ``kind`` with ``params`` on the training rows and predict the test rows, in the target's unit.

    Features: non-finite values -> training mean, standardised on the training
    rows (:func:`~emovox.models.classifiers.impute_and_scale`); the target is
    standardised with the training mean and std and predictions are mapped back.

    Parameters
    ----------
    kind : RegressorKind
    params : mapping
        Hyper-parameters (the family's defaults, overridden or tuned).
    X_train : np.ndarray [shape=(n_train, d)]
    y_train : np.ndarray [shape=(n_train,)]
    X_test : np.ndarray [shape=(n_test, d)]
    seed : int

    Returns
    -------
    np.ndarray [shape=(n_test,)], float64
    """
    from emovox.models.classifiers import impute_and_scale

    X_fit, X_out = impute_and_scale(X_train, X_test)
    y = np.asarray(y_train, dtype=np.float64)
    centre, spread = float(y.mean()), float(y.std())
    spread = spread if spread > 1e-12 else 1.0
    model = kind.build(params, seed, X_fit.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLP / SVR convergence warnings: the fit is still used
        model.fit(X_fit, (y - centre) / spread)
        return np.asarray(model.predict(X_out), dtype=np.float64) * spread + centre
