"""Real-world degradations (issue 16): codecs, telephone band, rooms, babble, the chain, non-speech sets."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.audio.codecs import CODECS, codec_roundtrip, telephone_band
from emovox.augment import Compose, transform_from_dict
from emovox.augment.channel import Channel
from emovox.augment.degrade import babble_bank, degradation_chain, rir_bank, sound_bank, telephone_chain
from emovox.augment.room import RoomReverb, measured_rt60_s, reverberate, room_impulse_response
from emovox.augment.waveform import HardClip
from emovox.corpora import default_corpora_root
from emovox.errors import ConfigError

SR = 16000


def _voiced(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A harmonic, amplitude-modulated signal with energy up to 7 kHz (a stand-in for wideband speech)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 150 + 20 * np.sin(2 * np.pi * 2 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = sum(np.sin(k * phase) / k for k in range(1, 46)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
    y += 0.05 * rng.standard_normal(t.size)
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


def _band_energy(y: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(y.size, 1 / SR)
    return float(spec[(f >= lo) & (f < hi)].sum())


SPEECH = default_corpora_root() / "emodb/wav/03a01Fa.flac"


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_every_codec_round_trips_at_the_input_rate_and_length(codec):
    y = _voiced(1.2)
    out = codec_roundtrip(y, sample_rate_hz=SR, codec=codec)
    assert out.shape == y.shape and out.dtype == np.float32 and np.all(np.isfinite(out))
    if CODECS[codec].sample_rate_hz == 8000:  # the 8 kHz codecs remove everything above 4 kHz
        assert _band_energy(out, 4300, 7900) < 1e-4 * _band_energy(out, 300, 3400)


@pytest.mark.corpora
@pytest.mark.skipif(not SPEECH.is_file(), reason="corpora not available")
@pytest.mark.parametrize("codec", sorted(CODECS))
def test_every_codec_output_lines_up_with_real_speech(codec):
    import soundfile as sf

    y, sr = sf.read(SPEECH, dtype="float32")
    out = codec_roundtrip(y, sample_rate_hz=sr, codec=codec)
    low = lambda x: telephone_band(x, sample_rate_hz=sr, low_hz=200, high_hz=1500)  # noqa: E731
    corr = np.corrcoef(low(y), low(out))[0, 1]
    assert corr > 0.5, f"{codec}: output not aligned with the input (correlation {corr:.2f})"


def test_codec_options_are_checked():
    with pytest.raises(ConfigError, match="unknown"):
        codec_roundtrip(_voiced(0.2), sample_rate_hz=SR, codec="speex")
    with pytest.raises(ConfigError, match="bit rates"):
        codec_roundtrip(_voiced(0.2), sample_rate_hz=SR, codec="amr_nb", bitrate_bps=9999)
    with pytest.raises(ConfigError, match="telephone band"):
        telephone_band(_voiced(0.2), sample_rate_hz=6000)


def test_channel_transform_is_seeded_and_serialisable():
    t = Channel(codecs=("mulaw", "amr_nb", "opus"), bitrate_bps=(6000, 12200))
    assert transform_from_dict(t.to_dict()) == t
    y = _voiced(0.8)
    a = t(y, sample_rate_hz=SR, rng=np.random.default_rng(4))
    b = t(y, sample_rate_hz=SR, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert t.rates("amr_nb") == (6700, 7400, 7950, 10200, 12200) and t.rates("mulaw") == (0,)
    with pytest.raises(ConfigError, match="codec"):
        Channel(codecs=("carrier-pigeon",))


def test_rooms_reach_their_reverberation_time_and_keep_level_and_length():
    rng = np.random.default_rng(0)
    h = room_impulse_response(0.4, rng=rng)
    assert abs(float(np.sum(h.astype(np.float64) ** 2)) - 1.0) < 1e-3
    assert 0.25 < measured_rt60_s(h) < 0.7
    bank = rir_bank((0.8, 0.8), n_items=2, rng=rng, tolerance=0.1)
    assert all(0.72 <= measured_rt60_s(x) <= 0.88 for x in bank)
    y = _voiced(1.0)
    wet = reverberate(y, bank[0])
    assert wet.shape == y.shape
    assert np.sqrt(np.mean(wet**2)) == pytest.approx(np.sqrt(np.mean(y**2)), rel=1e-3)
    t = RoomReverb(rirs=bank)
    assert t.to_dict() == {"type": "room_reverb", "rt60_s": [0.2, 1.0]}
    np.testing.assert_array_equal(
        t(y, sample_rate_hz=SR, rng=np.random.default_rng(1)), t(y, sample_rate_hz=SR, rng=np.random.default_rng(1))
    )


def test_hard_clip_flattens_the_tops_and_keeps_the_peak():
    y = _voiced(0.5)
    out = HardClip(drive_db=(12.0, 12.0))(y, sample_rate_hz=SR, rng=np.random.default_rng(0))
    peak = np.max(np.abs(y))
    assert np.max(np.abs(out)) == pytest.approx(peak, rel=1e-5)
    assert np.mean(np.abs(out) >= 0.999 * peak) > 0.05


def test_babble_is_a_level_matched_mix_of_the_given_talkers():
    talkers = [_voiced(0.7, seed=s) for s in range(4)]
    bank = babble_bank(talkers, n_items=3, duration_s=2.0, rng=np.random.default_rng(0))
    assert len(bank) == 3 and all(b.shape == (2 * SR,) for b in bank)
    assert all(np.sqrt(np.mean(b**2)) == pytest.approx(0.1, rel=1e-3) for b in bank)
    with pytest.raises(ConfigError, match="at least 2"):
        babble_bank([np.zeros(100, np.float32)], rng=np.random.default_rng(0))


def test_the_chains_are_replayable_and_keep_shape():
    rng = np.random.default_rng(2)
    talkers = [_voiced(0.7, seed=s) for s in range(3)]
    chain = degradation_chain(
        babble=babble_bank(talkers, n_items=2, rng=rng),
        sounds=sound_bank(["music", "hum"], n_items=2, duration_s=2.0, rng=rng),
        rirs=rir_bank((0.2, 0.5), n_items=2, rng=rng),
    )
    assert isinstance(chain, Compose) and [type(t).__name__ for t, _ in chain.steps] == [
        "RoomReverb",
        "OneOf",
        "HardClip",
        "Channel",
        "Gain",
    ]
    y = _voiced(1.0)
    for seed in range(6):
        a = chain(y, sample_rate_hz=SR, rng=np.random.default_rng(seed))
        b = chain(y, sample_rate_hz=SR, rng=np.random.default_rng(seed))
        np.testing.assert_array_equal(a, b)
        assert a.shape == y.shape and np.all(np.isfinite(a)) and np.max(np.abs(a)) <= 1.0
    call = telephone_chain()(y, sample_rate_hz=SR, rng=np.random.default_rng(0))
    assert _band_energy(call, 4300, 7900) < 1e-3 * _band_energy(call, 300, 3400)


def test_non_speech_sets_are_reproducible_and_hold_out_kinds():
    from emovox.evaluation.nonspeech import HELD_OUT_KINDS, kinds_of, nonspeech_clip, nonspeech_set

    assert not set(HELD_OUT_KINDS) & set(kinds_of("tune")) and set(HELD_OUT_KINDS) <= set(kinds_of("eval"))
    a, b = nonspeech_clip("eval", "chord", 3), nonspeech_clip("eval", "chord", 3)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.y[:800], nonspeech_clip("tune", "chord", 3).y[:800])
    clips = nonspeech_set("tune", per_kind=2)
    assert len(clips) == 2 * len(kinds_of("tune"))
    assert all(c.y.dtype == np.float32 and np.max(np.abs(c.y)) <= 1.0 for c in clips)
    with pytest.raises(ConfigError, match="not in"):
        nonspeech_clip("tune", HELD_OUT_KINDS[0], 0)
