"""Streaming latency: from the arrival of the chunk that completes a hop to its event.

Real RAVDESS and EMO-DB speech (clips concatenated, their own silences
between them) is fed to :class:`emovox.inference.streaming.StreamEngine` in
chunks of ``--chunk-s`` (0.1 s, like a microphone block), either simulated
(back to back; the default) or at real pace (``--realtime``: each chunk is
handed over when its last sample would have been recorded). A chunk that
completes a hop returns its event from ``feed``: the time ``feed`` takes is
the latency beyond the hop (the event cannot exist before its last sample).
Printed: p50/p95/max of that latency (wall) for speech windows (VAD + model)
and for windows without speech (VAD only), the CPU time of the speech events
(the compute, which a loaded machine does not inflate), the plain
:meth:`Predictor.probabilities` time of one window measured in the same run
(the reference), and their ratios. Target: <= 50 ms of compute beyond the hop
for the ONNX default model on one thread.

    OMP_NUM_THREADS=1 .venv/bin/python bench/stream_latency.py [--model NAME_OR_DIR ...]
        [--backend onnx] [--seconds 120] [--chunk-s 0.1] [--realtime]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def corpus_speech(seconds: float, sample_rate_hz: int = 16000) -> np.ndarray:
    """About ``seconds`` of real speech: RAVDESS and EMO-DB clips alternating, concatenated."""
    import soundfile as sf

    from emovox.corpora import default_corpora_root

    root = default_corpora_root()
    ravdess = sorted((root / "ravdess" / "Audio_Speech_Actors_01-24").glob("Actor_*/*.flac"))
    emodb = sorted((root / "emodb" / "wav").glob("*.flac"))
    if not ravdess or not emodb:
        sys.exit(f"no RAVDESS/EMO-DB clips under {root}: set EMOVOX_CORPORA")
    files = [f for pair in zip(ravdess[::7], emodb[::3]) for f in pair]
    out, total = [], 0
    for f in files:
        y, sr = sf.read(str(f), dtype="float32", always_2d=True)
        assert sr == sample_rate_hz, f
        out.append(y.mean(axis=1))
        total += out[-1].size
        if total >= seconds * sample_rate_hz:
            break
    return np.concatenate(out)


def percentiles(ms: list[float]) -> str:
    if not ms:
        return "n/a"
    a = np.asarray(ms)
    return (
        f"p50 {np.percentile(a, 50):6.2f} ms  p95 {np.percentile(a, 95):6.2f} ms  max {a.max():6.2f} ms  (n={a.size})"
    )


def bench(
    name: str | None, backend: str, y: np.ndarray, *, chunk_s: float, realtime: bool, hop_s: float, window_s: float
) -> None:
    from emovox.inference import load_model
    from emovox.inference.streaming import StreamEngine

    model = load_model(name, backend=backend, num_threads=1)
    sr = model.sample_rate_hz
    engine = StreamEngine(model, window_s=window_s, hop_s=hop_s)
    chunk = int(round(chunk_s * sr))
    # reference: the plain model call on one window of the same speech (after warm-up)
    window = y[: int(window_s * sr)]
    for _ in range(3):
        model.probabilities([window])
    ref, ref_cpu = [], []
    for i in range(30):
        w = y[i * sr // 2 : i * sr // 2 + int(window_s * sr)]
        c0, t0 = time.process_time(), time.perf_counter()
        model.probabilities([w])
        ref.append(1000 * (time.perf_counter() - t0))
        ref_cpu.append(1000 * (time.process_time() - c0))
    speech, silence, quiet, speech_cpu = [], [], [], []
    start = time.perf_counter()
    for i in range(0, y.size, chunk):
        if realtime:
            due = start + (i + chunk) / sr
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        c0, t0 = time.process_time(), time.perf_counter()
        events = engine.feed(y[i : i + chunk], sr)
        ms, cpu_ms = 1000 * (time.perf_counter() - t0), 1000 * (time.process_time() - c0)
        if not events:
            quiet.append(ms)
        for e in events:
            (speech if e.speech else silence).append(ms)
            if e.speech:
                speech_cpu.append(cpu_ms)
    engine.close()
    p50_speech = float(np.percentile(speech, 50)) if speech else float("nan")
    p50_ref = float(np.percentile(ref, 50))
    info = model.info
    print(
        f"\nmodel {name or 'default'} ({model.backend.name}, {info.config.get('architecture', {}).get('name', '?')}, "
        f"{'fixed ' + format(info.clip_s, 'g') + ' s' if info.fixed_length else 'variable-length'} input), "
        f"VAD {engine.vad}; {y.size / sr:.0f} s of speech clips in {chunk_s:g} s chunks, "
        f"{'real pace' if realtime else 'simulated (back to back)'}; window {window_s:g} s, hop {hop_s:g} s"
    )
    print(f"  event latency beyond the hop, speech window : {percentiles(speech)}")
    print(f"  event latency beyond the hop, no speech     : {percentiles(silence)}")
    print(f"  chunks without an event (VAD + buffering)   : {percentiles(quiet)}")
    print(f"  reference Predictor.probabilities, 1 window : {percentiles(ref)}")
    print(f"  CPU time of a speech event (process)        : {percentiles(speech_cpu)}")
    print(f"  CPU time of the reference call              : {percentiles(ref_cpu)}")
    print(
        f"  ratio speech-event p50 / reference p50      : {p50_speech / p50_ref:.2f} wall, "
        f"{np.percentile(speech_cpu, 50) / max(1e-9, np.percentile(ref_cpu, 50)):.2f} CPU"
    )
    cpu_ok = "meets" if np.percentile(speech_cpu, 95) <= 50 else "MISSES"
    wall_ok = "meets" if np.percentile(speech, 95) <= 50 else "misses"
    print(
        f"  target <= 50 ms of compute beyond the hop   : {cpu_ok} (CPU p95); wall p95 {wall_ok} "
        f"at load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        action="append",
        default=None,
        help="model folder or shipped name (repeatable; default: the default model, and 'cnn' when shipped)",
    )
    parser.add_argument("--backend", default="onnx", choices=("auto", "onnx", "torch"))
    parser.add_argument("--seconds", type=float, default=120.0, help="seconds of speech fed")
    parser.add_argument("--chunk-s", type=float, default=0.1)
    parser.add_argument("--hop-s", type=float, default=0.5)
    parser.add_argument("--window-s", type=float, default=3.0)
    parser.add_argument("--realtime", action="store_true", help="hand chunks over at real pace")
    args = parser.parse_args()
    from emovox.inference import predictor

    names = args.model
    if names is None:
        names = [None]
        shipped = getattr(predictor, "shipped_models", lambda: ())()
        if "cnn" in shipped:
            names.append("cnn")
    print(
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    y = corpus_speech(args.seconds)
    for name in names:
        backend = args.backend
        if backend == "onnx" and not _has_onnx(name):
            backend = "auto"
        bench(name, backend, y, chunk_s=args.chunk_s, realtime=args.realtime, hop_s=args.hop_s, window_s=args.window_s)
    print(f"\nload average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _has_onnx(name: str | None) -> bool:
    from pathlib import Path

    from emovox.inference import default_model_dir, predictor

    resolve = getattr(predictor, "resolve_model_dir", None)
    path = resolve(name) if resolve else (default_model_dir() if name is None else Path(name))
    return (Path(path) / "model.onnx").is_file()


if __name__ == "__main__":
    main()
