"""openSMILE functionals — eGeMAPS v02 (88 values) here, ComParE 2016 in :mod:`.compare` — an optional extra.

Needs the ``opensmile`` package (``pip install "emovox[egemaps]"``); it is
imported on first use, and a missing install raises
:class:`~emovox.errors.FeatureError` with that hint.
:func:`opensmile_functionals` is the one call both feature sets go through.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from emovox.errors import FeatureError
from emovox.features.checks import check_finite, check_signal

if TYPE_CHECKING:
    import opensmile

N_EGEMAPS = 88
INSTALL_HINT = '{what} needs the optional openSMILE package; install it with: pip install "emovox[egemaps]"'
MIN_DURATION_S = 0.1


def _opensmile(what: str = "eGeMAPS") -> ModuleType:
    try:
        import opensmile
    except ImportError as exc:
        raise FeatureError(INSTALL_HINT.format(what=what)) from exc
    return opensmile


@cache
def smile(feature_set: str = "eGeMAPSv02", what: str = "eGeMAPS") -> opensmile.Smile:
    """The openSMILE extractor of a ``opensmile.FeatureSet`` name, at the functionals level (built once)."""
    opensmile = _opensmile(what)
    return opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, feature_set),
        feature_level=opensmile.FeatureLevel.Functionals,
    )


def opensmile_functionals(
    y: np.ndarray, sample_rate_hz: int, *, feature_set: str, n_values: int, name: str, what: str
) -> np.ndarray:
    """Functionals ``(n_values,)`` float32 of one clip by an openSMILE feature set.

    ``name`` is emovox's feature-set name and ``what`` the set's display name,
    both for messages. Raises :class:`FeatureError` when openSMILE is missing,
    the clip is shorter than :data:`MIN_DURATION_S`, or a value is not finite.
    """
    y = check_signal(y, sample_rate_hz, what=f"feature set {name!r}")
    check_signal(
        y,
        sample_rate_hz,
        min_samples=int(np.ceil(MIN_DURATION_S * sample_rate_hz)),
        what=f"feature set {name!r} ({MIN_DURATION_S} s)",
    )
    values = smile(feature_set, what).process_signal(y, int(sample_rate_hz)).to_numpy(dtype=np.float64)
    if values.shape != (1, n_values):
        raise FeatureError(
            f"openSMILE returned shape {values.shape}, expected (1, {n_values}); check the opensmile version"
        )
    return check_finite(values[0].astype(np.float32), f"{what} (openSMILE)")


def opensmile_version() -> str:
    """Version of the installed opensmile package (part of the cache key)."""
    return str(_opensmile().__version__)


def egemaps_names() -> list[str]:
    """The 88 eGeMAPS v02 functional names, in output order."""
    return list(smile().feature_names)


def egemaps(y: np.ndarray, *, sample_rate_hz: int) -> np.ndarray:
    """eGeMAPS v02 functionals of one clip.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono float waveform, at least 0.1 s long.
    sample_rate_hz : int
        Its sample rate in Hz.

    Returns
    -------
    np.ndarray [shape=(88,)], float32

    Raises
    ------
    FeatureError
        openSMILE is not installed, the clip is too short, or openSMILE
        returns non-finite values.
    """
    return opensmile_functionals(
        y, sample_rate_hz, feature_set="eGeMAPSv02", n_values=N_EGEMAPS, name="egemaps", what="eGeMAPS"
    )
