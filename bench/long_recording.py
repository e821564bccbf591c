"""A one-hour recording as a timeline: real-time factor and peak memory, vs the seed-style pipeline.

The load average is printed before each child process and at the end.

Builds (once) a one-hour 16 kHz FLAC in /tmp by concatenating RAVDESS speech
clips with random silences (0.5-3 s, seeded), then, each in a fresh process:

- emovox: ``load_model(backend=...).predict_timeline(path)``: streamed decoding
  (``emovox.audio.stream_audio``, 30 s blocks), Silero VAD via onnxruntime,
  3 s windows (hop 1.5 s) over speech, smoothing, summary;
- seed-style: what the seed systems do with a recording: ``librosa.load`` of the
  whole file at 22.05 kHz, 2.5 s windows every 2.5 s, ZCR + RMS + 20 MFCC
  features, the S3 Conv1D replica. It is run on the first ``--seed-minutes``
  (default 10) and its real-time factor compared; its memory grows with the
  length, so its peak RSS is also reported for that length.

Real-time factor = audio duration / wall time (higher is faster). Peak RSS is
the process's VmHWM (/proc/self/status).

    .venv/bin/python bench/long_recording.py [--model DIR] [--minutes 60] [--backend onnx]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def vm_hwm_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def build_long_file(path: Path, minutes: float, seed: int = 0) -> Path:
    """Concatenate RAVDESS clips (all actors, shuffled) with 0.5-3 s silences up to ``minutes``."""
    import soundfile as sf
    from latency import ravdess_files

    if path.is_file() and abs(sf.info(str(path)).duration - minutes * 60) < 1:
        return path
    rng = np.random.default_rng(seed)
    files = ravdess_files()
    order = rng.permutation(len(files))
    target = int(minutes * 60 * 16000)
    written = 0
    tmp = path.with_suffix(".partial.flac")
    with sf.SoundFile(str(tmp), "w", samplerate=16000, channels=1, subtype="PCM_16") as out:
        i = 0
        while written < target:
            gap = np.zeros(int(rng.uniform(0.5, 3.0) * 16000), np.float32)
            y, sr = sf.read(files[order[i % len(order)]], dtype="float32")
            i += 1
            y = y if y.ndim == 1 else y.mean(axis=1)
            chunk = np.concatenate([gap, y])[: target - written]
            out.write(chunk)
            written += chunk.size
    os.replace(tmp, path)
    return path


def run_emovox(path: str, model_dir: str, backend: str, threads: int | None) -> dict:
    from emovox.inference import load_model

    t0 = time.perf_counter()
    m = load_model(model_dir, backend=backend, num_threads=threads)
    t1 = time.perf_counter()
    tl = m.predict_timeline(path)
    t2 = time.perf_counter()
    return {
        "load_s": t1 - t0,
        "wall_s": t2 - t1,
        "duration_s": tl.duration_s,
        "segments": len(tl.segments),
        "speech_s": tl.summary["speech_s"],
        "dominant": tl.summary["dominant"],
        "peak_rss_mb": vm_hwm_mb(),
        "torch_imported": "torch" in sys.modules,
    }


def run_seed(path: str, minutes: float, threads: int) -> dict:
    import librosa
    from latency import SeedPipeline

    seed = SeedPipeline(threads)
    t0 = time.perf_counter()
    y, sr = librosa.load(path, sr=seed.sample_rate_hz, duration=minutes * 60)
    win = int(2.5 * sr)
    feats = [seed.features(y[i : i + win]) for i in range(0, y.size - win + 1, win)]
    for i in range(0, len(feats), 32):
        seed.logits(np.stack(feats[i : i + 32]))
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "duration_s": y.size / sr,
        "windows": len(feats),
        "peak_rss_mb": vm_hwm_mb(),
        "what": seed.what,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--backend", default="onnx", choices=("onnx", "torch"))
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--seed-minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--file", default="/tmp/emovox-long-recording.flac")
    ap.add_argument("--no-seed", action="store_true", help="skip the seed-style pipeline")
    ap.add_argument("--child", choices=("emovox", "seed"), help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "emovox":
        print(json.dumps(run_emovox(args.file, args.model_dir, args.backend, args.threads)))
        return
    if args.child == "seed":
        print(json.dumps(run_seed(args.file, args.seed_minutes, args.threads or 1)))
        return

    from latency import bench_model_dir, load_avg

    model_dir, what = bench_model_dir(args.model)
    t = time.perf_counter()
    path = build_long_file(Path(args.file), args.minutes)
    print(f"recording: {path} ({args.minutes:g} min, built/checked in {time.perf_counter() - t:.1f} s)")
    print(f"model: {what}; backend {args.backend}; threads {args.threads or 'default'}")

    def child(kind: str) -> dict:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--file",
            str(path),
            "--model-dir",
            str(model_dir),
            "--backend",
            args.backend,
            "--seed-minutes",
            str(args.seed_minutes),
        ]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    print(f"before emovox: {load_avg()}")
    e = child("emovox")
    rtf_e = e["duration_s"] / e["wall_s"]
    print(
        f"emovox timeline : {e['duration_s'] / 60:.1f} min audio in {e['wall_s']:.1f} s "
        f"-> {rtf_e:.0f}x real time; peak RSS {e['peak_rss_mb']:.0f} MB; "
        f"{e['segments']} segments, speech {e['speech_s'] / 60:.1f} min, dominant {e['dominant']}; "
        f"model load {e['load_s']:.2f} s; torch imported: {e['torch_imported']}"
    )
    if args.no_seed:
        print(f"end: {load_avg()}")
        return
    print(f"before seed-style: {load_avg()}")
    s = child("seed")
    rtf_s = s["duration_s"] / s["wall_s"]
    print(
        f"seed-style      : {s['duration_s'] / 60:.1f} min audio in {s['wall_s']:.1f} s "
        f"-> {rtf_s:.0f}x real time; peak RSS {s['peak_rss_mb']:.0f} MB "
        f"(whole file in memory; grows with length); {s['windows']} windows [{s['what']}]"
    )
    print(f"ratio (real-time factor emovox / seed-style): {rtf_e / rtf_s:.1f}x")
    print(f"end: {load_avg()}")


if __name__ == "__main__":
    main()
