"""Bad options and paths give one line and exit 2, never a traceback (regressions from review)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import emovox
import emovox.audio
from emovox.audio import trim_for_model
from emovox.cli.main import main
from emovox.inference.gate import FRAME_S

EXAMPLE = str(Path(emovox.__file__).parent / "examples" / "hello.flac")


@pytest.mark.parametrize(
    "options, message",
    [
        (["--threads", "-1"], r"--threads -1: must be at least 1"),
        (["--threads", "0"], r"--threads 0: must be at least 1"),
        (["--window-s", "0", "--timeline"], r"--window-s 0.0: must be a positive"),
        (["--hop-s", "-1", "--timeline"], r"--hop-s -1.0: must be a positive"),
        (["--window-s", "1", "--hop-s", "2"], r"--hop-s 2.0 is longer than --window-s 1.0"),
    ],
)
def test_predict_rejects_bad_options_with_exit_2(options, message, capsys):
    assert main(["predict", EXAMPLE, *options]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err)


@pytest.mark.parametrize("flag", ["-o", "--timeline-png"])
def test_predict_output_path_that_is_a_folder_is_a_usage_error(flag, tmp_path, capsys):
    assert main(["predict", EXAMPLE, flag, str(tmp_path)]) == 2
    assert "is a folder: give a file path" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_export_to_an_existing_file_is_a_model_error(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("keep me")
    assert main(["export", str(emovox.inference.default_model_dir()), "--format", "onnx", "--out", str(target)]) == 2
    assert "is a file: give a folder" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_trim_for_model_keeps_the_clip_when_too_little_would_remain():
    sr = 16000
    rng = np.random.default_rng(0)
    quiet = np.zeros(sr * 2, np.float32)
    burst = quiet.copy()
    burst[sr : sr + sr // 10] = rng.standard_normal(sr // 10).astype(np.float32)  # 0.1 s of sound
    assert trim_for_model(burst, sample_rate_hz=sr).size == burst.size  # 0.1 s < 0.5 s: untouched
    speech = quiet.copy()
    speech[sr // 2 : sr // 2 + sr] = rng.standard_normal(sr).astype(np.float32)  # 1 s of sound
    trimmed = trim_for_model(speech, sample_rate_hz=sr)
    assert sr <= trimmed.size < speech.size


def test_integer_pcm_arrays_are_scaled_like_float_audio():
    model = emovox.load_model(backend="onnx")
    y = emovox.audio.load_audio(EXAMPLE)
    pcm = np.round(y * 32767).astype(np.int16)
    a, b = model.predict(y, sample_rate=16000), model.predict(pcm, sample_rate=16000)
    assert max(abs(a.scores[k] - b.scores[k]) for k in a.scores) < 1e-3
    # the speech gate and the quality flags see the same signal too
    assert a.speech_s == pytest.approx(b.speech_s, abs=FRAME_S) and a.flags == b.flags
    assert a.label == b.label != "no_speech"


@pytest.mark.parametrize("fmt", ["--json", "--csv", "--timeline"])
def test_top_k_and_output_file_with_a_no_speech_answer(fmt, tmp_path, capsys):
    """An answer without scores (no_speech) goes through --top-k and -o in every format."""
    import soundfile as sf

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000 * 2, np.float32), 16000)
    out = tmp_path / "out.txt"
    assert main(["predict", str(silent), "--top-k", "1", "-o", str(out), fmt, "-q"]) == 0, capsys.readouterr().err
    text = out.read_text()
    assert "no_speech" in text and "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("bad", [{"top_db": "80"}, {"f_min_hz": "x"}])
def test_corrupt_saved_log_mel_settings_are_config_errors(bad):
    from emovox.errors import ConfigError
    from emovox.features.spectral import LogMelConfig

    with pytest.raises(ConfigError, match="invalid log-mel settings"):
        LogMelConfig.from_dict(bad)


def test_wav_whose_data_size_was_left_at_zero_still_decodes(tmp_path):
    """Streaming writers may leave the WAV data-chunk size at 0 ("unknown")."""
    import soundfile as sf

    path = tmp_path / "stream.wav"
    y = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    sf.write(path, y, 16000, subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    at = raw.index(b"data") + 4
    raw[at : at + 4] = (0).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    out = emovox.audio.load_audio(path)
    assert abs(out.size - 16000) <= 160
