"""Cold start: a fresh process that predicts one clip, emovox vs the seed-style pipeline.

Each variant runs ``--repeats`` times in a new Python process; the figure is the
median wall time from process start to the printed answer (imports, model
load, decode, inference), and the process's peak RSS:

- ``emovox predict FILE --backend onnx`` (the CLI; onnxruntime only, no torch),
- the same with ``--backend torch``,
- the Python API ``load_model(backend="onnx").predict(FILE)``,
- the seed-style S3 pipeline (import librosa + torch, build the S3 replica,
  ``librosa.load`` + features + forward).

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

from latency import bench_model_dir, ravdess_files  # noqa: E402

HWM = ("import atexit, sys\n"
       "def _hwm():\n"
       "    for l in open('/proc/self/status'):\n"
       "        if l.startswith('VmHWM:'): sys.stderr.write('HWM ' + l.split()[1] + '\\n')\n"
       "atexit.register(_hwm)\n")


def timed(code: str, repeats: int) -> tuple[float, float]:
    walls, hwm = [], 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", HWM + code], capture_output=True, text=True)
        walls.append(time.perf_counter() - t)
        if out.returncode != 0:
            sys.exit(f"failed: {out.stderr[-1500:]}")
        hwm = max(hwm, max(int(l.split()[1]) for l in out.stderr.splitlines() if l.startswith("HWM")) / 1024)
    return statistics.median(walls), hwm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    model_dir, what = bench_model_dir(args.model)
    clip = ravdess_files(1)[0]
    print(f"cold start, median of {args.repeats} fresh processes; model: {what}")
    bench = str(Path(__file__).resolve().parent)
    variants = {
        "emovox predict --backend onnx": (
            f"import sys; from emovox.cli.main import main; "
            f"sys.exit(main(['predict', '-q', '--backend', 'onnx', '--model', {str(model_dir)!r}, {clip!r}]))"),
        "emovox predict --backend torch": (
            f"import sys; from emovox.cli.main import main; "
            f"sys.exit(main(['predict', '-q', '--backend', 'torch', '--model', {str(model_dir)!r}, {clip!r}]))"),
        "API load_model(onnx).predict": (
            f"from emovox.inference import load_model; "
            f"print(load_model({str(model_dir)!r}, backend='onnx').predict({clip!r}).label)"),
        "seed-style S3 (librosa+torch)": (
            f"import sys; sys.path.insert(0, {bench!r}); from latency import SeedPipeline; "
            f"print(SeedPipeline(1).predict_file({clip!r}))"),
    }
    results = {}
    for name, code in variants.items():
        wall, hwm = timed(code, args.repeats)
        results[name] = wall
        print(f"  {name:32s} {wall:6.2f} s   peak RSS {hwm:6.0f} MB")
    seed = results["seed-style S3 (librosa+torch)"]
    for name in list(variants)[:3]:
        print(f"  ratio seed-style / {name}: {seed / results[name]:.1f}x")


if __name__ == "__main__":
    main()
