"""Corpus loaders on fixture folders written in each publisher's exact layout."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.corpora import (
    corpus_names,
    default_corpora_root,
    default_corpus_dir,
    load_corpus,
)
from emovox.corpora.records import Record
from emovox.errors import ConfigError, CorpusError


def touch_wav(path: Path, *, sample_rate_hz: int = 8000, duration_s: float = 0.01) -> Path:
    """Write a tiny valid mono WAV (or FLAC, by extension) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    y = np.zeros(int(sample_rate_hz * duration_s), dtype=np.float32)
    sf.write(path, y, sample_rate_hz)
    return path


def add_strays(folder: Path) -> None:
    (folder / "README.txt").write_text("not audio")
    (folder / ".DS_Store").write_bytes(b"\0")
    (folder / "._hidden.wav").write_bytes(b"\0")  # macOS resource fork


# --------------------------------------------------------------------- CREMA-D


def make_crema_d(root: Path, *, demographics: bool = True) -> Path:
    audio = root / "AudioWAV"
    for actor in ("1001", "1002", "1091"):
        for sentence in ("DFA", "IEO"):
            for emotion in ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"):
                level = "XX" if sentence == "DFA" else ("MD" if emotion == "NEU" else "HI")
                touch_wav(audio / f"{actor}_{sentence}_{emotion}_{level}.wav", sample_rate_hz=16000)
    if demographics:
        (root / "VideoDemographics.csv").write_text(
            "ActorID,Age,Sex,Race,Ethnicity\n"
            "1001,51,Male,Caucasian,Not Hispanic\n"
            "1002,21,Female,Caucasian,Not Hispanic\n"
        )
    add_strays(audio)
    return root


def test_crema_d_with_demographics(tmp_path):
    records = load_corpus("crema-d", make_crema_d(tmp_path))
    assert len(records) == 3 * 2 * 6
    assert Counter(r.emotion for r in records) == dict.fromkeys(
        ("angry", "disgust", "fearful", "happy", "neutral", "sad"), 6
    )
    genders = {r.speaker: r.gender for r in records}
    assert genders == {"1001": "male", "1002": "female", "1091": None}  # 1091 not in the CSV
    first = records[0]
    assert first == Record(
        path=str(tmp_path / "AudioWAV" / "1001_DFA_ANG_XX.wav"),
        corpus="crema-d",
        speaker="1001",
        label="ANG",
        emotion="angry",
        language="en",
        gender="male",
        intensity="XX",
        sentence="DFA",
    )
    assert {r.intensity for r in records} == {"XX", "HI", "MD"}


def test_crema_d_audiowav_folder_finds_demographics_in_parent(tmp_path):
    make_crema_d(tmp_path)
    records = load_corpus("crema-d", tmp_path / "AudioWAV")
    assert {r.gender for r in records} == {"male", "female", None}


def test_crema_d_without_demographics_has_no_gender(tmp_path):
    records = load_corpus("crema-d", make_crema_d(tmp_path, demographics=False))
    assert {r.gender for r in records} == {None}


def test_crema_d_bad_emotion_code_names_file(tmp_path):
    make_crema_d(tmp_path)
    touch_wav(tmp_path / "AudioWAV" / "1001_DFA_XYZ_XX.wav")
    with pytest.raises(CorpusError, match=r"1001_DFA_XYZ_XX\.wav.*emotion code XYZ.*ANG/DIS"):
        load_corpus("crema-d", tmp_path)


# --------------------------------------------------------------------- TESS

TESS_FOLDERS = {  # real TESS copies spell their folders inconsistently
    "OAF": ("OAF_angry", "OAF_disgust", "OAF_Fear", "OAF_happy", "OAF_neutral", "OAF_Pleasant_surprise", "OAF_Sad"),
    "YAF": ("YAF_angry", "YAF_disgust", "YAF_fear", "YAF_happy", "YAF_neutral", "YAF_pleasant_surprised", "YAF_sad"),
}
TESS_CODES = ("angry", "disgust", "fear", "happy", "neutral", "ps", "sad")


def make_tess(root: Path) -> Path:
    for speaker, folders in TESS_FOLDERS.items():
        for folder, code in zip(folders, TESS_CODES):
            for word in ("back", "bar", "base"):
                touch_wav(root / folder / f"{speaker}_{word}_{code}.wav", sample_rate_hz=24414)
    add_strays(root)
    return root


def test_tess(tmp_path):
    records = load_corpus("tess", make_tess(tmp_path))
    assert len(records) == 2 * 7 * 3
    assert Counter(r.speaker for r in records) == {"OAF": 21, "YAF": 21}
    assert {r.gender for r in records} == {"female"}
    surprised = [r for r in records if r.label == "ps"]
    assert len(surprised) == 6 and {r.emotion for r in surprised} == {"surprised"}
    assert {r.emotion for r in records if r.label == "fear"} == {"fearful"}
    assert {r.sentence for r in records} == {"back", "bar", "base"}


def test_tess_unknown_speaker_and_emotion(tmp_path):
    touch_wav(tmp_path / "XAF_angry" / "XAF_back_angry.wav")
    with pytest.raises(CorpusError, match=r"XAF_back_angry\.wav.*speaker XAF.*OAF/YAF"):
        load_corpus("tess", tmp_path)
    (tmp_path / "XAF_angry" / "XAF_back_angry.wav").unlink()
    touch_wav(tmp_path / "OAF_calm" / "OAF_back_calm.wav")
    with pytest.raises(CorpusError, match=r"OAF_back_calm\.wav.*emotion calm"):
        load_corpus("tess", tmp_path)


# --------------------------------------------------------------------- SAVEE

SAVEE_CODES = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}


@pytest.mark.parametrize("layout", ["flat", "per-speaker"])
def test_savee_layouts(tmp_path, layout):
    for speaker in ("DC", "JE", "JK", "KL"):
        for code in SAVEE_CODES:
            for n in (1, 2, 15):
                name = f"{code}{n:02d}.wav"
                path = (
                    tmp_path / "ALL" / f"{speaker}_{name}"
                    if layout == "flat"
                    else (tmp_path / "AudioData" / speaker / name)
                )
                touch_wav(path, sample_rate_hz=44100)
    add_strays(tmp_path)
    records = load_corpus("savee", tmp_path)
    assert len(records) == 4 * 7 * 3
    assert Counter(r.speaker for r in records) == dict.fromkeys(("DC", "JE", "JK", "KL"), 21)
    assert {r.gender for r in records} == {"male"}
    for code, emotion in SAVEE_CODES.items():
        assert {r.emotion for r in records if r.label == code} == {emotion}
    by_name = {Path(r.path).name: r for r in records}
    sad = by_name["DC_sa01.wav" if layout == "flat" else "sa01.wav"]
    assert (sad.label, sad.emotion, sad.sentence) == ("sa", "sad", "01")


@pytest.mark.parametrize(
    "name, detail",
    [
        ("DC_s01.wav", "emotion code 's'"),
        ("DC_sx01.wav", "emotion code 'sx'"),
        ("DC_a1.wav", "expected SAVEE"),
        ("XY_a01.wav", "speaker XY"),
    ],
)
def test_savee_bad_names(tmp_path, name, detail):
    touch_wav(tmp_path / name)
    with pytest.raises(CorpusError, match=re.escape(name) + ".*" + detail):
        load_corpus("savee", tmp_path)


def test_savee_no_prefix_outside_speaker_folder(tmp_path):
    touch_wav(tmp_path / "misc" / "a01.wav")
    with pytest.raises(CorpusError, match=r"a01\.wav.*no speaker prefix"):
        load_corpus("savee", tmp_path)


# --------------------------------------------------------------------- RAVDESS


def ravdess_name(channel: int, emotion: int, intensity: int, actor: int) -> str:
    return f"03-{channel:02d}-{emotion:02d}-{intensity:02d}-01-01-{actor:02d}.wav"


def make_ravdess_combined(root: Path) -> Path:
    for actor in (1, 2):
        for emotion in range(1, 9):
            touch_wav(
                root / "Audio_Speech_Actors_01-24" / f"Actor_{actor:02d}" / ravdess_name(1, emotion, 1, actor),
                sample_rate_hz=48000,
            )
        for emotion in range(1, 7):
            touch_wav(
                root
                / "Audio_Song_Actors_01-24"
                / f"Actor_{actor:02d}"
                / ravdess_name(2, emotion, 2 if emotion > 1 else 1, actor),
                sample_rate_hz=48000,
            )
    add_strays(root)
    return root


def test_ravdess_combined_folder(tmp_path):
    make_ravdess_combined(tmp_path)
    speech = load_corpus("ravdess", tmp_path)
    song = load_corpus("ravdess-song", tmp_path)
    both = load_corpus("ravdess", tmp_path, vocal_channel="both")
    assert len(speech) == 16 and {r.corpus for r in speech} == {"ravdess"}
    assert len(song) == 12 and {r.corpus for r in song} == {"ravdess-song"}
    assert sorted(both, key=lambda r: r.path) == both and len(both) == 28
    assert {r.speaker_key for r in speech} == {r.speaker_key for r in song}
    assert {r.intensity for r in song} == {"normal", "strong"}
    assert {r.gender for r in speech if r.speaker == "01"} == {"male"}


def test_ravdess_song_folder_as_speech_says_which_corpus(tmp_path):
    make_ravdess_combined(tmp_path)
    with pytest.raises(CorpusError, match=r"no RAVDESS speech files.*use corpus ravdess-song"):
        load_corpus("ravdess", tmp_path / "Audio_Song_Actors_01-24")


@pytest.mark.parametrize(
    "name, detail",
    [
        ("03-01-09-01-01-01-01.wav", "emotion code 09"),
        ("01-01-01-01-01-01-01.wav", "modality 01"),
        ("03-01-01-01-01-01.wav", "expected RAVDESS names"),
        ("03-01-01-01-01-01-02.wav", "actor 02 filed under Actor_01"),
    ],
)
def test_ravdess_bad_names(tmp_path, name, detail):
    touch_wav(tmp_path / "Actor_01" / name)
    with pytest.raises(CorpusError, match=re.escape(name) + ".*" + detail):
        load_corpus("ravdess", tmp_path)


def test_ravdess_bad_vocal_channel_option(tmp_path):
    make_ravdess_combined(tmp_path)
    with pytest.raises(ConfigError, match="vocal_channel 'duet'"):
        load_corpus("ravdess", tmp_path, vocal_channel="duet")


# --------------------------------------------------------------------- EMO-DB, EMOVO, TurEV-DB


def test_emodb_wav_and_flac_any_rate(tmp_path):
    touch_wav(tmp_path / "wav" / "03a01Fa.wav", sample_rate_hz=16000)
    touch_wav(tmp_path / "wav" / "08b10Lc.flac", sample_rate_hz=22050)
    touch_wav(tmp_path / "wav" / "09b03Tb.WAV", sample_rate_hz=44100)
    (tmp_path / "wav" / "03a01Fa.wav.txt").write_text("not audio: ignored")
    records = load_corpus("emodb", tmp_path)
    assert [(r.speaker, r.gender, r.emotion, r.sentence) for r in records] == [
        ("03", "male", "happy", "a01"),
        ("08", "female", "boredom", "b10"),
        ("09", "female", "sad", "b03"),
    ]


def test_emodb_bad_letter(tmp_path):
    touch_wav(tmp_path / "wav" / "03a01Xa.wav")
    with pytest.raises(CorpusError, match=r"03a01Xa\.wav.*emotion letter X.*W/L/E/A/F/T/N"):
        load_corpus("emodb", tmp_path)


def test_emovo(tmp_path):
    touch_wav(tmp_path / "m2" / "sor-m2-n5.wav")
    touch_wav(tmp_path / "f1" / "gio-f1-b1.wav")
    records = load_corpus("emovo", tmp_path)
    assert [(r.speaker, r.gender, r.emotion, r.label, r.language) for r in records] == [
        ("f1", "female", "happy", "gio", "it"),
        ("m2", "male", "surprised", "sor", "it"),
    ]


def test_turev_layout_and_mismatched_code(tmp_path):
    source = tmp_path / "Sound Source"
    touch_wav(source / "Calm" / "1234_sk_acik.wav")
    touch_wav(source / "Sad" / "7895_hl_ogul1.wav")
    records = load_corpus("turev", tmp_path)
    assert [(r.speaker, r.label, r.emotion, r.sentence) for r in records] == [
        ("1234", "Calm", "calm", "acik"),
        ("7895", "Sad", "sad", "ogul1"),
    ]
    assert load_corpus("turev", source) == records
    touch_wav(source / "Happy" / "1234_kz_beste.wav")
    with pytest.raises(CorpusError, match=r"1234_kz_beste\.wav.*emotion code 'kz' in folder Happy"):
        load_corpus("turev", tmp_path)


def test_turev_file_outside_label_folder(tmp_path):
    touch_wav(tmp_path / "Sound Source" / "Bored" / "1234_sk_acik.wav")
    with pytest.raises(CorpusError, match=r"1234_sk_acik\.wav.*folder 'Bored' is not a label"):
        load_corpus("turev", tmp_path)


# --------------------------------------------------------------------- registry


def test_corpus_names_and_default_dirs(tmp_path, monkeypatch):
    assert corpus_names() == [
        "ravdess",
        "ravdess-song",
        "crema-d",
        "tess",
        "savee",
        "emodb",
        "emovo",
        "turev",
        "csv",
        "folder",
    ]
    monkeypatch.setenv("EMOVOX_CORPORA", str(tmp_path))
    assert default_corpora_root() == tmp_path
    expected = {
        "ravdess": "ravdess",
        "ravdess-song": "ravdess-song-excerpt",
        "emodb": "emodb",
        "emovo": "emovo",
        "turev": "turev-db",
    }
    for name, folder in expected.items():
        assert default_corpus_dir(name) == tmp_path / folder
    assert default_corpus_dir("csv") is None and default_corpus_dir("folder") is None
    touch_wav(tmp_path / "emodb" / "wav" / "03a01Fa.flac")
    assert len(load_corpus("emodb")) == 1


def test_default_root_without_env_is_beside_the_repo(monkeypatch):
    monkeypatch.delenv("EMOVOX_CORPORA", raising=False)
    repo = Path(__file__).resolve().parents[1]
    assert default_corpora_root() == repo.parent / "shared" / "corpora"


def test_unknown_corpus_lists_names():
    with pytest.raises(CorpusError, match=r"unknown corpus 'iemocap'.*ravdess, ravdess-song"):
        load_corpus("iemocap", ".")


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(CorpusError, match=r"emodb folder '.*nope' does not exist"):
        load_corpus("emodb", tmp_path / "nope")
    add_strays(tmp_path)
    with pytest.raises(CorpusError, match=r"no \.wav/\.flac files under .* for corpus 'emovo'"):
        load_corpus("emovo", tmp_path)
    with pytest.raises(CorpusError, match="has no default folder"):
        load_corpus("folder")


def test_unknown_option(tmp_path):
    with pytest.raises(ConfigError, match=r"corpus 'emodb' takes no option 'mapping'"):
        load_corpus("emodb", tmp_path, mapping="a=b")


def test_duplicate_copy_of_the_corpus_is_an_error(tmp_path):
    touch_wav(tmp_path / "wav" / "03a01Fa.wav")
    touch_wav(tmp_path / "copy" / "wav" / "03a01Fa.flac")
    with pytest.raises(CorpusError, match=r"03a01Fa\.wav' is a second copy of .*03a01Fa\.flac"):
        load_corpus("emodb", tmp_path)


def test_records_are_immutable_and_sorted(tmp_path):
    make_tess(tmp_path)
    records = load_corpus("tess", tmp_path)
    assert [r.path for r in records] == sorted(r.path for r in records)
    with pytest.raises(dataclasses.FrozenInstanceError):
        records[0].emotion = "happy"
    assert load_corpus("tess", tmp_path) == records  # deterministic
