"""Classical baselines: utterance-level functionals + RBF support-vector machine.

``svm-egemaps``
    The 88 eGeMAPS v02 functionals (openSMILE) + RBF-SVM: the reference
    baseline of the speech-emotion literature.
``svm-mfcc``
    MFCC functionals (the features layer's ``"mfcc-functionals"``) + RBF-SVM.

Per fold, on the training side only:

1. non-finite feature values are replaced by the training mean of that
   feature (a guard for arrays given directly to ``fit_predict``: the features
   layer itself raises :class:`~emovox.errors.FeatureError` on non-finite
   values, so features it computed never need it);
2. a :class:`emovox.features.StandardScaler` is fitted on the training fold
   and applied to both sides (normalisation statistics never see a test
   speaker);
3. an RBF ``sklearn.svm.SVC`` with ``class_weight="balanced"`` is fitted.

Hyper-parameters
----------------
By default ``C = 1`` and ``gamma = "scale"`` (= 1 / (d · Var(X)), i.e. 1/d on
standardised features) are fixed: nothing is chosen by looking at test
speakers. With ``tune=True`` each fold picks ``(C, gamma)`` from a small grid
by an inner speaker-disjoint k-fold over its *training speakers only*
(UAR criterion), then refits on the whole training fold; the choice is
recorded per fold in the result.

The fitted SVM is not saved: these baselines exist to be evaluated. Nothing
here pickles anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emovox.errors import ConfigError

__all__ = ["CLASSICAL_MODELS", "SvmBaseline", "make_classical"]

#: Baseline name -> feature set of :mod:`emovox.features`.
CLASSICAL_MODELS: dict[str, str] = {
    "svm-egemaps": "egemaps",
    "svm-mfcc": "mfcc-functionals",
}

#: Grid of the inner search (gamma as a multiple of 1/d on standardised features).
C_GRID: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
GAMMA_SCALE_GRID: tuple[float, ...] = (0.25, 1.0, 4.0)


def _impute_and_scale(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    as64 = lambda X: np.asarray(scaler.transform(X), dtype=np.float64)  # noqa: E731
    return as64(X_train), as64(X_test)


def _fit_svc(X: np.ndarray, y: np.ndarray, *, C: float, gamma: float | str):
    from sklearn.svm import SVC

    return SVC(kernel="rbf", C=C, gamma=gamma, class_weight="balanced").fit(X, y)


@dataclass
class SvmBaseline:
    """Functionals + standard scaling + balanced RBF-SVM, refitted per fold.

    Attributes
    ----------
    name : str
        ``"svm-egemaps"`` or ``"svm-mfcc"``.
    feature_set : str
        Feature set the runner extracts for ``X``.
    C : float
        SVM regularisation (ignored when ``tune``).
    gamma : float or "scale"
        RBF width (ignored when ``tune``).
    tune : bool
        Pick ``C`` and ``gamma`` per fold by inner speaker-disjoint CV.
    inner_folds : int
        Folds of the inner CV (capped by the number of training speakers).
    seed : int
        Seeds the inner split.
    """

    name: str
    feature_set: str
    C: float = 1.0
    gamma: float | str = "scale"
    tune: bool = False
    inner_folds: int = 3
    seed: int = 0
    c_grid: tuple[float, ...] = field(default=C_GRID)
    gamma_scale_grid: tuple[float, ...] = field(default=GAMMA_SCALE_GRID)

    def to_dict(self) -> dict:
        data = {"name": self.name, "feature_set": self.feature_set, "kernel": "rbf",
                "class_weight": "balanced", "scaling": "StandardScaler fitted on the training fold",
                "tune": self.tune}
        if self.tune:
            data.update(inner_folds=self.inner_folds, c_grid=list(self.c_grid),
                        gamma_grid=[f"{g}/d" for g in self.gamma_scale_grid],
                        selection="inner speaker-disjoint k-fold on training speakers, by UAR")
        else:
            data.update(C=self.C, gamma=self.gamma)
        return data

    def _tune(self, X: np.ndarray, y: np.ndarray, speakers: np.ndarray) -> tuple[float, float, float]:
        from emovox.evaluation.metrics import compute_metrics
        from emovox.evaluation.protocols import speaker_kfold

        n_speakers = len(set(speakers))
        if n_speakers < 2:
            raise ConfigError("tuning needs at least 2 training speakers per fold; drop --tune")
        inner = speaker_kfold(speakers, k=min(self.inner_folds, n_speakers), seed=self.seed, labels=y)
        classes = [str(i) for i in range(int(y.max()) + 1)]
        d = X.shape[1]
        best = (-1.0, self.C, 1.0 / d)
        for C in self.c_grid:
            for scale in self.gamma_scale_grid:
                gamma = scale / d
                uars = []
                for split in inner:
                    X_fit, X_val = _impute_and_scale(X[split.train_idx], X[split.test_idx])
                    pred = _fit_svc(X_fit, y[split.train_idx], C=C, gamma=gamma).predict(X_val)
                    uars.append(compute_metrics(y[split.test_idx], pred, classes=classes)["uar"])
                score = float(np.mean(uars))
                if score > best[0] + 1e-12:
                    best = (score, C, gamma)
        return best

    def fit_predict(self, train: Any, test: Any):
        """Fit on ``train`` (a :class:`~emovox.evaluation.experiment.FoldData`), predict ``test``.

        Returns
        -------
        FoldOutput
            Predicted class indices ``(n_test,)``; ``info`` holds ``C``,
            ``gamma`` (and the inner UAR when tuned).
        """
        from emovox.evaluation.experiment import FoldOutput

        if train.X is None or test.X is None:
            raise ConfigError(f"{self.name} needs feature vectors: run it with feature_set {self.feature_set!r}")
        y = np.asarray(train.y, dtype=np.int64)
        if len(np.unique(y)) < 2:
            raise ConfigError(f"{self.name}: the training fold holds a single class; an SVM needs at least 2")
        info: dict = {}
        C, gamma = self.C, self.gamma
        if self.tune:
            inner_uar, C, gamma = self._tune(np.asarray(train.X, dtype=np.float64), y, np.asarray(train.speakers))
            info["inner_uar"] = round(inner_uar, 4)
        X_train, X_test = _impute_and_scale(train.X, test.X)
        model = _fit_svc(X_train, y, C=C, gamma=gamma)
        info.update(C=C, gamma=gamma, n_support=int(model.n_support_.sum()))
        return FoldOutput(predicted=model.predict(X_test).astype(np.int64), info=info)


def make_classical(name: str, *, seed: int = 0, tune: bool = False, **options) -> SvmBaseline:
    """A classical baseline by name (see :data:`CLASSICAL_MODELS`)."""
    if name not in CLASSICAL_MODELS:
        raise ConfigError(f"unknown classical model {name!r}: expected one of {', '.join(CLASSICAL_MODELS)}")
    return SvmBaseline(name=name, feature_set=CLASSICAL_MODELS[name], seed=seed, tune=tune, **options)
