"""eGeMAPS v02 functionals (88 values) through openSMILE — an optional extra.

Needs the ``opensmile`` package (``pip install "emovox[egemaps]"``); it is
imported on first use, and a missing install raises
:class:`~emovox.errors.FeatureError` with that hint.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from emovox.errors import FeatureError
from emovox.features.checks import check_finite, check_signal

N_EGEMAPS = 88
INSTALL_HINT = 'eGeMAPS needs the optional openSMILE package; install it with: pip install "emovox[egemaps]"'
MIN_DURATION_S = 0.1


def _opensmile():
    try:
        import opensmile
    except ImportError as exc:
        raise FeatureError(INSTALL_HINT) from exc
    return opensmile


@lru_cache(maxsize=1)
def _smile():
    opensmile = _opensmile()
    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.Functionals,
    )


def opensmile_version() -> str:
    """Version of the installed opensmile package (part of the cache key)."""
    return str(_opensmile().__version__)


def egemaps_names() -> list[str]:
    """The 88 eGeMAPS v02 functional names, in output order."""
    return list(_smile().feature_names)


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
    y = check_signal(y, sample_rate_hz, what="feature set 'egemaps'")
    check_signal(y, sample_rate_hz, min_samples=int(np.ceil(MIN_DURATION_S * sample_rate_hz)),
                 what=f"feature set 'egemaps' ({MIN_DURATION_S} s)")
    smile = _smile()
    values = smile.process_signal(y, int(sample_rate_hz)).to_numpy(dtype=np.float64)
    if values.shape != (1, N_EGEMAPS):
        raise FeatureError(f"openSMILE returned shape {values.shape}, expected (1, {N_EGEMAPS}); check the opensmile version")
    return check_finite(values[0].astype(np.float32), "eGeMAPS (openSMILE)")
