"""Batch scoring throughput: in-process predict vs ``emovox batch`` on Ray, 1 and 2 workers, one run.

Inputs: the shared RAVDESS speech clips (1440), the list repeated up to
``--files`` (default 10,000). Every variant scores the same list with the same
model through the ONNX backend, one thread per process:

- in-process, 1 process: ``load_model`` + ``Predictor.iter_predict`` (what
  ``emovox predict`` does), in a fresh child process;
- in-process, 2 processes: the same in 2 child processes, half the list each;
- Ray, 1 and 2 workers: :func:`emovox.batch.run_batch` (actors, Parquet parts
  written atomically) on one embedded Ray started once.

Times are wall clock, model loading and process start included. Ray's
start-up is stated apart: ``ray.init`` (once, outside the job times), and the
time to a job's first part (the actor pool coming up, one shard scored). The
per-worker rate after the first part gives the scaling law to N machines.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python bench/batch_throughput.py [--files 10000] [--model cnn]
        [--shard-size 256] [--repeats 1]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


class CpuMeter:
    """CPU seconds (user + system) of this process and every descendant, sampled while a variant runs.

    On a shared machine wall time measures our slice of the CPUs as much as our
    code; CPU seconds per clip do not depend on the others' load. Descendants
    (pool processes, Ray's GCS, raylet and workers) are polled every 0.2 s and
    their last reading kept, so processes that exit before the end still count
    (up to 0.2 s of their life).
    """

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._me = psutil.Process()
        self._seen: dict[int, tuple[float, float]] = {}  # pid -> (create time, CPU s)
        self._gone = 0.0  # CPU s of processes whose pid was reused
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _cpu(self, proc) -> float:
        t = proc.cpu_times()
        return t.user + t.system

    def _sample(self) -> None:
        for proc in self._me.children(recursive=True):
            try:
                created, cpu = proc.create_time(), self._cpu(proc)
            except self._psutil.Error:
                continue
            old = self._seen.get(proc.pid)
            if old is not None and abs(old[0] - created) > 1.0:  # a new process with a reused pid
                self._gone += old[1] - self._base.get(proc.pid, (0.0, 0.0))[1]
                self._base.pop(proc.pid, None)
            self._seen[proc.pid] = (created, cpu)

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def __enter__(self) -> CpuMeter:
        self._base: dict[int, tuple[float, float]] = {}
        self._sample()
        self._base = dict(self._seen)
        self._self0 = self._cpu(self._me)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()
        children = sum(cpu - self._base.get(pid, (0.0, 0.0))[1] for pid, (_, cpu) in self._seen.items())
        self.seconds = self._cpu(self._me) - self._self0 + children + self._gone


def _score_in_process(args: tuple[str, list[str]]) -> float:
    """Child process: load the model and score the paths as ``emovox predict`` does; returns seconds."""
    model, paths = args
    t0 = time.perf_counter()
    from emovox.inference import load_model

    predictor = load_model(model, backend="onnx", num_threads=1)
    n = 0
    for _, result in predictor.iter_predict(paths):
        n += not isinstance(result, Exception)
    if n != len(paths):
        raise RuntimeError(f"{len(paths) - n} files failed")
    return time.perf_counter() - t0


def in_process(model: str, paths: list[str], processes: int) -> float:
    """Wall seconds to score ``paths`` in ``processes`` spawned processes (contiguous parts)."""
    ctx = mp.get_context("spawn")
    step = -(-len(paths) // processes)
    chunks = [(model, paths[i : i + step]) for i in range(0, len(paths), step)]
    t0 = time.perf_counter()
    with ctx.Pool(processes) as pool:
        pool.map(_score_in_process, chunks)
    return time.perf_counter() - t0


def on_ray(model: str, paths: list[str], workers: int, shard_size: int):
    """:class:`BatchSummary` of one ``run_batch`` job (Ray already running), in a fresh output folder."""
    from emovox.batch import read_results, run_batch

    out = Path(tempfile.mkdtemp(prefix="emovox-batch-bench-"))
    listing = out / "inputs.txt"
    listing.write_text("\n".join(paths) + "\n")
    try:
        summary = run_batch(
            [],
            lists=[str(listing)],
            out_dir=out / "scores",
            model=model,
            workers=workers,
            shard_size=shard_size,
            quiet=True,
            keep_ray=True,
        )
        if summary.n_failed or read_results(out / "scores").num_rows != len(paths):
            raise RuntimeError(f"Ray job lost or failed rows: {summary.line()}")
        return summary
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000, help="inputs (the RAVDESS list repeated)")
    parser.add_argument("--model", default="cnn", help="model folder or shipped name (default: cnn)")
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each variant (best is kept)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from emovox.batch.ray_job import start_ray, stop_ray
    from emovox.corpora import default_corpora_root

    clips = sorted(
        str(p) for p in (default_corpora_root() / "ravdess" / "Audio_Speech_Actors_01-24").glob("Actor_*/*.flac")
    )
    if not clips:
        print("RAVDESS not found under the corpora root", file=sys.stderr)
        return 2
    paths = [clips[i % len(clips)] for i in range(args.files)]
    print(
        f"# batch throughput: {len(paths)} files (RAVDESS {len(clips)} clips repeated), model {args.model!r}, "
        f"ONNX, 1 thread per process, {os.cpu_count()} CPUs"
    )
    print(f"# load before: {_load()}")

    t_init = start_ray(num_cpus=os.cpu_count())
    results: dict[str, float] = {}
    steady: dict[str, float] = {}
    first_part: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, run in (
            ("in-process, 1 process", lambda: in_process(args.model, paths, 1)),
            ("in-process, 2 processes", lambda: in_process(args.model, paths, 2)),
            ("Ray, 1 worker", lambda: on_ray(args.model, paths, 1, args.shard_size)),
            ("Ray, 2 workers", lambda: on_ray(args.model, paths, 2, args.shard_size)),
        ):
            with CpuMeter() as meter:
                got = run()
            seconds = got if isinstance(got, float) else got.seconds
            cpu[name] = min(cpu.get(name, float("inf")), meter.seconds)
            if seconds < results.get(name, float("inf")):
                results[name] = seconds
                if not isinstance(got, float):
                    steady[name], first_part[name] = got.steady_clips_per_s, got.first_part_s
            print(
                f"  {name:24s} {seconds:7.1f} s  {len(paths) / seconds:7.1f} clips/s  "
                f"CPU {meter.seconds:6.1f} s ({1000 * meter.seconds / len(paths):.2f} ms/clip)  "
                f"[{_load().split('load average: ')[-1]}]",
                flush=True,
            )
    stop_ray()

    rate = {k: len(paths) / v for k, v in results.items()}
    print()
    print(
        "| variant | seconds | clips/s | vs in-process, same processes | after the first part, clips/s "
        "| CPU ms/clip (all processes) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for k, v in results.items():
        ref = rate["in-process, 2 processes"] if "2 " in k else rate["in-process, 1 process"]
        after = f"{steady[k]:.1f}" if k in steady else ""
        print(f"| {k} | {v:.1f} | {rate[k]:.1f} | {rate[k] / ref:.2f}x | {after} | {1000 * cpu[k] / len(paths):.2f} |")
    print(
        f"CPU per clip, Ray 2 workers / in-process 2 processes: "
        f"{cpu['Ray, 2 workers'] / cpu['in-process, 2 processes']:.2f} (the overhead Ray adds, load-independent)"
    )
    print()
    print(
        f"Ray start-up: ray.init {t_init:.1f} s (once per job, not in the times above); first part "
        f"written after {first_part['Ray, 1 worker']:.1f} s (1 worker) / {first_part['Ray, 2 workers']:.1f} s "
        f"(2 workers): the actor pool coming up and one shard of {args.shard_size}"
    )
    scale = rate["Ray, 2 workers"] / rate["Ray, 1 worker"]
    within = rate["Ray, 2 workers"] / rate["in-process, 2 processes"]
    print(
        f"Ray 2 workers / 1 worker: {scale:.2f}x (target >= 1.6x); "
        f"Ray 2 workers / in-process 2 processes: {within:.2f} (target >= 0.80)"
    )
    per_worker = steady["Ray, 1 worker"]
    eff = steady["Ray, 2 workers"] / (2 * per_worker)
    print(
        f"Per worker after start-up: {per_worker:.1f} clips/s; 2 workers: {steady['Ray, 2 workers']:.1f} "
        f"clips/s (parallel efficiency {eff:.2f})"
    )
    print(
        f"Scaling law: F files on N machines of W workers (one per core) take about "
        f"{t_init:.0f} s + {first_part['Ray, 2 workers']:.0f} s + F / (N * W * {per_worker:.0f} * e) s, "
        f"e the parallel efficiency ({eff:.2f} at W = 2 on this machine)"
    )
    print(f"# load after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
