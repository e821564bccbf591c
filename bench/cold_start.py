"""Cold start: a fresh process that predicts one clip, emovox vs the seed-style pipeline.

Each variant runs ``--repeats`` times in a new Python process; the figure is the
median wall time from process start to the printed answer (imports, model
load, decode, inference), the median CPU time (user + sys, which other
users' load hardly changes; its threads may add up to more than the wall
time), and the process's peak RSS:

- ``emovox predict one.wav --backend onnx``: the installed console script
  (``.venv/bin/emovox``) as a user runs it (onnxruntime only, no torch);
- the same with ``--backend torch``,
- the Python API ``load_model(backend="onnx").predict(FILE)``,
- the seed-style S3 pipeline (import librosa + torch, build the S3 replica,
  ``librosa.load`` + features + forward).

``one.wav`` is the central 3 s of the first RAVDESS clip as 16 kHz WAV. Peak
RSS is the child's ``ru_maxrss`` (``os.wait4``), i.e. VmHWM. With the bundled
model the CLI is run without ``--model``. The load average is printed with
every figure.

    .venv/bin/python bench/cold_start.py [--model DIR] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import bench_model_dir, cut_clips, load_avg, ravdess_files  # noqa: E402


def timed(cmd: list[str], repeats: int) -> tuple[float, float, float, float, str]:
    """Median and min wall time, median CPU time (user + sys), max peak RSS over ``repeats`` processes."""
    import os

    walls, cpus, hwm, out = [], [], 0.0, ""
    for _ in range(repeats):
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(p.pid, 0)
        walls.append(time.perf_counter() - t)
        p.returncode = os.waitstatus_to_exitcode(status)
        out, err = p.stdout.read().decode(), p.stderr.read().decode()
        p.stdout.close()
        p.stderr.close()
        if p.returncode != 0:
            sys.exit(f"failed {cmd}: {err[-1500:]}")
        hwm = max(hwm, usage.ru_maxrss / 1024)
        cpus.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(walls), min(walls), statistics.median(cpus), hwm, out.strip().splitlines()[-1] if out.strip() else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from emovox.inference import default_model_dir

    model_dir, what = bench_model_dir(args.model)
    bundled = model_dir.resolve() == default_model_dir().resolve()
    clip = cut_clips(ravdess_files(1), 3.0)[0]
    emovox_cli = str(Path(sys.executable).with_name("emovox"))
    model_arg = [] if bundled else ["--model", str(model_dir)]
    print(f"cold start, {args.repeats} fresh processes each (median, min); model: {what}; clip {clip}")
    bench = str(Path(__file__).resolve().parent)
    py = sys.executable
    variants = {
        "emovox predict --backend onnx": [emovox_cli, "predict", clip, "--backend", "onnx", *model_arg],
        "emovox predict --backend torch": [emovox_cli, "predict", clip, "--backend", "torch", *model_arg],
        "API load_model(onnx).predict": [py, "-c", (
            f"from emovox.inference import load_model; "
            f"print(load_model({None if bundled else str(model_dir)!r}, backend='onnx').predict({clip!r}).label)")],
        "seed-style S3 (librosa+torch)": [py, "-c", (
            f"import sys; sys.path.insert(0, {bench!r}); from latency import SeedPipeline; "
            f"print(SeedPipeline(1).predict_file({clip!r}))")],
    }
    results = {}
    for name, cmd in variants.items():
        before = load_avg()
        wall, best, cpu, hwm, out = timed(cmd, args.repeats)
        shown = " ".join(out.split())[-60:]
        results[name] = wall
        print(f"  {name:32s} {wall:6.2f} s (min {best:.2f}; CPU {cpu:.2f} s)   peak RSS {hwm:6.0f} MB   [{before}]   -> {shown}")
    seed = results["seed-style S3 (librosa+torch)"]
    for name in list(variants)[:3]:
        print(f"  ratio seed-style / {name}: {seed / results[name]:.1f}x")
    print(f"end: {load_avg()}")


if __name__ == "__main__":
    main()
