"""``emovox listen`` run as a real subprocess: a corpus clip through --input --realtime, and
the microphone path through a real PortAudio device (ALSA's ``file`` plugin playing a corpus
clip as its capture input, since CI has no microphone)."""

from __future__ import annotations

import io
import json
import math
import os
import pty
import select
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import emovox
from emovox.cli.listen import BLOCK_S
from emovox.corpora import default_corpora_root
from emovox.inference import default_model_dir
from emovox.inference.gate import NO_SPEECH_S

CLIP = default_corpora_root() / "ravdess/Audio_Speech_Actors_01-24/Actor_01/03-01-05-02-01-01-01.flac"
DURATION_S = 4.104125  # of CLIP
EMOVOX = [sys.executable, "-m", "emovox.cli.main"]
KEYS = {
    "t",
    "start_s",
    "end_s",
    "speech",
    "label",
    "confidence",
    "scores",
    "speech_s",
    "reason",
    "quality",
    "model",
    "model_version",
}
#: Synthetic speech shipped with emovox (always present).
HELLO = Path(emovox.__file__).parent / "examples" / "hello.flac"

pytestmark = [
    pytest.mark.skipif(not (default_model_dir() / "config.json").is_file(), reason="no bundled model"),
]
needs_clip = pytest.mark.skipif(not CLIP.is_file(), reason=f"no RAVDESS clip at {CLIP}")


def listen(*args, env=None, timeout=120, **kwargs) -> subprocess.CompletedProcess:
    environ = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [*EMOVOX, "listen", *args], capture_output=True, text=True, timeout=timeout, env=environ, **kwargs
    )


def json_events(stdout: str) -> list[dict]:
    """The events of ``--json`` output, each checked against the event contract."""
    events = [json.loads(line) for line in stdout.splitlines()]
    for e in events:
        assert set(e) == KEYS
        assert e["model"] in ("default", "cnn") and e["model_version"]  # the model that answered, on every line
        assert 0 <= e["speech_s"] <= e["end_s"] - e["start_s"] + 0.05
        assert e["quality"] is None or isinstance(e["quality"]["flags"], list)
        if e["speech"]:
            assert e["label"] not in (None, "no_speech") and 0 < e["confidence"] <= 1
            assert sum(e["scores"].values()) == pytest.approx(1.0, abs=1e-3)
            assert (e["reason"] is None) == (e["label"] != "unknown")
            assert e["reason"] in (None, "too_little_speech", "low_confidence")
        else:
            assert (e["label"], e["confidence"], e["scores"], e["reason"]) == ("no_speech", 0.0, {}, "no_speech")
            assert e["speech_s"] < NO_SPEECH_S
    return events


def one_line_error(result: subprocess.CompletedProcess, match: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [
        line
        for line in result.stderr.splitlines()  # the start-up note aside
        if line.strip() and not line.startswith("emovox: listening on ")
    ]
    assert len(lines) == 1 and lines[0].startswith("emovox: error: "), result.stderr
    assert match in lines[0]
    assert "Traceback" not in result.stderr


@needs_clip
@pytest.mark.corpora
def test_realtime_file_prints_one_json_line_per_hop_at_real_pace(monkeypatch):
    result = listen("--input", str(CLIP), "--realtime", "--json")
    assert result.returncode == 0, result.stderr
    events = json_events(result.stdout)
    assert len(events) == math.ceil(DURATION_S / 0.5)
    assert [e["t"] for e in events[:-1]] == [0.5 * (i + 1) for i in range(len(events) - 1)]
    assert events[-1]["end_s"] == pytest.approx(DURATION_S, abs=1e-3)
    assert any(e["speech"] for e in events) and not events[0]["speech"]  # the clip opens in silence
    assert events[-1]["label"] == "angry"  # RAVDESS emotion 05, strong intensity
    # the pace, on a clock of the test's own (the same command in this process): a loaded
    # machine can only make a wall clock later, so it could not tell paced from unpaced
    paced, written_at, slept = _on_a_fake_clock(monkeypatch, "--input", str(CLIP), "--realtime", "--json")
    assert json_events(paced) == events
    for e, at in zip(events, written_at):  # each line once its audio has "arrived", not a block later
        assert e["t"] - 1e-6 <= at <= e["t"] + BLOCK_S + 1e-6
    assert slept == pytest.approx(DURATION_S, abs=BLOCK_S)
    assert _on_a_fake_clock(monkeypatch, "--input", str(CLIP), "--json")[2] == 0  # no --realtime: no waiting


class _FakeClock:
    """``time`` for :mod:`emovox.cli.listen`: ``sleep`` moves the clock on at once, nothing waits."""

    def __init__(self) -> None:
        self.now = self.start = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


class _TimedOutput(io.StringIO):
    """stdout that notes the clock's reading (seconds since its start) at each line written."""

    def __init__(self, clock: _FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.at: list[float] = []

    def write(self, text: str) -> int:
        self.at += [self.clock.now - self.clock.start] * text.count("\n")
        return super().write(text)


def _on_a_fake_clock(monkeypatch, *args: str) -> tuple[str, list[float], float]:
    """``emovox listen ARGS`` in this process on a :class:`_FakeClock`: (stdout, line times, time slept)."""
    from emovox.cli import listen as listen_module
    from emovox.cli.main import main

    clock = _FakeClock()
    out = _TimedOutput(clock)
    with monkeypatch.context() as m:
        m.setattr(listen_module, "time", clock)
        m.setattr(sys, "stdout", out)
        assert main(["listen", "--threads", "1", *args]) == 0
    return out.getvalue(), out.at, clock.now - clock.start


@needs_clip
@pytest.mark.corpora
def test_human_lines_options_and_duration_limit():
    result = listen(
        "--input",
        str(CLIP),
        "--hop-s",
        "1",
        "--window-s",
        "2",
        "--duration-s",
        "3.2",
        "--vad",
        "webrtc",
        "--min-confidence",
        "0.99",
        "--smoothing",
        "1",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4  # 1, 2, 3 s and the 3.2 s tail
    assert lines[-1].split()[:2] == ["3.2", "s"]
    for line in lines:  # "t s  label  confidence  speech S s  top-3 (reason) [flags]" or "... (no speech)"
        words = line.split()
        assert words[4] == "speech" and float(words[5]) >= 0 and words[6] == "s"
        if words[2] == "no_speech":
            assert "(no speech)" in line and float(words[3]) == 0.0
        elif words[2] == "unknown":
            assert "(low_confidence)" in line or "(too_little_speech)" in line
        else:
            assert float(words[3]) >= 0.99


@needs_clip
@pytest.mark.corpora
def test_terminal_gets_bars_redrawn_in_place():
    main, sub = pty.openpty()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*EMOVOX, "listen", "--input", str(CLIP)], stdout=sub, stderr=subprocess.PIPE, env=env)
    os.close(sub)
    out = b""
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
    assert proc.wait(timeout=60) == 0
    text = out.decode()
    assert text.count("\x1b[8F") == math.ceil(DURATION_S / 0.5) - 1  # header + 7 labels, redrawn
    assert "angry" in text and "█" in text and "(no speech)" in text


@needs_clip
@pytest.mark.corpora
def test_ctrl_c_flushes_and_exits_130(tmp_path):
    import soundfile as sf

    from emovox.audio import load_audio

    long = tmp_path / "long.wav"  # 82 s at real pace: the interrupt lands long before the end
    sf.write(long, np.tile(load_audio(CLIP), 20), 16000)
    long_s = 20 * DURATION_S
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [*EMOVOX, "listen", "--input", str(long), "--realtime", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # Ctrl-C as from a terminal even when the suite runs as a background job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    first = proc.stdout.readline() + proc.stdout.readline()  # the 0.5 and 1 s events: streaming is under way
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip() == "emovox: interrupted"
    events = json_events(first + rest)
    assert 2 <= len(events) < math.ceil(long_s / 0.5)
    assert events[-1]["t"] == events[-1]["end_s"] < long_s


def test_a_tone_is_no_speech_and_telephone_band_speech_is_flagged(tmp_path):
    """Every window of a tone answers no_speech; speech recorded at 8 kHz carries the narrowband flag,
    in the JSON events and on the text lines."""
    import soundfile as sf

    from emovox.audio import load_audio, resample

    t = np.arange(3 * 16000) / 16000
    sf.write(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    tone = listen("--input", str(tmp_path / "tone.wav"), "--json")
    assert tone.returncode == 0, tone.stderr
    events = json_events(tone.stdout)
    assert len(events) == 6 and all(e["label"] == "no_speech" for e in events)
    sf.write(tmp_path / "phone.wav", resample(load_audio(HELLO), orig_hz=16000, target_hz=8000), 8000)
    phone = listen("--input", str(tmp_path / "phone.wav"), "--json")
    assert phone.returncode == 0, phone.stderr
    speech = [e for e in json_events(phone.stdout) if e["speech"]]
    assert len(speech) >= 4 and all("narrowband" in e["quality"]["flags"] for e in speech[3:])  # full windows
    lines = listen("--input", str(tmp_path / "phone.wav"), "--plain").stdout.splitlines()
    assert len(lines) == len(json_events(phone.stdout))
    assert all("[narrowband" in line for line in lines[-3:])


# --------------------------------------------------------------------------- microphone path
def _empty_home(tmp_path: Path) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"HOME": str(home)}


def needs_portaudio() -> None:
    """Skip with a one-line reason where sounddevice or Debian's libportaudio2 is missing.

    ``pytest.importorskip`` is not enough: without the shared library the import raises
    ``OSError`` ("PortAudio library not found"), not ``ImportError``.
    """
    try:
        import sounddevice  # noqa: F401
    except ImportError:
        pytest.skip("sounddevice is not installed (pip install 'emovox[live]')")
    except OSError:
        pytest.skip("PortAudio is missing: install Debian's libportaudio2")


def _no_input_device(env: dict) -> bool:
    code = "import sounddevice as sd; print(sum(d['max_input_channels'] > 0 for d in sd.query_devices()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env})
    return out.returncode == 0 and out.stdout.strip() == "0"


def test_no_input_device_is_one_line_and_exit_2(tmp_path):
    needs_portaudio()
    env = _empty_home(tmp_path)
    if not _no_input_device(env):
        pytest.skip("this machine has an audio input device")
    one_line_error(listen("--duration-s", "1", env=env), "no audio input device")
    one_line_error(listen("--device", "nonexistent mic", env=env), "no audio input device")
    listed = listen("--list-devices", env=env)
    assert listed.returncode == 0 and "no audio input devices found" in listed.stdout


@needs_clip
@pytest.mark.corpora
def test_microphone_path_through_a_real_portaudio_device(tmp_path):
    """PortAudio records from ALSA's ``file`` plugin, whose capture input is the corpus clip.

    The plugin has no clock (it delivers as fast as it is read), so ``--duration-s`` stops at
    the clip's end; the events must equal those of the same clip through ``--input``.
    """
    needs_portaudio()
    import soundfile as sf

    y, sr = sf.read(str(CLIP), dtype="float32")
    raw = tmp_path / "capture.f32"
    raw.write_bytes(y.astype("<f4").tobytes())
    env = _empty_home(tmp_path)
    Path(env["HOME"], ".asoundrc").write_text(
        f'pcm.!default {{\n  type file\n  slave.pcm "null"\n  file "/dev/null"\n  infile "{raw}"\n  format "raw"\n}}\n'
    )
    listed = listen("--list-devices", env=env)
    if listed.returncode != 0 or "default" not in listed.stdout:
        pytest.skip(f"ALSA's file plugin is not available here: {listed.stdout}{listed.stderr}")
    mic = listen("--sample-rate", str(sr), "--duration-s", str(DURATION_S), "--json", env=env)
    assert mic.returncode == 0, mic.stderr
    assert "listening on 'default' at 16000 Hz" in mic.stderr
    from_file = listen("--input", str(CLIP), "--json")
    assert json_events(mic.stdout) == json_events(from_file.stdout)


# --------------------------------------------------------------------------- usage errors
@pytest.mark.parametrize(
    "args,match",
    [
        (["--realtime"], "--realtime applies to --input FILE"),
        (["--input", "/nonexistent/clip.wav"], "no such file"),
        (["--input", "x.wav", "--device", "1"], "--device and --sample-rate apply to the microphone"),
        (["--duration-s", "0"], "--duration-s 0.0: must be a positive number"),
        (["--sample-rate", "10"], "--sample-rate 10: expected 1000 to 384000 Hz"),
        (["--hop-s", "5", "--input", str(CLIP)], "hop_s=5 must not exceed window_s=3"),
        (["--window-s", "0.1", "--input", str(CLIP)], "window_s=0.1 must be in [0.5, 30]"),
        (["--threads", "0"], "--threads 0: must be at least 1"),
        (["--model", "/nonexistent/model", "--input", str(CLIP)], "does not exist"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args, match):
    one_line_error(listen(*args), match)


def test_argparse_errors_exit_2():
    result = listen("--vad", "bogus")
    assert result.returncode == 2 and "invalid choice" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_device_that_stops_delivering_audio_is_one_line_and_exit_2(tmp_path):
    """A real PortAudio device (ALSA ``file`` plugin) reading a FIFO that goes quiet after 0.5 s.

    The FIFO is held open for writing, so the device's reads block as a stuck or unplugged
    device's would: the stall watchdog ends the command with one line and exit 2 after
    printing the events of the audio it got, and the process does not hang on the stuck stream
    (it ends by itself: a hang is the ``subprocess.TimeoutExpired`` of the bounded wait).
    """
    needs_portaudio()
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)
    env = _empty_home(tmp_path)
    Path(env["HOME"], ".asoundrc").write_text(
        f'pcm.!default {{\n  type file\n  slave.pcm "null"\n  file "/dev/null"\n  infile "{fifo}"\n  format "raw"\n}}\n'
    )
    fd = os.open(fifo, os.O_RDWR)  # a writer that never closes: reads block, no EOF
    try:
        os.write(fd, np.zeros(8000, "<f4").tobytes())  # 0.5 s of silence, then nothing
        result = listen("--sample-rate", "16000", "--json", env=env, timeout=120)
    finally:
        os.close(fd)
    one_line_error(result, "delivered no audio for 3 s: was it disconnected?")
    assert all(not e["speech"] for e in json_events(result.stdout))
