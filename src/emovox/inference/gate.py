"""The speech gate: how much speech an input holds, and whether that is enough for an emotion.

Every input -- a clip of any length, a timeline window, a stream window --
passes the gate before an emotion is claimed. The voice activity detector
(Silero, :mod:`emovox.audio.vad`) gives each 32 ms frame a speech
probability; the input's *speech time* is the number of frames at or above
:data:`SPEECH_PROBABILITY` times 32 ms. Then:

- under :data:`NO_SPEECH_S` of speech: ``no_speech`` (never an emotion);
- under :data:`MIN_EMOTION_S`: ``unknown``, reason ``too_little_speech``;
- otherwise the model answers (and its threshold may still say ``unknown``).

The thresholds were chosen by measurement on the corpora and on the tuning
set of synthetic non-speech (never on the evaluation set that
``bench/nonspeech.py`` scores; ``docs/robustness.md`` has the tables): with
frames counted at probability 0.3, 0.31 % of the 4,217 corpus clips hold
less than ``NO_SPEECH_S`` (shouted RAVDESS takes, whispered-quiet TurEV
words) against 0.59 % at 0.5, and telephone speech 1.3 % against 2.3 %;
3.5 % of the tuning non-speech reaches ``NO_SPEECH_S`` and 1.4 %
``MIN_EMOTION_S``. Below ``MIN_EMOTION_S`` held-out 7-way UAR on fragments
of real speech is 0.23-0.27 (chance 0.14; whole clips 0.66). The same probabilities feed the
quality flags (:mod:`emovox.audio.quality`).

A gate is thread-safe: each thread gets its own detector state.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from emovox.audio.quality import Quality, assess_quality
from emovox.audio.vad import VAD_NAMES, VoiceDetector, get_vad
from emovox.errors import ConfigError

__all__ = [
    "SpeechGate",
    "SpeechCheck",
    "speech_seconds",
    "gate_verdict",
    "quality_warnings",
    "NO_SPEECH_S",
    "MIN_EMOTION_S",
    "SPEECH_PROBABILITY",
    "FRAME_S",
]

#: A frame is speech when its VAD probability is at least this (0.5 misses shouted and telephone speech).
SPEECH_PROBABILITY = 0.3
#: Length of one VAD frame (512 samples at 16 kHz).
FRAME_S = 512 / 16000
#: Less speech than this (s) is no speech at all.
NO_SPEECH_S = 0.10
#: Less speech than this (s) is too little for an emotion (``unknown``).
MIN_EMOTION_S = 0.25


def speech_seconds(probs: np.ndarray, *, threshold: float = SPEECH_PROBABILITY) -> float:
    """Seconds of speech in per-frame VAD probabilities ``(frames,)``: frames at or above ``threshold``."""
    return float(np.count_nonzero(np.asarray(probs) >= threshold) * FRAME_S)


def gate_verdict(
    speech_s: float, *, no_speech_s: float = NO_SPEECH_S, min_emotion_s: float = MIN_EMOTION_S
) -> str | None:
    """``"no_speech"``, ``"too_little_speech"`` or ``None`` (enough speech) for ``speech_s`` seconds of speech."""
    if speech_s < no_speech_s:
        return "no_speech"
    if speech_s < min_emotion_s:
        return "too_little_speech"
    return None


@dataclass(frozen=True)
class SpeechCheck:
    """What the gate found in one input: speech time, verdict, frame probabilities and quality."""

    speech_s: float
    verdict: str | None
    probs: np.ndarray
    quality: Quality


class SpeechGate:
    """Voice activity detection and quality flags for whole clips at 16 kHz.

    Parameters
    ----------
    vad : str
        ``"auto"`` (Silero, else WebRTC), ``"silero"`` or ``"webrtc"``.
    no_speech_s, min_emotion_s : float
        The thresholds (defaults: :data:`NO_SPEECH_S`, :data:`MIN_EMOTION_S`).
    """

    def __init__(
        self, *, vad: str = "auto", no_speech_s: float = NO_SPEECH_S, min_emotion_s: float = MIN_EMOTION_S
    ) -> None:
        if vad not in VAD_NAMES:
            raise ConfigError(f"vad={vad!r} is unknown: expected one of {', '.join(VAD_NAMES)}")
        if not 0 <= no_speech_s <= min_emotion_s:
            raise ConfigError(
                f"gate thresholds no_speech_s={no_speech_s!r} <= min_emotion_s={min_emotion_s!r} "
                "must be non-negative and ordered"
            )
        self.vad = vad
        self.no_speech_s = float(no_speech_s)
        self.min_emotion_s = float(min_emotion_s)
        self._local = threading.local()

    def _detector(self) -> VoiceDetector:
        detector: VoiceDetector | None = getattr(self._local, "detector", None)
        if detector is None:
            detector = self._local.detector = get_vad(self.vad)
        return detector

    def probabilities(self, y: np.ndarray) -> np.ndarray:
        """Per-frame speech probabilities of one clip ``(n,)`` at 16 kHz (the detector starts afresh)."""
        detector = self._detector()
        detector.reset()
        probs = detector.probabilities(np.asarray(y, np.float32), final=True)
        if getattr(detector, "frame_samples", 512) != 512:  # WebRTC: 30 ms frames -> 32 ms grid
            src = np.arange(probs.size) * detector.frame_samples / 16000
            probs = np.interp(np.arange(int(np.ceil(y.size / 512))) * FRAME_S, src, probs) if probs.size else probs
        return probs

    def check(self, y: np.ndarray) -> SpeechCheck:
        """Speech time, verdict and quality of one clip ``(n,)`` float32 at 16 kHz."""
        probs = self.probabilities(y)
        speech_s = speech_seconds(probs)
        verdict = gate_verdict(speech_s, no_speech_s=self.no_speech_s, min_emotion_s=self.min_emotion_s)
        return SpeechCheck(speech_s, verdict, probs, assess_quality(y, speech_probs=probs))

    def verdict(self, speech_s: float) -> str | None:
        """:func:`gate_verdict` with this gate's thresholds."""
        return gate_verdict(speech_s, no_speech_s=self.no_speech_s, min_emotion_s=self.min_emotion_s)


def quality_warnings(quality: Quality | None, measured: dict) -> tuple[str, ...]:
    """One sentence per way an input lies outside what a model was measured on.

    ``measured`` is the artifact's ``robustness.measured`` section:
    ``narrowband`` (bool: telephone-band audio was measured), ``min_snr_db``
    (the noisiest condition measured), ``clipping`` (bool). An artifact
    without it was measured on clean studio speech only.
    """
    if quality is None:
        return ()
    out = []
    where = "see the model card"
    if quality.narrowband and not measured.get("narrowband", False):
        out.append(
            f"narrowband audio (effective bandwidth {quality.bandwidth_hz / 1000:.1f} kHz, e.g. a telephone "
            f"line): this model was measured on wideband speech only; {where}"
        )
    snr_floor = measured.get("min_snr_db")
    if quality.snr_db is not None and quality.low_snr and (snr_floor is None or quality.snr_db < snr_floor):
        measured_text = f"down to {snr_floor:g} dB" if snr_floor is not None else "on clean speech only"
        out.append(
            f"noisy audio (estimated SNR {quality.snr_db:.0f} dB): this model was measured {measured_text}; {where}"
        )
    if quality.clipping and not measured.get("clipping", False):
        out.append(
            f"clipped audio ({quality.clipped_share:.1%} of samples): this model was not measured on clipped recordings"
        )
    if quality.low_level and not np.isfinite(quality.level_dbfs):
        out.append("the input is digital silence")
    elif quality.low_level:
        out.append(
            f"very low level ({quality.level_dbfs:.0f} dBFS): the speech may be too quiet to judge; "
            "record closer to the microphone or raise the gain"
        )
    return tuple(out)
