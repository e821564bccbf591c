"""Streaming soak: CPU and memory of one engine over an hour of audio fed faster than real time.

A loop of real speech (RAVDESS and EMO-DB clips, 1-4 s of low noise between
them: about ``--loop-min`` minutes) is repeated until ``--hours`` of audio have
been fed to one :class:`~emovox.inference.streaming.StreamEngine` in chunks of
``--chunk-s``, back to back (no pacing). Every ``--report-min`` minutes of
audio the process RSS (psutil) is printed: bounded memory means it stays flat
after the first minutes. At the end: CPU seconds (user + system of this
process) per audio hour, the real-time factor, events and speech share.

Reference measured in the same run: the offline timeline of one loop
(:meth:`Predictor.predict_timeline`, same window and hop, same detector), its
CPU scaled to an hour; the ratio says what streaming costs over batch
analysis of the same audio.

    OMP_NUM_THREADS=1 .venv/bin/python bench/stream_soak.py [--model NAME_OR_DIR] [--hours 1]
        [--chunk-s 0.5] [--backend onnx]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def speech_loop(minutes: float, seed: int = 0) -> np.ndarray:
    """``minutes`` of corpus clips separated by 1-4 s of low noise, 16 kHz float32."""
    import soundfile as sf

    from emovox.corpora import default_corpora_root

    root = default_corpora_root()
    ravdess = sorted((root / "ravdess" / "Audio_Speech_Actors_01-24").glob("Actor_*/*.flac"))
    emodb = sorted((root / "emodb" / "wav").glob("*.flac"))
    if not ravdess or not emodb:
        sys.exit(f"no RAVDESS/EMO-DB clips under {root}: set EMOVOX_CORPORA")
    rng = np.random.default_rng(seed)
    files = [f for pair in zip(ravdess[::5], emodb[::2]) for f in pair]
    out, total, target = [], 0, int(minutes * 60 * 16000)
    for f in files:
        y, sr = sf.read(str(f), dtype="float32", always_2d=True)
        gap = int(rng.uniform(1.0, 4.0) * 16000)
        out += [y.mean(axis=1), (1e-3 * rng.standard_normal(gap)).astype(np.float32)]
        total += out[-2].size + gap
        if total >= target:
            break
    return np.concatenate(out)


def cpu_s(proc) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder or shipped name (default: the default model)")
    parser.add_argument("--backend", default="onnx", choices=("auto", "onnx", "torch"))
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--loop-min", type=float, default=5.0)
    parser.add_argument("--chunk-s", type=float, default=0.5)
    parser.add_argument("--report-min", type=float, default=5.0)
    args = parser.parse_args()
    import psutil
    from stream_latency import _has_onnx

    from emovox.inference import load_model
    from emovox.inference.streaming import StreamEngine

    proc = psutil.Process()
    backend = args.backend if args.backend != "onnx" or _has_onnx(args.model) else "auto"
    model = load_model(args.model, backend=backend, num_threads=1)
    loop = speech_loop(args.loop_min)
    sr = model.sample_rate_hz
    print(
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"model {args.model or 'default'} ({model.backend.name}); loop of {loop.size / sr / 60:.1f} min "
        f"of corpus speech and pauses, repeated to {args.hours:g} h, chunks of {args.chunk_s:g} s"
    )

    # reference: offline timeline of one loop, same window/hop/detector
    c0, w0 = cpu_s(proc), time.perf_counter()
    timeline = model.predict_timeline(loop, sample_rate=sr, window_s=3.0, hop_s=0.5, vad="auto")
    ref_cpu, ref_wall = cpu_s(proc) - c0, time.perf_counter() - w0
    loops_per_hour = 3600 / (loop.size / sr)
    print(
        f"reference predict_timeline of one loop: {ref_cpu:.2f} CPU s, {ref_wall:.2f} s wall, "
        f"{len(timeline.segments)} windows -> {ref_cpu * loops_per_hour:.1f} CPU s per audio hour"
    )

    # reference 2: the model alone on every 3 s window every 0.5 s of the loop (no VAD, no trim)
    hop, win = sr // 2, 3 * sr
    windows = [loop[i : i + win] for i in range(0, loop.size - win + 1, hop)]
    c0 = cpu_s(proc)
    for w in windows:
        model.probabilities([w])
    model_cpu = (cpu_s(proc) - c0) * loops_per_hour
    print(f"reference model alone, all {len(windows)} windows of one loop: {model_cpu:.1f} CPU s per audio hour")

    engine = StreamEngine(model, window_s=3.0, hop_s=0.5)
    chunk = int(args.chunk_s * sr)
    total = int(args.hours * 3600 * sr)
    report = int(args.report_min * 60 * sr)
    fed, speech, events, next_report = 0, 0, 0, report
    rss = [proc.memory_info().rss]
    print(f"{'audio min':>9}  {'RSS MB':>7}  {'CPU s':>7}  {'wall s':>7}  {'engine buffer':>13}")
    print(f"{0:9.0f}  {rss[0] / 2**20:7.1f}  {0:7.1f}  {0:7.1f}  {engine.buffer_bytes:10d} B")
    c0, w0 = cpu_s(proc), time.perf_counter()
    while fed < total:
        pos = fed % loop.size
        piece = loop[pos : pos + min(chunk, total - fed)]
        for e in engine.feed(piece, sr):
            events += 1
            speech += e.speech
        fed += piece.size
        if fed >= next_report or fed >= total:
            rss.append(proc.memory_info().rss)
            print(
                f"{fed / sr / 60:9.0f}  {rss[-1] / 2**20:7.1f}  {cpu_s(proc) - c0:7.1f}  "
                f"{time.perf_counter() - w0:7.1f}  {engine.buffer_bytes:10d} B",
                flush=True,
            )
            next_report += report
    events += len(engine.close())
    cpu, wall = cpu_s(proc) - c0, time.perf_counter() - w0
    hours = fed / sr / 3600
    print(
        f"\n{hours:.2f} h of audio: {events} events ({speech / max(1, events):.0%} speech), "
        f"{cpu:.1f} CPU s ({cpu / hours:.1f} CPU s per audio hour), {wall:.1f} s wall "
        f"({fed / sr / wall:.0f}x real time)"
    )
    print(
        f"RSS: start {rss[0] / 2**20:.1f} MB, after {args.report_min:g} min {rss[1] / 2**20:.1f} MB, "
        f"end {rss[-1] / 2**20:.1f} MB, max {max(rss) / 2**20:.1f} MB; "
        f"growth after the first report {(rss[-1] - rss[1]) / 2**20:+.1f} MB"
    )
    print(
        f"ratio streaming / offline timeline CPU per audio hour: {cpu / hours / (ref_cpu * loops_per_hour):.2f} "
        "(the timeline classifies each speech segment once, the stream every hop)"
    )
    print(f"ratio streaming / model alone on every window: {cpu / hours / model_cpu:.2f}")
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
