"""Cold start: a fresh process that predicts one clip; default model beside the CNN and the seed-style pipeline.

Each variant runs ``--repeats`` times in a new Python process; the figure is the
median wall time from process start to the printed answer (imports, model
load, decode, inference), the median CPU time (user + sys, which other
users' load hardly changes; its threads may add up to more than the wall
time), and the process's peak RSS:

- ``emovox predict one.wav --backend onnx``: the installed console script
  (``.venv/bin/emovox``) as a user runs it (onnxruntime only, no torch), with
  the default model;
- the same with ``--backend torch``,
- the Python API ``load_model(backend="onnx").predict(FILE)``,
- with ``--compare cnn`` (the default): ``emovox predict --fast`` (the CNN),
  ONNX and torch,
- the seed-style S3 pipeline (import librosa + torch, build the S3 replica,
  ``librosa.load`` + features + forward).

``one.wav`` is the central 3 s of the first RAVDESS clip as 16 kHz WAV. Peak
RSS is the child's ``ru_maxrss``, read by a small launcher process that starts it (a
child forked straight from this script would report this script's RSS too). With the bundled
model the CLI is run without ``--model``. The load average is printed with
every figure.

    .venv/bin/python bench/cold_start.py [--model DIR|NAME] [--compare cnn] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import bench_model_dir, cut_clips, load_avg, ravdess_files  # noqa: E402

# A small launcher process starts each measured process and reports its rusage. Linux folds
# the RSS a process had before exec into its ru_maxrss, so a child forked straight from this
# script (hundreds of MB after decoding the clip) would report at least this script's RSS.
LAUNCHER = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter(); code = subprocess.call(sys.argv[2:]); wall = time.perf_counter() - t\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "open(sys.argv[1], 'w').write(f'{wall} {u.ru_utime + u.ru_stime} {u.ru_maxrss}')\n"
    "sys.exit(code)\n"
)


def timed(cmd: list[str], repeats: int) -> tuple[float, float, float, float, str]:
    """Median and min wall time, median CPU time (user + sys), max peak RSS over ``repeats`` processes."""
    import tempfile

    walls, cpus, hwm, out = [], [], 0.0, ""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "rusage"
        for _ in range(repeats):
            p = subprocess.run([sys.executable, "-c", LAUNCHER, str(report), *cmd], capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"failed {cmd}: {p.stderr[-1500:]}")
            wall, cpu, maxrss_kb = (float(x) for x in report.read_text().split())
            walls.append(wall)
            cpus.append(cpu)
            hwm = max(hwm, maxrss_kb / 1024)
            out = p.stdout
    return (
        statistics.median(walls),
        min(walls),
        statistics.median(cpus),
        hwm,
        out.strip().splitlines()[-1] if out.strip() else "",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="folder or shipped name (default: the default model)")
    ap.add_argument("--compare", default="cnn", help="shipped model also timed ('none': skip)")
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
        "API load_model(onnx).predict": [
            py,
            "-c",
            (
                f"from emovox.inference import load_model; "
                f"print(load_model({None if bundled else str(model_dir)!r}, backend='onnx').predict({clip!r}).label)"
            ),
        ],
        "seed-style S3 (librosa+torch)": [
            py,
            "-c",
            (
                f"import sys; sys.path.insert(0, {bench!r}); from latency import SeedPipeline; "
                f"print(SeedPipeline(1).predict_file({clip!r}))"
            ),
        ],
    }
    if args.compare != "none":
        variants[f"emovox predict --model {args.compare} (onnx)"] = [
            emovox_cli,
            "predict",
            clip,
            "--backend",
            "onnx",
            "--model",
            args.compare,
        ]
        variants[f"emovox predict --model {args.compare} (torch)"] = [
            emovox_cli,
            "predict",
            clip,
            "--backend",
            "torch",
            "--model",
            args.compare,
        ]
    results = {}
    for name, cmd in variants.items():
        before = load_avg()
        wall, best, cpu, hwm, out = timed(cmd, args.repeats)
        shown = " ".join(out.split())[-60:]
        results[name] = wall
        print(
            f"  {name:32s} {wall:6.2f} s (min {best:.2f}; CPU {cpu:.2f} s)   peak RSS {hwm:6.0f} MB   [{before}]   -> {shown}"
        )
    seed = results["seed-style S3 (librosa+torch)"]
    for name in [n for n in variants if not n.startswith("seed")]:
        print(f"  ratio seed-style / {name}: {seed / results[name]:.2f}x")
    print(f"end: {load_avg()}")


if __name__ == "__main__":
    main()
