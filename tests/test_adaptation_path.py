"""One speaker-adaptation path: fitting, benchmarks and ``Predictor.adapt`` share one offset and one centring.

:mod:`emovox.inference.adaptation` holds the one implementation of each step
(the offset of a speaker, the centring of their rows, the adapted head
applied after it); the fit (:mod:`emovox.recipes.speaker_adaptation`) and the
Whisper-head recipe call it, so what a head is trained on is what it sees
when a user adapts it.
"""

from __future__ import annotations

from itertools import combinations
from types import SimpleNamespace

import numpy as np
import pytest

import emovox.inference.adaptation as adaptation
from emovox.inference.adaptation import MIN_CLIPS, AdaptationHead, speaker_centred, speaker_offset
from emovox.recipes.speaker_adaptation import fit_speaker_adaptation


def _data(n_speakers: int = 8, per_class: int = 6, d: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows, y, speakers = [], [], []
    for s in range(n_speakers):
        offset = rng.normal(scale=3.0, size=d)
        for c in (0, 1):
            for _ in range(per_class):
                x = offset + rng.normal(scale=0.5, size=d)
                x[0] += 2.0 * c
                rows.append(x)
                y.append(c)
                speakers.append(f"s{s}")
    return np.array(rows, dtype=np.float32), np.array(y), np.array(speakers)


def _folds(speakers: np.ndarray, k: int = 2) -> list[SimpleNamespace]:
    names = sorted(set(speakers))
    held = [set(names[f::k]) for f in range(k)]
    return [
        SimpleNamespace(
            train_idx=np.flatnonzero([s not in h for s in speakers]),
            test_idx=np.flatnonzero([s in h for s in speakers]),
        )
        for h in held
    ]


def _head(fit) -> AdaptationHead:
    return AdaptationHead(fit.mean, fit.scale, fit.weight, fit.bias, 1.0, 0.0, {})


def test_prediction_centres_a_speaker_as_the_fit_centred_the_training_rows():
    x, y, speakers = _data()
    fit = fit_speaker_adaptation(x, y, speakers, n_classes=2, splits=_folds(speakers), k=MIN_CLIPS, draws=1)
    head = _head(fit)
    centred = speaker_centred(x, speakers)
    for s in sorted(set(speakers)):
        own = speakers == s
        expected = ((centred[own] - fit.mean) / fit.scale) @ fit.weight.T + fit.bias
        np.testing.assert_allclose(head.logits(x[own], head.offset(x[own])), expected, atol=1e-4)
        # the adapted answers do not depend on the speaker's voice/channel offset
        shifted = x[own] + np.float32(7.5)
        np.testing.assert_allclose(
            head.logits(shifted, head.offset(shifted)), head.logits(x[own], head.offset(x[own])), atol=1e-4
        )


def test_the_offset_is_the_mean_of_the_reference_rows():
    x, _, speakers = _data()
    own = speakers == "s3"
    np.testing.assert_allclose(speaker_offset(x[own]), x[own].mean(axis=0))
    few = speaker_centred(x, speakers, k=MIN_CLIPS, seed=4)
    # each speaker's rows are shifted by one vector: the mean of MIN_CLIPS of their own rows
    shift = x[own] - few[own]
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-5)
    means = (speaker_offset(x[own][list(c)]) for c in combinations(range(int(own.sum())), MIN_CLIPS))
    assert any(np.allclose(m, shift[0], atol=1e-5) for m in means), "not the mean of MIN_CLIPS of their rows"


def test_fit_and_prediction_call_the_one_implementation(monkeypatch):
    calls = {"centred": 0, "offset": 0}
    real_centred, real_offset = adaptation.speaker_centred, adaptation.speaker_offset

    def centred_spy(*args, **kwargs):
        calls["centred"] += 1
        return real_centred(*args, **kwargs)

    def offset_spy(rows):
        calls["offset"] += 1
        return real_offset(rows)

    monkeypatch.setattr(adaptation, "speaker_centred", centred_spy)
    monkeypatch.setattr(adaptation, "speaker_offset", offset_spy)
    x, y, speakers = _data(n_speakers=4)
    fit = fit_speaker_adaptation(x, y, speakers, n_classes=2, splits=_folds(speakers), k=MIN_CLIPS, draws=1)
    assert calls["centred"] == 1 + 2  # every training row, then each fold's held-out speakers
    assert calls["offset"] >= 4  # once per speaker and centring
    before = calls["offset"]
    head = _head(fit)
    head.offset(x[:MIN_CLIPS])
    assert calls["offset"] == before + 1
    with pytest.raises(Exception, match=f"at least {MIN_CLIPS} clips"):
        head.offset(x[: MIN_CLIPS - 1])


def test_no_second_copy_of_the_centring_remains():
    import emovox.models.whisper_heads as whisper_heads

    assert not hasattr(whisper_heads, "speaker_centred")
