"""Column names of a feature set, and the low-level descriptor (LLD) each column summarises.

:func:`feature_names` names every column of a feature set's vector, in the
order the extractor returns them:

``"egemaps"`` / ``"compare*"``
    openSMILE's own names (``Smile(...).feature_names``), e.g.
    ``"F0semitoneFrom27.5Hz_sma3nz_amean"``; needs the opensmile extra.
``"mfcc-functionals"``, ``"classic"``
    ``"<row>_<stat>"`` from the frame rows × the functionals, statistic by
    statistic (:func:`emovox.features.functionals.functional_names`): rows
    ``mfcc_0 … mfcc_39``, ``d_mfcc_0 …`` (Δ), ``dd_mfcc_0 …`` (ΔΔ); the
    ``classic`` set has ``mfcc_0 … mfcc_39`` (no deltas), ``zcr``, ``rms``,
    ``chroma_0 … chroma_11`` and ``contrast_0 … contrast_6``.
``"file:PATH"``
    the file's own column names.
any other set
    ``f0 … f{d-1}``.

:func:`feature_groups` maps each column to its LLD, so very wide sets (ComParE's
6373 functionals) can be studied per descriptor: every functional of
``F0final_sma`` together, every functional of ``mfcc_sma[3]`` together.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from emovox.errors import ConfigError
from emovox.features.functionals import DEFAULT_STATS, check_stats, functional_names

__all__ = ["feature_groups", "feature_names", "generic_names"]

#: openSMILE descriptor of a functional's name: everything up to the smoothing
#: (``_sma``, ``_sma3``, ``_sma3nz``), its delta (``_de``) and band index (``[3]``).
_OPENSMILE_LLD = re.compile(r"^(.*?_sma\d*(?:nz)?(?:_de)?(?:\[\d+\])?)_")


def generic_names(d: int) -> list[str]:
    """``["f0", "f1", …, "f{d-1}"]`` for a set without names."""
    return [f"f{i}" for i in range(int(d))]


def _opensmile_names(feature_set: str) -> list[str]:
    """openSMILE's names of ``egemaps`` or ``compare`` (a FeatureError with the install hint when it is missing)."""
    if feature_set == "egemaps":
        from emovox.features.egemaps import egemaps_names

        return egemaps_names()
    from emovox.features.compare import compare_names

    return compare_names()


def _frame_rows(feature_set: str, params: dict) -> list[str]:
    n_mfcc = int(params.get("n_mfcc", 40))
    mfcc = [f"mfcc_{i}" for i in range(n_mfcc)]
    if feature_set == "classic":  # MFCC without deltas, then ZCR, RMS, chroma, contrast
        return mfcc + ["zcr", "rms"] + [f"chroma_{i}" for i in range(12)] + [f"contrast_{i}" for i in range(7)]
    return mfcc + [f"d_{m}" for m in mfcc] + [f"dd_{m}" for m in mfcc]


def feature_names(feature_set: str | object, d: int | None = None) -> list[str]:
    """Name of every column of ``feature_set``'s vectors.

    Parameters
    ----------
    feature_set : str or FeatureSet
        A registered name or a :class:`~emovox.features.FeatureSet` (its
        ``params`` give the MFCC count and statistics).
    d : int, optional
        Width of the actual vectors. When given and the known names do not
        have that length (a variant or a user's set), ``f0 … f{d-1}`` are
        returned instead.

    Returns
    -------
    list of str [shape=(d,)]
    """
    name = getattr(feature_set, "name", feature_set)
    params = dict(getattr(feature_set, "params", {}) or {})
    if not isinstance(name, str):
        raise ConfigError(f"expected a feature set name, got {type(feature_set).__name__}")
    columns = tuple(getattr(feature_set, "columns", ()) or ())
    if columns:  # a user's features file (file:PATH) names its own columns
        names = [str(c) for c in columns]
    elif name == "egemaps" or name.startswith("compare"):
        names = _opensmile_names(name)
    elif name in ("mfcc-functionals", "classic"):
        if not params:
            from emovox.features.registry import FEATURE_SETS

            params = dict(getattr(FEATURE_SETS.get(name), "params", {}) or {})
        stats = check_stats(params.get("stats", DEFAULT_STATS))
        names = functional_names(_frame_rows(name, params), stats=stats)
    else:
        if d is None:
            raise ConfigError(f"feature set {name!r} has no known column names; give its width d")
        return generic_names(d)
    if d is not None and len(names) != int(d):
        return generic_names(d)
    return names


def feature_groups(names: Sequence[str]) -> list[str]:
    """The low-level descriptor each column summarises, one per name.

    openSMILE names group by descriptor (``"F0semitoneFrom27.5Hz_sma3nz_amean"``
    → ``"F0semitoneFrom27.5Hz_sma3nz"``, ``"mfcc_sma_de[3]_lpc0"`` →
    ``"mfcc_sma_de[3]"``); functional names ``"<row>_<stat>"`` group by row
    (``"d_mfcc_3_p90"`` → ``"d_mfcc_3"``); anything else is its own group.

    Returns
    -------
    list of str [shape=(len(names),)]
    """
    stat = re.compile(r"_(mean|std|min|max|range|slope|p\d{1,3})$")
    groups = []
    for n in names:
        match = _OPENSMILE_LLD.match(n)
        if match:
            groups.append(match.group(1))
        elif stat.search(n):
            groups.append(stat.sub("", n))
        else:
            groups.append(n)
    return groups
