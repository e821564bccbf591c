"""``emovox batch`` is loss-free under ``kill -9``: a real kill of the whole process group, then a re-run.

The job runs as a subprocess (in its own session, so the kill reaches the
driver and the Ray processes it started in that group); it is killed once some
but not all part files exist, then started again with the same command. The
last input is a named pipe nobody writes to (given as a ``file://`` URI), so the first run cannot finish
however fast or slow the machine is: the kill always lands mid-job. Before the
re-run the pipe is replaced by a real clip at the same path. The re-run must
keep the parts that exist (same bytes), write the rest, and end with exactly
one row per input, no temporary files, and no Ray process of the killed run
left alive.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from waiting import wait_until

pytest.importorskip("ray.data")
psutil = pytest.importorskip("psutil")

from emovox.corpora import default_corpora_root
from emovox.testing import speech_like

EMOVOX = str(Path(sys.executable).with_name("emovox"))
N_INPUTS = 600
SHARD = 4


def _inputs(tmp_path: Path) -> list[str]:
    """Real RAVDESS clips (repeated to N_INPUTS), else copies of one synthetic clip's path."""
    root = default_corpora_root() / "ravdess" / "Audio_Speech_Actors_01-24"
    clips = sorted(str(p) for p in root.glob("Actor_*/*.flac"))
    if not clips:
        import soundfile as sf

        sf.write(tmp_path / "clip.wav", speech_like(duration_s=2.0, sample_rate_hz=16000, seed=0), 16000)
        clips = [str(tmp_path / "clip.wav")]
    return [clips[i % len(clips)] for i in range(N_INPUTS)]


def _descendants(proc: subprocess.Popen) -> set:
    try:
        return set(psutil.Process(proc.pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return set()


def _alive(procs) -> list:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def test_kill_9_then_resume_gives_exactly_one_row_per_input(tmp_path):
    paths = _inputs(tmp_path)
    gate = tmp_path / f"gate{Path(paths[0]).suffix}"  # opening it blocks: the first run cannot end
    os.mkfifo(gate)
    paths[-1] = gate.as_uri()  # as a URI: a local input path must be a regular file
    listing = tmp_path / "inputs.txt"
    listing.write_text("\n".join(paths) + "\n")
    out = tmp_path / "scores"
    parts = out / "parquet"
    cmd = [
        EMOVOX,
        "batch",
        f"@{listing}",
        "--out",
        str(out),
        "--model",
        "cnn",
        "--shard-size",
        str(SHARD),
        "--workers",
        "1",
        "--batch-size",
        "1",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    n_shards = N_INPUTS // SHARD

    first = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tree: set = set()

    def three_parts_written() -> bool:
        tree.update(_descendants(first))
        assert first.poll() is None, f"the job ended before the kill: {first.stderr.read().decode()[-500:]}"
        return parts.is_dir() and len(list(parts.glob("part-*.parquet"))) >= 3

    wait_until(three_parts_written, "the first run to write three part files", timeout_s=300)
    tree |= _descendants(first)
    os.killpg(first.pid, signal.SIGKILL)  # the whole process group, at once
    first.wait(timeout=10)
    first.stderr.close()
    kept = {p.name: p.read_bytes() for p in parts.glob("part-*.parquet")}
    assert 0 < len(kept) < n_shards, f"{len(kept)} of {n_shards} parts at the kill"
    gate.unlink()
    shutil.copyfile(paths[0], gate)  # the same path, now a real clip

    second = subprocess.run(cmd + ["-q"], env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    summary = second.stderr.strip().splitlines()[-1]
    assert summary.startswith(f"emovox batch: {N_INPUTS} files, {len(kept) * SHARD} done before, 0 failed")

    # the parts of the killed run were kept as they were, the others written once
    for name, data in kept.items():
        assert (parts / name).read_bytes() == data
    table = pq.read_table(parts)
    index = table.column("input_index").to_pylist()
    assert len(index) == N_INPUTS and sorted(index) == list(range(N_INPUTS))  # none lost, none doubled
    by_index = dict(zip(index, table.column("file").to_pylist()))
    assert [by_index[i] for i in range(N_INPUTS)] == paths
    assert table.column("error").null_count == N_INPUTS
    # both runs wrote the same columns: the speech gate's fields on every row
    assert table.schema.names[8:11] == ["speech_s", "reason", "flags"]
    assert set(table.column("kind").to_pylist()) == {"file"} and table.column("model").null_count == 0
    assert table.column("speech_s").null_count == 0 and table.column("flags").null_count == 0
    assert {pq.read_schema(p) for p in parts.glob("part-*.parquet")} == {table.schema}
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]

    # no Ray process of the killed run outlives it (Ray's workers leave once their raylet is gone)
    gone, alive = psutil.wait_procs(list(tree), timeout=45)
    alive = _alive(alive)
    assert not alive, [(p.pid, p.cmdline()[:2]) for p in alive]
