"""Standard scaling fitted on training data only, serialisable to JSON.

Fit :class:`StandardScaler` on the training rows of a split and apply it to
the test rows: test statistics never leak into the model. ``to_dict()`` gives
plain lists (JSON, model artifacts); there is no pickle.
"""

from __future__ import annotations

import numpy as np

from emovox.errors import ConfigError, FeatureError

_FORMAT = "emovox.StandardScaler/1"


class StandardScaler:
    """``(X - mean) / scale`` per column, like scikit-learn's, without pickle.

    Columns with zero variance get ``scale = 1`` (they become 0, not NaN).

    Attributes
    ----------
    mean_ : np.ndarray [shape=(d,)], float64
    scale_ : np.ndarray [shape=(d,)], float64
        Population standard deviation per column (1 where it is 0).
    n_samples_seen_ : int
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.n_samples_seen_: int = 0

    @property
    def is_fitted(self) -> bool:
        return self.mean_ is not None

    def fit(self, x: np.ndarray) -> StandardScaler:
        """Learn column means and standard deviations from ``x`` ``(n, d)`` (training rows only)."""
        x = _check_matrix(x, "fit")
        if x.shape[0] == 0:
            raise FeatureError("cannot fit a scaler on 0 rows; pass the training features, shape (n, d) with n >= 1")
        self.mean_ = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        self.n_samples_seen_ = int(x.shape[0])
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Scale ``x`` ``(n, d)`` with the fitted statistics; returns float32 ``(n, d)``."""
        mean, scale = self._check_fitted()
        x = _check_matrix(x, "transform")
        if x.shape[1] != mean.shape[0]:
            raise FeatureError(
                f"features have {x.shape[1]} columns, the scaler was fitted on {mean.shape[0]}; "
                "use the same feature set for training and prediction"
            )
        return ((x - mean) / scale).astype(np.float32)

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        """:meth:`fit` then :meth:`transform` on the same (training) rows."""
        return self.fit(x).transform(x)

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform`."""
        mean, scale = self._check_fitted()
        z = _check_matrix(z, "inverse_transform")
        return (z * scale + mean).astype(np.float32)

    def to_dict(self) -> dict:
        """JSON-able state: ``{"format", "mean", "scale", "n_samples_seen"}``."""
        mean, scale = self._check_fitted()
        return {
            "format": _FORMAT,
            "mean": mean.tolist(),
            "scale": scale.tolist(),
            "n_samples_seen": self.n_samples_seen_,
        }

    @classmethod
    def from_dict(cls, data: dict) -> StandardScaler:
        """Rebuild a fitted scaler from :meth:`to_dict` output."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ConfigError(f"not a saved StandardScaler (format {got!r}, expected {_FORMAT!r})")
        try:
            mean = np.asarray(data["mean"], dtype=np.float64)
            scale = np.asarray(data["scale"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(
                f"saved StandardScaler lacks valid 'mean'/'scale' lists ({error}); re-fit the scaler"
            ) from None
        if mean.ndim != 1 or mean.shape != scale.shape or not np.all(np.isfinite(mean)) or not np.all(scale > 0):
            raise ConfigError(
                "saved StandardScaler has inconsistent or invalid 'mean'/'scale' lists; re-fit the scaler"
            )
        out = cls()
        out.mean_, out.scale_ = mean, scale
        out.n_samples_seen_ = int(data.get("n_samples_seen", 0))
        return out

    def _check_fitted(self) -> tuple[np.ndarray, np.ndarray]:
        """The fitted ``(mean_, scale_)``; raises when not fitted (both are set together)."""
        if self.mean_ is None or self.scale_ is None:
            raise FeatureError("StandardScaler is not fitted; call fit(X_train) first")
        return self.mean_, self.scale_

    def __repr__(self) -> str:
        d = "unfitted" if self.mean_ is None else f"d={self.mean_.shape[0]}, n={self.n_samples_seen_}"
        return f"StandardScaler({d})"


def _check_matrix(x: np.ndarray, where: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise FeatureError(f"{where} expects a matrix of shape (n, d), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise FeatureError(f"{where} got NaN or infinite features; check the feature extraction")
    return x
