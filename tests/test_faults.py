"""Faults: kill -9, a full disk, a closed pipe and Ctrl-C, against the real ``emovox`` processes.

- ``kill -9`` mid-run of ``emovox features`` and ``emovox predict -o``: the old
  output is still there byte for byte, no partial file is visible, and a
  re-run completes. (Training: ``tests/test_training_cli.py::
  test_kill_9_then_resume_ends_bit_identical_to_an_uninterrupted_run``; batch
  scoring: ``tests/test_batch_kill.py``.)
- A full disk during every CLI write (``RLIMIT_FSIZE``, which works without
  privileges: Python ignores SIGXFSZ, so writes past the limit fail with
  EFBIG; and, when this process may mount, a real 256 KiB tmpfs for ENOSPC):
  one ``emovox: error:`` line, exit 2, the old file intact, no temporary left.
- ``emovox predict ... | head -1``: exit 0, nothing on stderr.
- SIGINT during a long predict, features and training run: exit 130, one line
  ``emovox: interrupted``, no partial output.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from bad_inputs import CLI, model_args, speech, wav_bytes  # noqa: E402

N_FILES = 240


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    """A folder of N_FILES one-second clips (links to 4 real files)."""
    folder = tmp_path_factory.mktemp("many")
    for i in range(4):
        (folder / f"real{i}.wav").write_bytes(wav_bytes(speech(1.0, seed=i)))
    for i in range(N_FILES - 4):
        os.symlink(f"real{i % 4}.wav", folder / f"clip{i:03d}.wav")
    return folder


def _files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.glob("*.wav"))


def _start(args, *, fsize: int | None = None, cwd=None) -> subprocess.Popen:
    def limit() -> None:
        # Ctrl-C as from a terminal even when the suite runs as a background job (which ignores SIGINT)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.Popen(
        [sys.executable, *CLI, *map(str, args)],
        cwd=cwd,
        preexec_fn=limit,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _finish(proc: subprocess.Popen, timeout_s: float = 300) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"hung: killed after {timeout_s} s") from None
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _wait_for(predicate, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert proc.poll() is None, f"ended before the fault could be injected: {proc.communicate()}"
        assert time.monotonic() < deadline, "the run never reached the point to interrupt"
        time.sleep(0.01)


def _reads_from(proc: subprocess.Popen, folder: Path) -> bool:
    """Whether ``proc`` has a file of ``folder`` open right now (Linux ``/proc``)."""
    try:
        fds = os.listdir(f"/proc/{proc.pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{proc.pid}/fd/{fd}").startswith(str(folder)):
                return True
        except OSError:
            continue
    return False


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


OLD = b"the previous output, which must survive\n"


# ------------------------------------------------------------------ kill -9
@pytest.mark.timeout(600)
def test_kill_9_during_predict_output(many, tmp_path):
    out = tmp_path / "scores.json"
    out.write_bytes(OLD)
    proc = _start(["predict", *model_args(), "-q", "--json", "-o", out, *_files(many)])

    def writing() -> bool:  # the temporary output exists and holds some predictions
        return any(p.name.startswith(".scores.json.") and p.stat().st_size > 0 for p in tmp_path.iterdir())

    _wait_for(writing, proc)
    proc.send_signal(signal.SIGKILL)
    assert _finish(proc)[0] == -signal.SIGKILL
    assert out.read_bytes() == OLD
    assert _visible(tmp_path) == ["scores.json"]  # only a hidden .scores.json.* temporary may remain

    code, _, err = _finish(_start(["predict", *model_args(), "-q", "--json", "-o", out, *_files(many)]))
    assert code == 0, err
    assert len(json.loads(out.read_text())) == N_FILES


@pytest.mark.timeout(600)
def test_kill_9_during_features(many, tmp_path):
    out = tmp_path / "features.safetensors"
    out.write_bytes(OLD)
    cache = tmp_path / ".cache"
    args = ["features", *_files(many), "--set", "mfcc-functionals", "--out", out, "-q", "--cache-dir", cache]
    proc = _start(args)
    _wait_for(lambda: cache.is_dir() and sum(1 for _ in cache.rglob("*") if _.is_file()) >= 2, proc)
    proc.send_signal(signal.SIGKILL)
    assert _finish(proc)[0] == -signal.SIGKILL
    assert out.read_bytes() == OLD
    assert _visible(tmp_path) == ["features.safetensors"]

    code, printed, err = _finish(_start(args))
    assert code == 0, err
    from emovox.features.store import read_features

    assert len(read_features(out).items) == N_FILES


# ------------------------------------------------------------------ full disk: RLIMIT_FSIZE
def _full_disk_check(code: int, err: str, folder: Path, old: Path, visible: list[str]) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err[-3000:])
    assert len(lines) == 1 and lines[0].startswith("emovox: error: cannot write"), err[-3000:]
    assert "File too large" in lines[0] or "No space left" in lines[0], lines[0]
    assert old.read_bytes() == OLD
    assert sorted(p.name for p in folder.iterdir()) == visible  # not even a hidden temporary


@pytest.mark.parametrize("fmt", ["--json", "--csv", "table"])
def test_full_disk_predict_output(many, tmp_path, fmt):
    out = tmp_path / "scores.out"
    out.write_bytes(OLD)
    flags = [] if fmt == "table" else [fmt]
    code, _, err = _finish(_start(["predict", *model_args(), "-q", *flags, "-o", out, *_files(many)[:60]], fsize=2000))
    _full_disk_check(code, err, tmp_path, out, ["scores.out"])


def test_full_disk_predict_stdout(many, tmp_path):
    """stdout redirected to a file on a full disk: one line (it used to be blamed on an input file)."""
    target = tmp_path / "redirected.txt"
    with open(target, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, *CLI, "predict", *model_args(), "-q", "--json", *_files(many)[:60]],
            stdout=fh,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000)),
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        _, err = proc.communicate(timeout=300)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, err.decode()[-3000:]
    assert lines[0].startswith("emovox: error: cannot write standard output: File too large")


def test_full_disk_timeline_png(many, tmp_path):
    png = tmp_path / "timeline.png"
    png.write_bytes(OLD)
    code, _, err = _finish(
        _start(["predict", *model_args(), "-q", "--timeline", "--timeline-png", png, _files(many)[0]], fsize=4000)
    )
    _full_disk_check(code, err, tmp_path, png, ["timeline.png"])


@pytest.mark.parametrize("feature_set", ["mfcc-functionals", "logmel"])
def test_full_disk_features(many, tmp_path, feature_set):
    out = tmp_path / "f.safetensors"
    out.write_bytes(OLD)
    code, _, err = _finish(
        _start(["features", *_files(many)[:20], "--set", feature_set, "--out", out, "-q"], fsize=3000)
    )
    _full_disk_check(code, err, tmp_path, out, ["f.safetensors"])


@pytest.fixture(scope="module")
def ravdess(tmp_path_factory) -> Path:
    from test_training_cli import make_ravdess

    return make_ravdess(tmp_path_factory.mktemp("ravdess"), actors=4, duration_s=0.5)


@pytest.mark.timeout(600)
def test_full_disk_training(ravdess, tmp_path):
    """The checkpoint write fails: one line (it was an OSError traceback), the run folder holds
    only complete files."""
    run = tmp_path / "run"
    code, _, err = _finish(
        _start(
            [
                "train",
                "--recipe",
                "tiny",
                "--corpus",
                f"ravdess={ravdess}",
                "--out",
                run,
                "--no-progress",
                "--threads",
                "1",
                "--epochs",
                "2",
            ],
            fsize=30000,
        ),
        600,
    )
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "cannot write" in lines[0] and "File too large" in lines[0], err
    for name in run.iterdir():
        assert not name.name.startswith("."), f"temporary left: {name}"
        if name.suffix == ".json":
            json.loads(name.read_text())  # complete


# ------------------------------------------------------------------ full disk: a real tmpfs
@pytest.fixture
def tiny_tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.strip() or 'not permitted'}); "
            "the RLIMIT_FSIZE tests cover the same paths"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path, *, leave_bytes: int) -> None:
    """Fill the tmpfs until about ``leave_bytes`` remain."""
    stat = os.statvfs(mount)
    free = stat.f_bavail * stat.f_frsize
    with open(mount / ".filler", "wb") as fh:
        try:
            fh.write(b"\0" * max(0, free - leave_bytes))
        except OSError:
            pass


def test_full_tmpfs_predict_and_features(many, tiny_tmpfs):
    old_scores = tiny_tmpfs / "scores.json"
    old_scores.write_bytes(OLD)
    old_features = tiny_tmpfs / "f.safetensors"
    old_features.write_bytes(OLD)
    _fill(tiny_tmpfs, leave_bytes=4096)
    code, _, err = _finish(_start(["predict", *model_args(), "-q", "--json", "-o", old_scores, *_files(many)[:100]]))
    _full_disk_check(code, err, tiny_tmpfs, old_scores, [".filler", "f.safetensors", "scores.json"])
    code, _, err = _finish(_start(["features", *_files(many)[:40], "--set", "logmel", "--out", old_features, "-q"]))
    _full_disk_check(code, err, tiny_tmpfs, old_features, [".filler", "f.safetensors", "scores.json"])


# ------------------------------------------------------------------ a closed pipe
def test_predict_piped_into_head_exits_quietly(many):
    command = " ".join(
        [
            sys.executable,
            *[f"'{a}'" for a in CLI],
            "predict",
            *model_args(),
            "-q",
            "--json",
            *[f"'{f}'" for f in _files(many)],
            "| head -1",
        ]
    )
    done = subprocess.run(
        ["bash", "-c", f'set -o pipefail; {command}; echo "rc=${{PIPESTATUS[0]}}" >&2'],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.stdout == "[\n"
    assert done.stderr.strip() == "rc=0", done.stderr[-3000:]


# ------------------------------------------------------------------ Ctrl-C
def _interrupted(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    code, _, err = _finish(proc, 120)
    assert code == 130, (code, err[-3000:])
    assert err.strip().splitlines() == ["emovox: interrupted"], err[-3000:]
    return err


@pytest.mark.timeout(300)
def test_sigint_during_predict(many, tmp_path):
    out = tmp_path / "scores.json"
    out.write_bytes(OLD)
    proc = _start(["predict", *model_args(), "-q", "--json", "-o", out, *_files(many)])
    _wait_for(lambda: any(p.name.startswith(".scores") and p.stat().st_size > 0 for p in tmp_path.iterdir()), proc)
    _interrupted(proc)
    assert out.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]  # temporary removed


@pytest.mark.timeout(300)
@pytest.mark.parametrize("feature_set", ["mfcc-functionals", "logmel"])
def test_sigint_during_features(many, tmp_path, feature_set):
    out = tmp_path / "f.safetensors"
    cache = tmp_path / "cache"
    args = ["features", *_files(many), "--set", feature_set, "--out", out, "-q"]
    if feature_set == "mfcc-functionals":
        args += ["--cache-dir", cache]
        ready = lambda: cache.is_dir() and any(p.is_file() for p in cache.rglob("*"))  # noqa: E731
    else:  # the fast front end reads 240 clips in ~2.5 s: give it each clip 8 times, interrupt once it reads them
        args = ["features", *(_files(many) * 8), "--set", feature_set, "--out", out, "-q"]
        ready = lambda: _reads_from(proc, many)  # noqa: E731
    proc = _start(args)
    _wait_for(ready, proc)
    _interrupted(proc)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".f.safetensors")]


@pytest.mark.timeout(600)
def test_sigint_during_training(ravdess, tmp_path):
    run = tmp_path / "run"
    proc = _start(
        [
            "train",
            "--recipe",
            "tiny",
            "--corpus",
            f"ravdess={ravdess}",
            "--out",
            run,
            "--no-progress",
            "--threads",
            "1",
            "--epochs",
            "200",
        ]
    )
    _wait_for(lambda: (run / "log.json").is_file(), proc, timeout_s=300)
    _interrupted(proc)
    assert not (run / "model").exists()
    json.loads((run / "log.json").read_text())
