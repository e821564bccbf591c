"""ComParE 2016 functionals (6,373 values) through openSMILE — an optional extra.

The large brute-force set of the Interspeech ComParE challenges (2016
configuration): 65 low-level descriptors and their deltas, each summarised by
many functionals. Needs the ``opensmile`` package (``pip install
"emovox[egemaps]"``), imported on first use; a missing install raises
:class:`~emovox.errors.FeatureError` with that hint. About 0.2 s of one CPU
core per 3 s clip (ten times eGeMAPS).
"""

from __future__ import annotations

import numpy as np

from emovox.features.egemaps import opensmile_functionals, smile

N_COMPARE = 6373
_SET, _WHAT = "ComParE_2016", "ComParE 2016"


def compare_names() -> list[str]:
    """The 6,373 ComParE 2016 functional names, in output order."""
    return list(smile(_SET, _WHAT).feature_names)


def compare(y: np.ndarray, *, sample_rate_hz: int) -> np.ndarray:
    """ComParE 2016 functionals of one clip.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono float waveform, at least 0.1 s long.
    sample_rate_hz : int
        Its sample rate in Hz.

    Returns
    -------
    np.ndarray [shape=(6373,)], float32

    Raises
    ------
    FeatureError
        openSMILE is not installed, the clip is too short, or openSMILE
        returns non-finite values.
    """
    return opensmile_functionals(y, sample_rate_hz, feature_set=_SET, n_values=N_COMPARE, name="compare", what=_WHAT)
