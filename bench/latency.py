"""Single-clip latency: emovox ``predict(path)``, default model beside the CNN and the seed-style pipeline, same run.

Prints per-clip wall time (decode + resample + speech gate + quality flags +
model, p50/p95/mean) for the default model (and the same without the speech
gate, ``gate=False``, to show its cost) (the Whisper-backed one: its shipped ONNX file, a float32 ONNX
export of it for reference, and torch), the small CNN (``cnn``: ONNX float32,
int8, torch), and the seed-style pipeline S3 used (``librosa.load`` at 22.05 kHz, 2.5 s from 0.6 s,
ZCR + RMS + 20 MFCC x 108 frames = 2376 values, a standard scaler, the S3
Conv1D replica from ``emovox.models.seeds``), then the ratio.

The helpers here (:func:`bench_model_dir`, :func:`SeedPipeline`, :func:`ravdess_files`)
are shared by the other bench scripts.

    .venv/bin/python bench/latency.py [--model DIR|NAME] [--compare cnn] [--clips 40] [--threads 1] [--clip-s 3]

By default every clip is the central 3.0 s of a RAVDESS recording, written once
as 16 kHz 16-bit WAV under /tmp/emovox-bench (``--clip-s 0``: the whole FLAC
files, 2.9-5.3 s). The pipelines are timed interleaved clip by clip (the order
rotating), so load from other users of a shared machine hits them alike; the
load average is printed at start and end, and each pipeline's median CPU time
per clip (one thread: close to its wall time on an idle core) beside its wall time.

Without ``--model`` the bundled default model is used (``--compare cnn``, the
default, adds the shipped CNN; ``--compare none`` drops it); if there is none
yet, an *untrained* flagship of the same architecture (speed is what is
measured) is built in /tmp and labelled so. A model whose ``config.json``
declares its ONNX precision (``onnx.precision``, e.g. the shipped default's
int8) is timed with that file as shipped instead of a fresh int8 export.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

RAVDESS8 = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
BENCH_DIR = Path("/tmp/emovox-bench")


def ravdess_files(n: int | None = None, *, actors: str = "*") -> list[str]:
    from emovox.corpora import default_corpora_root

    root = default_corpora_root() / "ravdess" / "Audio_Speech_Actors_01-24"
    files = sorted(str(p) for p in root.glob(f"Actor_{actors}/*.flac"))
    if not files:
        sys.exit(f"no RAVDESS files under {root}: set EMOVOX_CORPORA")
    if n is not None:
        step = max(1, len(files) // n)
        files = files[::step][:n]
    return files


def shipped_precision(model_dir: Path) -> str | None:
    """The ONNX precision an artifact declares (``config.json`` ``onnx.precision``), if any."""
    import json

    onnx = json.loads((Path(model_dir) / "config.json").read_text()).get("onnx") or {}
    return onnx.get("precision")


def variants(model_dir: Path, prefix: str) -> list[tuple[str, Path, str]]:
    """``(name, artifact dir, backend)`` to time for a model: its ONNX file(s), then torch.

    A model shipped at a declared precision: that file, plus a float32 export
    for reference; otherwise the float32 ONNX file and an int8 export.
    """
    precision = shipped_precision(model_dir)
    if precision:
        fp32 = fp32_dir(model_dir)
        return [
            (f"{prefix} onnx shipped", model_dir, "onnx"),
            (f"{prefix} onnx fp32", fp32, "onnx"),
            (f"{prefix} torch", model_dir, "torch"),
        ]
    return [
        (f"{prefix} onnx fp32", model_dir, "onnx"),
        (f"{prefix} onnx int8", int8_dir(model_dir), "onnx"),
        (f"{prefix} torch", model_dir, "torch"),
    ]


def fp32_dir(model_dir: Path) -> Path:
    """A float32 ONNX export of a model shipped at another precision (cached under /tmp/emovox-bench)."""
    import hashlib

    d = BENCH_DIR / f"fp32-{hashlib.sha1(str(Path(model_dir).resolve()).encode()).hexdigest()[:10]}"
    src = Path(model_dir) / "model.onnx"
    if not (d / "model.onnx").is_file() or (d / "model.onnx").stat().st_mtime < src.stat().st_mtime:
        from emovox.export import export_onnx

        export_onnx(model_dir, d)
    return d


def bench_model_dir(model: str | None) -> tuple[Path, str]:
    """``(artifact dir with model.onnx, description)``; builds an untrained flagship if needed.

    ``model`` is a folder or a shipped model's name (``"cnn"``); ``None``: the default model.
    """
    from emovox.inference import default_model_dir
    from emovox.inference.predictor import resolve_model_dir

    if model:
        d, what = resolve_model_dir(model), f"model {model}"
    elif (default_model_dir() / "config.json").is_file():
        d, what = default_model_dir(), "bundled model"
    else:
        d = BENCH_DIR / "untrained-flagship"
        what = "UNTRAINED flagship stand-in (bundled model not built yet; speed figures only)"
        if not (d / "model.onnx").is_file():
            import torch

            from emovox.models.artifact import make_config, save_artifact
            from emovox.models.registry import build_model
            from emovox.models.spec import TaskSpec

            torch.manual_seed(0)
            spec = TaskSpec(labels=RAVDESS8, sample_rate_hz=16000, clip_s=3.0)
            save_artifact(d, build_model("flagship", spec).eval(), make_config(spec, "flagship", {}))
    if not (d / "model.onnx").is_file():
        from emovox.export import export_onnx

        export_onnx(d, d)
    if shipped_precision(d):
        fp32_dir(d)
        return d, what
    int8 = int8_dir(d)
    if (
        not (int8 / "model.onnx").is_file()
        or (int8 / "model.onnx").stat().st_mtime < (d / "model.onnx").stat().st_mtime
    ):
        from emovox.export import export_onnx

        export_onnx(d, int8, quantize=True)
    return d, what


def int8_dir(model_dir: Path) -> Path:
    """Where the int8 export of ``model_dir`` is cached."""
    import hashlib

    return BENCH_DIR / f"int8-{hashlib.sha1(str(Path(model_dir).resolve()).encode()).hexdigest()[:10]}"


class SeedPipeline:
    """The S3 seed's inference path: librosa features of 2.5 s at 22.05 kHz -> S3 Conv1D.

    The network is the S3 replica (``emovox.models.seeds``, 7.19 M parameters),
    untrained (speed only); the scaler is an identity-cost stand-in
    ``(x - mean) / std`` with fixed statistics.
    """

    sample_rate_hz = 22050
    n_frames = 108

    def __init__(self, threads: int = 1) -> None:
        import torch

        torch.set_num_threads(threads)
        self.torch = torch
        try:
            from emovox.models.seeds import S3Conv1D

            self.model = S3Conv1D(n_classes=8).eval()
            self.what = "S3 replica emovox.models.seeds.S3Conv1D, untrained: speed only"
        except ImportError:  # pragma: no cover - seeds module missing
            self.model = _S3StandIn().eval()
            self.what = "S3-shaped stand-in (seeds module missing)"
        self.mean, self.std = np.float32(0.0), np.float32(1.0)

    def features(self, y: np.ndarray) -> np.ndarray:
        import librosa

        zcr = librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=512)
        rms = librosa.feature.rms(y=y, frame_length=2048, hop_length=512)
        mfcc = librosa.feature.mfcc(y=y, sr=self.sample_rate_hz, n_mfcc=20)
        x = np.concatenate([zcr, rms, mfcc], axis=0)[:, : self.n_frames]
        x = np.pad(x, ((0, 0), (0, self.n_frames - x.shape[1])))
        return ((x.T.reshape(-1) - self.mean) / self.std).astype(np.float32)  # 22 x 108 = 2376

    def logits(self, feats: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(np.atleast_2d(feats))).numpy()

    def predict_file(self, path: str) -> int:
        import librosa

        y, _ = librosa.load(path, sr=self.sample_rate_hz, duration=2.5, offset=0.6)
        return int(self.logits(self.features(y)).argmax())


class _S3StandIn:  # pragma: no cover - only when emovox.models.seeds is absent
    def __new__(cls):
        from torch import nn

        layers, c = [], 1
        for c_out, k in ((512, 5), (512, 5), (256, 5), (256, 3), (128, 3)):
            layers += [
                nn.Conv1d(c, c_out, k, padding=k // 2),
                nn.ReLU(),
                nn.BatchNorm1d(c_out),
                nn.MaxPool1d(5 if k == 5 else 3, 2, padding=1),
            ]
            c = c_out
        return nn.Sequential(
            nn.Unflatten(1, (1, 2376)), *layers, nn.Flatten(), nn.LazyLinear(512), nn.ReLU(), nn.Linear(512, 8)
        )


def load_avg() -> str:
    import os

    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def cut_clips(files: list[str], clip_s: float) -> list[str]:
    """The central ``clip_s`` seconds of each file as 16-bit WAV in /tmp (written once)."""
    import soundfile as sf

    out_dir = BENCH_DIR / f"clips-{clip_s:g}s"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        dst = out_dir / (Path(f).stem + ".wav")
        if not dst.is_file():
            y, sr = sf.read(f, dtype="float32", always_2d=True)
            y = y.mean(axis=1)
            n = int(round(clip_s * sr))
            start = max(0, (y.size - n) // 2)
            sf.write(str(dst), y[start : start + n], sr, subtype="PCM_16")
        out.append(str(dst))
    return out


def _stats(ts: list[float]) -> str:
    a = np.array(ts) * 1e3
    return f"p50 {np.percentile(a, 50):7.1f} ms  p95 {np.percentile(a, 95):7.1f} ms  mean {a.mean():7.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="folder or shipped name (default: the default model)")
    ap.add_argument("--compare", default="cnn", help="second model timed in the same run ('none': skip)")
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clip-s", type=float, default=3.0, help="cut each clip to its central S seconds (0: whole files)")
    args = ap.parse_args()
    import soundfile as sf

    model_dir, what = bench_model_dir(args.model)
    runs = variants(model_dir, "default" if args.model is None else "model")
    if args.compare != "none":
        other_dir, other = bench_model_dir(args.compare)
        runs += variants(other_dir, args.compare)
        what += f"; compared with {other}"
    files = ravdess_files(args.clips)
    if args.clip_s > 0:
        files = cut_clips(files, args.clip_s)
    dur = np.mean([sf.info(f).duration for f in files])
    print(
        f"latency over {len(files)} RAVDESS clips (mean {dur:.2f} s, {Path(files[0]).suffix}), "
        f"{args.threads} thread(s); model: {what}; shipped ONNX precision: "
        f"{shipped_precision(model_dir) or 'float32'}"
    )
    print(f"start: {load_avg()}")
    from emovox.inference import load_model

    pipes = {}
    for name, d, backend in runs:
        m = load_model(d, backend=backend, num_threads=args.threads)
        m.predict(files[0])  # warm-up
        pipes[name] = m.predict
        if name == runs[0][0]:  # the cost of the speech gate and quality flags, same model without them
            ungated = load_model(d, backend=backend, num_threads=args.threads, gate=False)
            ungated.predict(files[0])
            pipes[f"{name}, no gate"] = ungated.predict
    seed = SeedPipeline(args.threads)
    seed.predict_file(files[0])
    pipes["seed-style S3"] = seed.predict_file
    names = list(pipes)
    results = {name: [] for name in names}
    cpu = {name: [] for name in names}
    for k, f in enumerate(files):
        for j in range(len(names)):  # rotate the order clip by clip
            name = names[(k + j) % len(names)]
            t, c = time.perf_counter(), time.process_time()
            pipes[name](f)
            results[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    for name in names:
        extra = f"   [{seed.what}, librosa features]" if name == "seed-style S3" else ""
        # CPU time of this process per clip: what other users' load changes least
        print(f"  {name:22s} {_stats(results[name])}  CPU p50 {np.median(cpu[name]) * 1e3:6.1f} ms{extra}")
    base = np.median(results["seed-style S3"])
    for name in names[:-1]:
        print(f"  ratio seed / {name}: {base / np.median(results[name]):.2f}x faster (p50)")
    if args.compare != "none":
        a, b = names[0], f"{args.compare} onnx fp32"
        print(f"  ratio {a} / {b}: {np.median(results[a]) / np.median(results[b]):.1f}x slower (p50)")
    print(f"end: {load_avg()}")


if __name__ == "__main__":
    main()
