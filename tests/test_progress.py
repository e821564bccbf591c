"""Progress of long work (issue 18, point 2): ``predict_timeline(progress=, on_segment=)`` and the
one-line bar of ``emovox predict`` on a terminal (none in logs or pipes, none with ``-q``).

The recording is real speech: EMO-DB sentences of one speaker with pauses (about 40 s).
The service's streamed timeline is tested in ``test_service_progress.py``.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

import emovox
from emovox.audio import load_audio
from emovox.cli.main import main
from emovox.cli.progress import clock
from emovox.corpora import default_corpora_root
from emovox.inference.predictor import PROGRESS_STEP_S
from emovox.inference.timeline import SmoothingStream, smooth_probabilities

EMODB = default_corpora_root() / "emodb" / "wav"
needs_emodb = pytest.mark.skipif(not EMODB.is_dir(), reason=f"no EMO-DB at {EMODB}")
SR = 16000


def emodb_recording(n_clips: int = 14) -> np.ndarray:
    """EMO-DB sentences of speaker 03, each followed by a pause of 0.4 to 1.6 s: a long real recording."""
    clips = sorted(EMODB.glob("03*.flac"))[:n_clips]
    parts = []
    for i, path in enumerate(clips):
        parts += [load_audio(path, sample_rate_hz=SR), np.zeros(int(SR * (0.4 + 0.6 * (i % 3))), np.float32)]
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def long_flac(tmp_path_factory):
    if not EMODB.is_dir():
        pytest.skip(f"no EMO-DB at {EMODB}")
    path = tmp_path_factory.mktemp("progress") / "meeting.flac"
    sf.write(path, emodb_recording(), SR)
    return path


@pytest.fixture(scope="module")
def model():
    return emovox.load_model(num_threads=1)


def _recorder():
    calls: list[tuple[float, float | None]] = []
    return calls, lambda done_s, total_s: calls.append((done_s, total_s))


def _check_calls(calls, *, total_s, duration_s):
    """First (0, total), monotonic, steps of at most PROGRESS_STEP_S, last (duration, duration)."""
    done = [d for d, _ in calls]
    assert calls[0] == (0.0, total_s)
    assert calls[-1] == (duration_s, duration_s)
    assert done == sorted(done)  # never decreases
    assert all(b - a <= PROGRESS_STEP_S + 1e-9 for a, b in zip(done, done[1:]))
    if total_s is not None:
        assert all(d <= total_s for d in done) and all(t == total_s for _, t in calls[:-1])
    else:
        assert all(t is None for _, t in calls[:-1])


# ---------------------------------------------------------------------- the Python API
@needs_emodb
def test_progress_is_monotonic_in_audio_seconds_and_ends_at_the_total(model, long_flac):
    calls, progress = _recorder()
    segments: list = []
    t = model.predict_timeline(str(long_flac), progress=progress, on_segment=lambda i, seg: segments.append((i, seg)))
    total_s = sf.info(long_flac).duration
    _check_calls(calls, total_s=total_s, duration_s=t.duration_s)
    assert t.duration_s == pytest.approx(total_s, abs=1e-3) and total_s > 30
    assert len(calls) >= total_s / PROGRESS_STEP_S  # a bar moves every step, not once per 30 s block
    # every segment was handed over once it was final, in order, as the same object the timeline holds
    assert len(t.segments) >= 10
    assert [i for i, _ in segments] == list(range(len(t.segments)))
    assert all(a is b for (_, a), b in zip(segments, t.segments))
    assert [s.start_s for s in t.segments] == sorted(s.start_s for s in t.segments)
    # the callbacks change nothing: the same timeline without them, and with other decoding blocks
    assert model.predict_timeline(str(long_flac)).to_dict() == t.to_dict()
    assert model.predict_timeline(str(long_flac), block_s=0.7).to_dict() == t.to_dict()


@needs_emodb
def test_total_is_none_for_a_pipe_and_known_for_arrays_and_seekable_files(model, long_flac):
    class Pipe(io.RawIOBase):  # a file object that cannot seek, like stdin
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            return self._data.readinto(buffer)

    data = long_flac.read_bytes()
    reference = model.predict_timeline(str(long_flac)).to_dict()
    calls, progress = _recorder()
    t = model.predict_timeline(io.BufferedReader(Pipe(data)), progress=progress)
    _check_calls(calls, total_s=None, duration_s=t.duration_s)
    assert t.to_dict() == reference
    # a seekable file object: its length is read from the header, then it is decoded from where it was
    with open(long_flac, "rb") as fh:
        calls, progress = _recorder()
        assert model.predict_timeline(fh, progress=progress).to_dict() == reference
    assert calls[0][1] == pytest.approx(sf.info(long_flac).duration)
    # an array: its own length
    y = emodb_recording()
    calls, progress = _recorder()
    t = model.predict_timeline(y, sample_rate=SR, progress=progress)
    _check_calls(calls, total_s=y.size / SR, duration_s=t.duration_s)


@needs_emodb
def test_an_exception_in_the_callback_stops_the_analysis_and_propagates(model, long_flac):
    class Stop(Exception):
        pass

    seen = []

    def progress(done_s, total_s):
        seen.append(done_s)
        if done_s >= 6.0:
            raise Stop(f"cancelled at {done_s} s")

    with pytest.raises(Stop, match="cancelled at 6.0 s"):
        model.predict_timeline(str(long_flac), progress=progress)
    assert seen[-1] == 6.0  # it stopped there, without reading the rest

    def on_segment(i, seg):
        raise Stop(f"segment {i}")

    with pytest.raises(Stop, match="segment 0"):
        model.predict_timeline(str(long_flac), on_segment=on_segment)
    # the predictor is left usable
    assert model.predict_timeline(str(long_flac)).segments


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 30),
    size=st.sampled_from([1, 3, 5]),
    seed=st.integers(0, 2**16),
    chunks=st.lists(st.integers(1, 7), min_size=1, max_size=10),
)
def test_smoothing_stream_equals_smoothing_all_rows_at_once(n, size, seed, chunks):
    """Rows smoothed as they arrive are bit for bit the rows smoothed at the end (pauses split groups)."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(4), size=n).astype(np.float32)
    starts = np.cumsum(rng.choice([0.5, 0.5, 0.5, 2.5], size=n))  # some gaps longer than max_gap_s
    spans = [(float(s), float(s) + 0.5) for s in starts]
    want = smooth_probabilities(probs, spans, size=size, max_gap_s=1.0) if n else np.zeros((0, 4))
    stream = SmoothingStream(size=size, max_gap_s=1.0)
    got: list = []
    i, k = 0, 0
    while i < n:
        step = chunks[k % len(chunks)]
        stream.add(probs[i : i + step], spans[i : i + step])
        i += step
        k += 1
        got += stream.pop_final()
    got += stream.pop_final(end=True)
    assert [j for j, _ in got] == list(range(n))
    for j, row in got:
        assert np.array_equal(row, want[j])


# ---------------------------------------------------------------------- the CLI
@needs_emodb
def test_the_cli_draws_no_bar_when_stderr_is_not_a_terminal(long_flac, capsys):
    assert not sys.stderr.isatty()
    for extra in ([], ["-q"]):
        rc = main(["predict", str(long_flac), "--timeline", "--fast", "--json", *extra])
        out, err = capsys.readouterr()
        assert rc == 0 and out.startswith("[")
        assert err == ""  # nothing at all: no bar, no carriage return, no escape sequence


def _on_a_terminal(args: list[str], *, columns: int = 110) -> tuple[int, str, str]:
    """Run ``emovox ARGS`` with stderr on a pseudo-terminal (stdout a pipe): ``(rc, stdout, stderr)``."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emovox.cli.main", *args], stdout=subprocess.PIPE, stderr=slave, env=env
    )
    os.close(slave)
    out, _ = proc.communicate(timeout=300)
    reader.join(10)
    os.close(master)
    return proc.returncode, out.decode(), b"".join(chunks).decode("utf-8", "replace")


@needs_emodb
def test_the_cli_draws_one_bar_of_audio_seconds_on_a_terminal(long_flac):
    total = clock(sf.info(long_flac).duration)
    rc, out, err = _on_a_terminal(["predict", str(long_flac), "--fast", "--csv"])  # long: a timeline
    assert rc == 0 and out.startswith("file,input_index,kind")
    frames = err.split("\r")
    assert "\n" not in err  # one line, redrawn in place with carriage returns
    drawn = [f for f in frames if f.startswith("meeting.flac: ")]
    assert drawn[0].startswith(f"meeting.flac: 0:00/{total} of audio   0%|")
    assert drawn[-1].startswith(f"meeting.flac: {total}/{total} of audio 100%|")  # it ends full
    assert frames[-1] == "" and frames[-2].strip() == ""  # and is erased at the end
    # -q: nothing, even on a terminal
    rc, out, err = _on_a_terminal(["predict", str(long_flac), "--fast", "--csv", "-q"])
    assert rc == 0 and out.startswith("file,") and err == ""


@needs_emodb
def test_several_inputs_show_the_recording_seconds_beside_the_files_bar(long_flac):
    short = sorted(EMODB.glob("03*.flac"))[0]
    rc, out, err = _on_a_terminal(["predict", str(short), str(long_flac), "--fast", "--json"])
    assert rc == 0 and len(json.loads(out)) == 2
    total = clock(sf.info(long_flac).duration)
    assert "\n" not in err  # still one line
    # the bar counts files; while the long one is analysed, its postfix follows its audio seconds
    assert "1/2 [" in err and f"meeting.flac 0:00/{total} (0 %) of audio]" in err
    assert f"meeting.flac {total}/{total} (100 %) of audio]" in err and "2/2 [" in err
