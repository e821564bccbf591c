"""The realistic degradation chain: what happens to speech between a mouth and emovox.

A call or a meeting recording went through a room (reverberation), picked up
other sounds (noise, other talkers, music), a recorder (gain, clipping) and a
transmission channel (telephone band and codec). :func:`degradation_chain`
draws one such path per call::

    room (35 %) -> background (60 %: coloured noise, babble, music, hum; 0-25 dB SNR)
        -> clipping (10 %) -> channel (50 %: G.711, G.726, AMR-NB, Opus, MP3) -> gain (-20..+6 dB)

:func:`telephone_chain` is a call: the telephone band and an 8 kHz codec,
with light noise a third of the time.

The chain's noise and rooms come from in-memory banks, built once from
*training* material only: :func:`babble_bank` mixes clips of training
speakers into babble, :func:`sound_bank` renders synthetic music and hum
(:mod:`emovox.augment.synth`), :func:`rir_bank` simulates rooms. Evaluation
builds its own banks from other speakers and other seeds
(:mod:`emovox.evaluation.robustness`), so no noise heard in training is
heard again in a test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emovox.augment.base import Compose, OneOf, check_rng
from emovox.augment.channel import ALL_CODECS, TELEPHONE_CODECS, Channel
from emovox.augment.noise import BackgroundNoise
from emovox.augment.room import RoomReverb, measured_rt60_s, room_impulse_response
from emovox.augment.synth import generate
from emovox.augment.waveform import Gain, HardClip
from emovox.errors import ConfigError

__all__ = ["degradation_chain", "telephone_chain", "noise_chain", "babble_bank", "sound_bank", "rir_bank"]


def babble_bank(
    clips: Sequence[np.ndarray],
    *,
    n_items: int = 64,
    duration_s: float = 8.0,
    talkers: tuple[int, int] = (3, 7),
    sample_rate_hz: int = 16000,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """``n_items`` babble tracks ``(duration_s * rate,)``: each the sum of 3-7 level-matched talkers.

    ``clips`` are speech clips (float32 at ``sample_rate_hz``) of the speakers
    the babble may contain; each talker is a random clip, looped from a random
    offset to the track's length.
    """
    check_rng(rng)
    pool = [np.asarray(c, np.float32) for c in clips if np.size(c) > 0 and np.any(c)]
    if len(pool) < 2:
        raise ConfigError(f"babble needs at least 2 non-silent speech clips, got {len(pool)}")
    n = int(duration_s * sample_rate_hz)
    bank = []
    for _ in range(int(n_items)):
        track = np.zeros(n, np.float64)
        for _ in range(int(rng.integers(talkers[0], talkers[1] + 1))):
            clip = pool[int(rng.integers(len(pool)))]
            looped = np.tile(clip, int(np.ceil(n / clip.size)) + 1)
            start = int(rng.integers(0, clip.size))
            piece = looped[start : start + n].astype(np.float64)
            track += piece / (np.sqrt(np.mean(piece**2)) + 1e-9) * rng.uniform(0.5, 1.0)
        bank.append((track / (np.sqrt(np.mean(track**2)) + 1e-9) * 0.1).astype(np.float32))
    return bank


def sound_bank(
    kinds: Sequence[str],
    *,
    n_items: int = 32,
    duration_s: float = 8.0,
    sample_rate_hz: int = 16000,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """``n_items`` synthetic sounds (:mod:`emovox.augment.synth`), kinds drawn uniformly from ``kinds``."""
    check_rng(rng)
    return [
        generate(kinds[int(rng.integers(len(kinds)))], duration_s, sample_rate_hz=sample_rate_hz, rng=rng)
        for _ in range(int(n_items))
    ]


def rir_bank(
    rt60_s: tuple[float, float],
    *,
    n_items: int = 48,
    sample_rate_hz: int = 16000,
    rng: np.random.Generator,
    tolerance: float | None = None,
) -> list[np.ndarray]:
    """``n_items`` simulated room impulse responses with RT60 drawn from ``rt60_s``.

    With ``tolerance`` (e.g. 0.1) only rooms whose *measured* RT60
    (:func:`~emovox.augment.room.measured_rt60_s`) lies within that fraction
    of the drawn target are kept; Sabine's formula alone overshoots long
    reverberation times by about a quarter.
    """
    check_rng(rng)
    bank: list[np.ndarray] = []
    tries = 0
    while len(bank) < n_items:
        tries += 1
        if tries > 40 * n_items:
            raise ConfigError(f"could not simulate {n_items} rooms with RT60 in {rt60_s} s")
        target = float(rng.uniform(*rt60_s))
        nominal = target if tolerance is None else target * float(rng.uniform(0.7, 1.0))
        h = room_impulse_response(nominal, sample_rate_hz=sample_rate_hz, rng=rng)
        if tolerance is None or abs(measured_rt60_s(h, sample_rate_hz=sample_rate_hz) - target) <= tolerance * target:
            bank.append(h)
    return bank


def degradation_chain(
    *,
    babble: Sequence[np.ndarray] | None = None,
    sounds: Sequence[np.ndarray] | None = None,
    rirs: Sequence[np.ndarray] | None = None,
    codecs: Sequence[str] = ALL_CODECS,
) -> Compose:
    """The training chain (module docstring). Banks default to sources that need no material.

    ``babble`` (:func:`babble_bank` of training speakers), ``sounds``
    (:func:`sound_bank` of music and hum) and ``rirs`` (:func:`rir_bank`) are
    the in-memory banks; without ``rirs`` rooms are simulated per call (slow).
    """
    return Compose(
        (
            (RoomReverb(rt60_s=(0.2, 1.0), rirs=None if rirs is None else tuple(rirs)), 0.35),
            (_background(babble, sounds, snr_db=(0.0, 25.0), sounds_snr_db=(5.0, 25.0), babble_weight=2.0), 0.6),
            (HardClip(drive_db=(1.0, 12.0)), 0.1),
            (Channel(codecs=tuple(codecs), bitrate_bps=(6000, 32000)), 0.5),
            (Gain(gain_db=(-20.0, 6.0), clip=True), 1.0),
        )
    )


def _background(
    babble, sounds, *, snr_db: tuple[float, float], sounds_snr_db: tuple[float, float], babble_weight: float
) -> OneOf:
    """One background per call: coloured noise (weight 1), babble (``babble_weight``) or music/hum (weight 1), dB SNR."""
    backgrounds = [BackgroundNoise(snr_db=snr_db, colors=("white", "pink", "brown"))]
    weights = [1.0]
    if babble:
        backgrounds.append(BackgroundNoise(snr_db=snr_db, noises=tuple(babble)))
        weights.append(babble_weight)
    if sounds:
        backgrounds.append(BackgroundNoise(snr_db=sounds_snr_db, noises=tuple(sounds)))
        weights.append(1.0)
    return OneOf(tuple(backgrounds), p=1.0, weights=tuple(weights))


def noise_chain(*, babble: Sequence[np.ndarray] | None = None, sounds: Sequence[np.ndarray] | None = None) -> Compose:
    """A noisy place: babble (most of the time), coloured noise or music at 0-15 dB SNR, a channel 30 % of the time."""
    return Compose(
        (
            (_background(babble, sounds, snr_db=(0.0, 15.0), sounds_snr_db=(0.0, 15.0), babble_weight=3.0), 1.0),
            (Channel(codecs=ALL_CODECS, bitrate_bps=(6000, 32000)), 0.3),
            (Gain(gain_db=(-20.0, 6.0), clip=True), 1.0),
        )
    )


def telephone_chain(*, babble: Sequence[np.ndarray] | None = None) -> Compose:
    """A call: light noise (a third of the time, 10-30 dB) then the telephone band and an 8 kHz codec."""
    noise = BackgroundNoise(snr_db=(10.0, 30.0), noises=None if not babble else tuple(babble))
    return Compose(
        (
            (noise, 1 / 3),
            (Channel(codecs=TELEPHONE_CODECS, bitrate_bps=(4750, 32000)), 1.0),
            (Gain(gain_db=(-12.0, 6.0), clip=True), 1.0),
        )
    )


def describe(chain: Compose) -> dict:
    """The chain's JSON description (banks are runtime data: described by their sizes)."""
    out = chain.to_dict()
    out["banks"] = {
        type(t).__name__: len(getattr(t, "noises", None) or getattr(t, "rirs", None) or ()) for t, _ in chain.steps
    }
    return out
