"""One colour per emotion, for every picture emovox draws: the timeline PNG, the web page, reports.

The emotions take the Okabe-Ito palette (Okabe & Ito, *Color Universal
Design*, 2008), chosen so that the common forms of colour blindness still
tell them apart; the two emotions beyond its seven colours (``calm``,
``boredom``, in 8- and 9-class schemes) take two of Paul Tol's "muted"
colours, also chosen for colour-blind readers. The non-answers are greys of
clearly different lightness, and no emotion is grey, so ``neutral`` (sky
blue) is never confused with ``unknown`` (light grey). Simulated for
deuteranopia, protanopia and tritanopia (Machado et al. 2009, full
severity), any two of the twelve colours still differ by at least 13 CIELAB
units (``tests/test_result_schema.py``):

============  =========  ==================================================
label         colour     why
============  =========  ==================================================
neutral       #56B4E9    sky blue (Okabe-Ito)
calm          #999933    olive (Tol muted); merged into neutral by emovox7
happy         #E69F00    orange (Okabe-Ito)
sad           #0072B2    blue (Okabe-Ito)
angry         #D55E00    vermillion (Okabe-Ito)
fearful       #CC79A7    reddish purple (Okabe-Ito)
disgust       #009E73    bluish green (Okabe-Ito)
surprised     #F0E442    yellow (Okabe-Ito)
boredom       #882255    wine (Tol muted)
unknown       #BBBBBB    light grey: the model is not sure
mixed         #333333    dark grey: no emotion leads a recording
no_speech     #E6E6E6    pale grey: nothing to classify (plots leave it blank)
============  =========  ==================================================

A label outside this table (a user's own classes) gets one of
:data:`EXTRA_COLOURS`, picked by a stable hash of its name, so it keeps its
colour from run to run. The service publishes :func:`palette_for` of its
model in ``GET /v1/model`` (``palette``), so the page draws with these
colours too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from emovox.labels import MIXED, NO_SPEECH, UNKNOWN

__all__ = ["PALETTE", "EXTRA_COLOURS", "colour_of", "palette_for", "rgb"]

#: Label -> ``#RRGGBB`` (see the module docstring for the choice).
PALETTE: dict[str, str] = {
    "neutral": "#56B4E9",
    "calm": "#999933",
    "happy": "#E69F00",
    "sad": "#0072B2",
    "angry": "#D55E00",
    "fearful": "#CC79A7",
    "disgust": "#009E73",
    "surprised": "#F0E442",
    "boredom": "#882255",
    UNKNOWN: "#BBBBBB",
    MIXED: "#333333",
    NO_SPEECH: "#E6E6E6",
}

#: Colours for labels outside :data:`PALETTE` (Tol muted, the ones not used above).
EXTRA_COLOURS: tuple[str, ...] = ("#332288", "#88CCEE", "#117733", "#DDCC77", "#CC6677", "#AA4499", "#44AA99")


def colour_of(label: str) -> str:
    """The ``#RRGGBB`` colour of ``label``: :data:`PALETTE`, else a stable pick of :data:`EXTRA_COLOURS`."""
    if label in PALETTE:
        return PALETTE[label]
    digest = hashlib.sha256(str(label).encode("utf-8")).digest()
    return EXTRA_COLOURS[digest[0] % len(EXTRA_COLOURS)]


def palette_for(labels: Iterable[str]) -> dict[str, str]:
    """``{label: colour}`` for a model's classes, then ``unknown``, ``mixed`` and ``no_speech``."""
    out = {k: colour_of(k) for k in labels}
    for k in (UNKNOWN, MIXED, NO_SPEECH):
        out.setdefault(k, PALETTE[k])
    return out


def rgb(colour: str) -> tuple[float, float, float]:
    """``#RRGGBB`` as an ``(r, g, b)`` tuple in [0, 1] (what matplotlib takes)."""
    h = colour.lstrip("#")
    return tuple(int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]
