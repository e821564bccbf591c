"""Non-speech sets: inputs on which an emotion model must answer ``no_speech``.

Users' recordings hold tones, music, noise, hum, clicks and silence between
the speech; a clip of those must never get an emotion. :func:`nonspeech_set`
renders a reproducible set from the generators of :mod:`emovox.augment.synth`
at random lengths (including very short clips of 0.05-0.5 s) and levels, a
share of them sent through a telephone channel.

Two disjoint sets exist:

- ``"tune"``: what thresholds and the speech detector may be fitted on; it
  never contains the :data:`HELD_OUT_KINDS`;
- ``"eval"``: every kind, the held-out ones included, drawn from other seeds;
  only :mod:`bench/nonspeech.py <bench>` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emovox.augment.synth import GENERATORS, generate
from emovox.errors import ConfigError

__all__ = [
    "NonSpeechClip",
    "nonspeech_set",
    "nonspeech_clip",
    "kinds_of",
    "item_key",
    "load_item",
    "HELD_OUT_KINDS",
    "SETS",
]

#: Kinds only the evaluation set contains (never seen when tuning).
HELD_OUT_KINDS = ("chirps", "applause", "typing", "beeps", "drums")
#: Seeds of the two sets (far apart: no shared draws).
SETS = {"tune": 20_261_207, "eval": 91_100_042}
#: Share of clips sent through a telephone channel (band + 8 kHz codec).
TELEPHONE_SHARE = 0.25


@dataclass(frozen=True)
class NonSpeechClip:
    """One clip: its ``kind``, the generator seed ``index`` and samples ``y`` ``(n,)`` float32 at 16 kHz."""

    kind: str
    index: int
    y: np.ndarray
    telephone: bool

    @property
    def duration_s(self) -> float:
        return self.y.size / 16000


def _duration_s(rng: np.random.Generator) -> float:
    """Mostly 1-8 s; one clip in five very short (0.05-1 s)."""
    if rng.random() < 0.2:
        return float(rng.choice([0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0]))
    return float(rng.uniform(1.0, 8.0))


def kinds_of(which: str) -> list[str]:
    """The kinds of set ``which``: every generator for ``"eval"``, all but :data:`HELD_OUT_KINDS` for ``"tune"``."""
    if which not in SETS:
        raise ConfigError(f"non-speech set {which!r} is unknown: expected 'tune' or 'eval'")
    return [k for k in GENERATORS if which == "eval" or k not in HELD_OUT_KINDS]


def nonspeech_clip(which: str, kind: str, index: int, *, sample_rate_hz: int = 16000) -> NonSpeechClip:
    """Clip ``index`` of ``kind`` in set ``which`` (the same samples every time).

    Levels are drawn between -45 and -10 dBFS RMS; :data:`TELEPHONE_SHARE` of
    the clips go through the telephone band and a G.711 or AMR-NB codec.
    """
    from emovox.augment.channel import Channel

    kinds = kinds_of(which)
    if kind not in kinds:
        raise ConfigError(f"kind {kind!r} is not in the {which!r} set: expected one of {', '.join(kinds)}")
    rng = np.random.default_rng([SETS[which], list(GENERATORS).index(kind), int(index)])
    y = generate(kind, _duration_s(rng), sample_rate_hz=sample_rate_hz, rng=rng)
    level_db = float(rng.uniform(-45, -10))
    y = y * (10 ** (level_db / 20) / max(float(np.sqrt(np.mean(y.astype(np.float64) ** 2))), 1e-9))
    telephone = bool(rng.random() < TELEPHONE_SHARE) and y.size >= 160
    if telephone:
        channel = Channel(codecs=("mulaw", "alaw", "amr_nb"), bitrate_bps=(4750, 12200))
        y = channel(y.astype(np.float32), sample_rate_hz=sample_rate_hz, rng=rng)
    return NonSpeechClip(kind, int(index), np.clip(y, -1, 1).astype(np.float32), telephone)


def nonspeech_set(which: str = "eval", *, per_kind: int = 40, sample_rate_hz: int = 16000) -> list[NonSpeechClip]:
    """``per_kind`` clips of every kind of set ``which`` (``"tune"`` or ``"eval"``), in kind order."""
    return [
        nonspeech_clip(which, kind, i, sample_rate_hz=sample_rate_hz)
        for kind in kinds_of(which)
        for i in range(int(per_kind))
    ]


def item_key(which: str, kind: str, index: int) -> str:
    """The key of one clip, e.g. ``"nonspeech:eval:tone:3"`` (what :func:`load_item` reads)."""
    return f"nonspeech:{which}:{kind}:{int(index)}"


def load_item(key: str) -> np.ndarray:
    """The samples of the clip named by :func:`item_key`."""
    _, which, kind, index = key.split(":")
    return nonspeech_clip(which, kind, int(index)).y
