"""Batch throughput (clips per second): default model beside the CNN and the seed-style pipeline, 1 and 2 cores.

Scores the same RAVDESS clips (default: all 1440, decoding included) with:

- emovox ``Predictor.iter_predict`` (decode, resample, silence trim, batched
  windows) of the default model (its shipped ONNX file, a float32 ONNX export
  for reference, torch) and, with ``--compare cnn`` (the default), of the
  small CNN (ONNX float32, int8, torch), as listed by ``latency.variants``;
- the seed-style S3 pipeline (``librosa.load`` 2.5 s at 22.05 kHz + ZCR/RMS/MFCC
  features + the S3 replica, batches of 32), as in ``bench/latency.py``.

Each pipeline runs with ``--workers`` worker processes (default ``1,2``: one
core, then both cores). Every worker is a fresh process with one thread
(onnxruntime ``intra_op_num_threads=1``, ``torch.set_num_threads(1)``,
``OMP_NUM_THREADS=1``) that loads its own model, warms up, and waits on a
barrier; the clock runs from the barrier to the last worker's answers, so
process start and model load are excluded. The workers' CPU time over the
same span is printed too: clips per CPU-second is the figure that does not
depend on other users' load, and CPU / wall shows how many cores the workers
actually obtained (on a shared machine with Linux autogroup scheduling, all
processes of one session share one group's CPU share, so a second worker may
get little extra CPU). Worker ``i`` of ``n`` takes clips
``i, i+n, i+2n, ...``. The 1- and 2-worker runs of a pipeline follow each other,
and the load average is printed with every figure.

With ``--int8`` it also reports, for float32 vs int8 ONNX (1-worker runs):
accuracy and unweighted average recall against the RAVDESS labels (mapped by
the model's label scheme, e.g. calm -> neutral), agreement of the top class,
and the largest change of a class probability. A model trained on these
speakers (like the bundled one) makes this an agreement figure, not held-out
accuracy (``--actors "2[1-4]"`` restricts to actors 21-24).

    .venv/bin/python bench/throughput.py [--model DIR|NAME] [--compare cnn] [--clips 0] [--workers 1,2] [--int8] [--actors "2[1-4]"]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import SeedPipeline, bench_model_dir, int8_dir, load_avg, ravdess_files, variants  # noqa: E402


def _worker(kind: str, model_dir: str, files: list[str], batch_size: int, barrier, queue, idx: int) -> None:
    """One single-threaded worker: load, warm up, wait for the others, score ``files``."""
    os.environ["OMP_NUM_THREADS"] = "1"
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if kind == "seed":
        import librosa
        from latency import SeedPipeline

        seed = SeedPipeline(1)
        seed.predict_file(files[0])
        barrier.wait()
        c0 = time.process_time()
        feats = []
        for f in files:
            y, _ = librosa.load(f, sr=seed.sample_rate_hz, duration=2.5, offset=0.6)
            feats.append(seed.features(y))
        out = []
        for i in range(0, len(feats), 32):
            out.extend(int(k) for k in seed.logits(np.stack(feats[i : i + 32])).argmax(axis=1))
        queue.put((idx, out, time.process_time() - c0))
        return
    from emovox.inference import load_model

    m = load_model(model_dir, backend=kind, num_threads=1, batch_size=batch_size, min_confidence=0.0)
    m.predict(files[0])
    barrier.wait()
    c0 = time.process_time()
    out = []
    for _, p in m.iter_predict(files):
        out.append((p.label, dict(p.scores)) if not isinstance(p, Exception) else (None, {}))
    queue.put((idx, out, time.process_time() - c0))


def run_pool(kind: str, model_dir: str, files: list[str], workers: int, batch_size: int) -> tuple[float, float, list]:
    """Wall time (barrier to last answer), CPU seconds of all workers, predictions in file order."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers + 1)
    queue = ctx.Queue()
    shares = [files[i::workers] for i in range(workers)]
    procs = [
        ctx.Process(target=_worker, args=(kind, model_dir, shares[i], batch_size, barrier, queue, i))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    barrier.wait(timeout=300)
    t0 = time.perf_counter()
    got = [queue.get(timeout=3600) for _ in range(workers)]
    wall = time.perf_counter() - t0
    parts = {i: out for i, out, _ in got}
    cpu = sum(c for _, _, c in got)
    for p in procs:
        p.join()
    preds: list = [None] * len(files)
    for i in range(workers):
        preds[i::workers] = parts[i]
    return wall, cpu, preds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="folder or shipped name (default: the default model)")
    ap.add_argument("--compare", default="cnn", help="second model scored in the same run ('none': skip)")
    ap.add_argument("--clips", type=int, default=0, help="0: every clip of the selected actors")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts, e.g. '1,2'")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--actors", default="*", help="glob of actor numbers, e.g. '2[1-4]'")
    ap.add_argument("--int8", action="store_true", help="report the int8 accuracy change")
    ap.add_argument("--no-torch", action="store_true", help="skip the torch backend")
    ap.add_argument("--no-seed", action="store_true", help="skip the seed-style pipeline")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the spawned workers

    model_dir, what = bench_model_dir(args.model)
    prefix = "default" if args.model is None else "model"
    runs = [(n, str(d), k) for n, d, k in variants(model_dir, prefix)]
    if args.compare != "none":
        other_dir, other = bench_model_dir(args.compare)
        runs += [(n, str(d), k) for n, d, k in variants(other_dir, args.compare)]
        what += f"; compared with {other}"
    if args.no_torch:
        runs = [r for r in runs if r[2] != "torch"]
    files = ravdess_files(args.clips or None, actors=args.actors)
    counts = [int(w) for w in args.workers.split(",")]
    print(
        f"throughput over {len(files)} RAVDESS clips (decoding included); model: {what}; "
        f"batch {args.batch_size}; workers {counts}, one thread each; {os.cpu_count()} CPUs"
    )
    if not args.no_seed:
        runs.append(("seed-style S3", "", "seed"))
    results = {}
    for name, d, kind in runs:
        for w in counts:
            before = load_avg()
            wall, cpu, preds = run_pool(kind, d, files, w, args.batch_size)
            results[(name, w)] = (wall, preds)
            print(
                f"  {name:20s} {w} worker(s): {len(files) / wall:7.1f} clips/s ({wall:6.1f} s); "
                f"CPU {cpu:6.1f} s = {len(files) / cpu:6.1f} clips per CPU-second, "
                f"{cpu / wall:.2f} cores obtained   [{before} before, {load_avg()[13:]} after]"
            )
        if len(counts) > 1:
            w1, wn = counts[0], counts[-1]
            print(
                f"  {name:20s} scaling {wn} vs {w1} worker(s): {results[(name, w1)][0] / results[(name, wn)][0]:.2f}x"
            )
    if not args.no_seed:
        print(
            "  (seed-style S3: " + SeedPipeline.__doc__.splitlines()[0].strip() + " S3 replica untrained: speed only)"
        )
        for w in counts:
            seed_wall = results[("seed-style S3", w)][0]
            for name, _, kind in runs:
                if kind != "seed":
                    print(
                        f"  ratio emovox {name} / seed-style, {w} worker(s) each: "
                        f"{seed_wall / results[(name, w)][0]:.2f}x"
                    )
    if args.compare != "none":
        a, b = runs[0][0], f"{args.compare} onnx fp32"
        for w in counts:
            print(f"  ratio {b} / {a} clips per second, {w} worker(s): {results[(a, w)][0] / results[(b, w)][0]:.1f}x")

    if args.int8:
        from emovox.corpora import load_corpus
        from emovox.inference.backends import read_config

        config = read_config(model_dir)
        labels = tuple(config["task"]["labels"])
        mapping = ((config.get("training") or {}).get("label_scheme") or {}).get("mapping") or {}
        truth = {r.path: mapping.get(r.emotion, r.emotion) for r in load_corpus("ravdess")}
        w1 = counts[0]
        if (f"{prefix} onnx int8", w1) not in results:
            sys.exit(
                "--int8 compares a float32 model with its int8 export: give --model of a float32 model "
                "(e.g. --model cnn); the default model's int8 agreement is in its model card"
            )
        p32 = results[(f"{prefix} onnx fp32", w1)][1]
        p8 = results[(f"{prefix} onnx int8", w1)][1]
        y = [truth.get(f, truth.get(str(Path(f).resolve()))) for f in files]
        keep = [i for i, e in enumerate(y) if e in labels and p32[i][0] is not None]

        def acc_uar(preds):
            hits = [preds[i][0] == y[i] for i in keep]
            recalls = [
                np.mean([preds[i][0] == c for i in keep if y[i] == c]) for c in labels if any(y[i] == c for i in keep)
            ]
            return float(np.mean(hits)), float(np.mean(recalls))

        a32, u32 = acc_uar(p32)
        a8, u8 = acc_uar(p8)
        agree = np.mean([p32[i][0] == p8[i][0] for i in keep])
        dmax = max(abs(p32[i][1][k] - p8[i][1][k]) for i in keep for k in labels)
        size32 = (model_dir / "model.onnx").stat().st_size / 1e6
        size8 = (int8_dir(model_dir) / "model.onnx").stat().st_size / 1e6
        print(
            f"int8 vs fp32 on {len(keep)} labelled clips (labels mapped by the model's scheme): "
            f"accuracy {a32:.3f} -> {a8:.3f} ({a8 - a32:+.3f}), UAR {u32:.3f} -> {u8:.3f} "
            f"({u8 - u32:+.3f}); top class agrees on {agree:.1%}; max probability change {dmax:.3f}; "
            f"model.onnx {size32:.2f} -> {size8:.2f} MB"
        )


if __name__ == "__main__":
    main()
