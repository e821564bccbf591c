"""One of each (issue 17, point 3): one waveform gate, one atomic writer, licences in
the corpus modules, one registry style."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emovox.audio import validate_signal, validate_waveform
from emovox.augment import Gain
from emovox.corpora import CORPORA, corpus_licence, get_corpus_info
from emovox.errors import (
    AudioError,
    ConfigError,
    EmptyAudioError,
    FeatureError,
    InvalidSamplesError,
    TooShortError,
)
from emovox.features import classic
from emovox.features.checks import check_signal

SR = 16000
PRETRAINED = Path(__file__).resolve().parents[1] / "src" / "emovox" / "pretrained"

BAD_WAVEFORMS = {
    "nan": (np.array([0.1, np.nan, 0.2] * 2000, dtype=np.float32), InvalidSamplesError, "2000 NaN or infinite"),
    "inf": (np.array([0.1, np.inf] * 3000, dtype=np.float32), InvalidSamplesError, "3000 NaN or infinite"),
    "empty": (np.zeros(0, dtype=np.float32), EmptyAudioError, "contains no samples"),
    "stereo": (np.zeros((2, 6000), dtype=np.float32), ConfigError, r"mono samples of shape \(n,\), got shape \(2,"),
    "3-d": (np.zeros((1, 2, 6000), dtype=np.float32), ConfigError, r"mono samples of shape \(n,\)"),
    "int16": (np.zeros(6000, dtype=np.int16), ConfigError, "must be floating point, got dtype int16"),
}


def _message(call) -> tuple[type[BaseException], str]:
    with pytest.raises(Exception) as info:
        call()
    return type(info.value), str(info.value)


@pytest.mark.parametrize("case", sorted(BAD_WAVEFORMS))
def test_one_waveform_gate_one_message(case):
    """The same bad waveform gives the same one-line message from every entry point."""
    y, error, match = BAD_WAVEFORMS[case]
    with pytest.raises(error, match=match):
        validate_waveform(y, mono=True)
    gate = _message(lambda: validate_waveform(y, mono=True))[1]
    assert "\n" not in gate
    assert _message(lambda: validate_signal(y, SR, min_duration_s=0, mono=True)) == (error, gate)
    # the feature layer and the augmentations keep their own error type, with the gate's message
    assert _message(lambda: check_signal(y, SR)) == (FeatureError, gate)
    assert _message(lambda: classic.rms(y, sample_rate_hz=SR)) == (FeatureError, gate)
    augment_error = ConfigError if issubclass(error, (AudioError, ConfigError)) else error
    assert _message(lambda: Gain()(y, sample_rate_hz=SR, rng=np.random.default_rng(0))) == (augment_error, gate)


def test_wrapped_errors_keep_the_gate_error_as_cause():
    y = np.full(100, np.nan, dtype=np.float32)
    with pytest.raises(FeatureError) as info:
        check_signal(y, SR)
    assert isinstance(info.value.__cause__, InvalidSamplesError)
    with pytest.raises(ConfigError) as info2:
        Gain()(y, sample_rate_hz=SR, rng=np.random.default_rng(0))
    assert isinstance(info2.value.__cause__, InvalidSamplesError)


def test_too_few_samples_names_the_consumer():
    with pytest.raises(TooShortError, match=r"clip has 500 samples \(0\.031 s at 16000 Hz\); mfcc needs at least 1025"):
        validate_waveform(np.zeros(500, np.float32), min_samples=1025, sample_rate_hz=SR, needed_by="mfcc")
    with pytest.raises(FeatureError, match=r"clip has 500 samples \(0\.031 s at 16000 Hz\); .* needs at least 1025"):
        classic.mfcc(np.zeros(500, dtype=np.float32), sample_rate_hz=SR)


def test_gate_accepts_and_keeps_float32():
    y = np.linspace(-0.5, 0.5, 4000, dtype=np.float32)
    assert validate_waveform(y, mono=True) is y
    out = Gain()(y.astype(np.float64).tolist(), sample_rate_hz=SR, rng=np.random.default_rng(0))
    assert out.dtype == np.float32 and out.shape == y.shape


# --------------------------------------------------------------------------- licences
def test_licences_come_from_the_corpus_modules():
    from emovox.corpora import crema_d, emodb, emovo, ravdess, savee, tess, turev

    modules = {
        "ravdess": ravdess,
        "ravdess-song": ravdess,
        "crema-d": crema_d,
        "tess": tess,
        "savee": savee,
        "emodb": emodb,
        "emovo": emovo,
        "turev": turev,
    }
    for name, module in modules.items():
        info = get_corpus_info(name)
        assert info.licence == module.LICENCE == corpus_licence(name)
        assert info.licence_note == f"{module.LICENCE} ({module.CITATION})"
    assert set(CORPORA) - set(modules) == {"csv", "folder"}
    assert corpus_licence("csv") == corpus_licence("my-own-corpus") == "see the corpus's own terms"


def test_data_card_reads_the_corpus_licence():
    from emovox.corpora import Record
    from emovox.training.pipeline import data_card

    records = [
        Record(path="/x/a.wav", corpus="ravdess", speaker="1", label="happy", emotion="happy", language="en"),
        Record(path="/x/b.wav", corpus="mine", speaker="2", label="sad", emotion="sad", language="en"),
    ]
    card = data_card(records, classes=["happy", "sad"], labels=[0, 1])
    assert card["licences"] == {"mine": "see the corpus's own terms", "ravdess": "CC BY-NC-SA 4.0"}


@pytest.mark.parametrize("model", ["cnn", "default"])
def test_shipped_model_cards_agree_with_the_corpus_modules(model):
    config = json.loads((PRETRAINED / model / "config.json").read_text(encoding="utf-8"))
    data_card = config["training"]["data_card"]
    assert data_card
    for name, entry in data_card.items():
        assert entry["licence"] == get_corpus_info(name).licence_note
        assert entry["licence"] in config["model_card"]


# --------------------------------------------------------------------------- registries
def _fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter (nothing imported but what it imports); its stdout."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_augmentation_lookup_does_not_depend_on_imports():
    """``room_reverb`` and ``channel`` live in modules the package does not import: found anyway."""
    out = _fresh(
        "from emovox.augment import transform_from_dict\n"
        "print(type(transform_from_dict({'type': 'room_reverb'})).__name__,"
        " type(transform_from_dict({'type': 'channel'})).__name__)"
    )
    assert out == "RoomReverb Channel"


def test_seed_feature_sets_do_not_depend_on_imports():
    out = _fresh("from emovox.features import get_feature_set\nprint(get_feature_set('seed-s0').name)")
    assert out == "seed-s0"


def test_registry_lookups_name_the_known_names():
    from emovox.augment import transform_from_dict
    from emovox.augment.base import transform_names
    from emovox.errors import CorpusError
    from emovox.labels import get_scheme, scheme_names

    assert {"room_reverb", "channel", "gain"} <= set(transform_names())
    with pytest.raises(ConfigError, match=r"unknown augmentation 'reverb': expected one of .*room_reverb"):
        transform_from_dict({"type": "reverb"})
    with pytest.raises(ConfigError, match=r"unknown label scheme 'sevn': expected one of emovox7, .*seven"):
        get_scheme("sevn")
    assert "emovox7" in scheme_names()
    with pytest.raises(CorpusError, match=r"unknown corpus 'iemocap': expected one of crema-d, .*turev"):
        get_corpus_info("iemocap")


def test_a_second_transform_under_a_taken_name_is_refused():
    from dataclasses import dataclass
    from typing import ClassVar

    from emovox.augment import Transform, register_transform

    @dataclass(frozen=True)
    class NotGain(Transform):
        name: ClassVar[str] = "gain"

    with pytest.raises(ConfigError, match="augmentation 'gain' is already registered by emovox.augment.waveform"):
        register_transform(NotGain)
