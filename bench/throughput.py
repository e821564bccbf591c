"""Batch throughput (clips per second) of emovox vs the seed-style pipeline; int8 accuracy change.

Scores the same RAVDESS clips with:

- emovox ``Predictor.iter_predict`` (decode, resample, centre crop/pad to the
  model's clip, batched windows) on the ONNX float32, ONNX int8 and torch backends;
- the seed-style S3 pipeline (``librosa.load`` 2.5 s at 22.05 kHz + ZCR/RMS/MFCC
  features + the S3 replica, batches of 32), as in ``bench/latency.py``.

With ``--int8`` it also reports, for float32 vs int8 ONNX: accuracy and
unweighted average recall against the RAVDESS labels (meaningful only for a
trained model whose classes are RAVDESS emotions; with the untrained stand-in
they are chance level), agreement of the top class, and the largest change of
a class probability. Use held-out speakers for an honest figure
(``--actors "2[1-4]"`` = actors 21-24).

    .venv/bin/python bench/throughput.py [--model DIR] [--clips 200] [--int8] [--actors "2[1-4]"]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import SeedPipeline, bench_model_dir, int8_dir, ravdess_files  # noqa: E402


def score(model, files):
    t = time.perf_counter()
    preds = [p for _, p in model.iter_predict(files)]
    return time.perf_counter() - t, preds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--actors", default="*", help="glob of actor numbers, e.g. '2[1-4]'")
    ap.add_argument("--int8", action="store_true", help="report the int8 accuracy change")
    ap.add_argument("--no-torch", action="store_true", help="skip the torch backend")
    args = ap.parse_args()
    from emovox.inference import load_model

    model_dir, what = bench_model_dir(args.model)
    files = ravdess_files(args.clips, actors=args.actors)
    print(f"throughput over {len(files)} RAVDESS clips; model: {what}; threads "
          f"{args.threads or 'default'}; batch {args.batch_size}")
    runs = [("onnx fp32", model_dir, "onnx"), ("onnx int8", int8_dir(model_dir), "onnx")]
    if not args.no_torch:
        runs.append(("torch", model_dir, "torch"))
    results = {}
    for name, d, backend in runs:
        m = load_model(d, backend=backend, num_threads=args.threads, batch_size=args.batch_size,
                       min_confidence=0.0)
        m.predict(files[0])
        wall, preds = score(m, files)
        results[name] = (wall, preds, m.labels)
        print(f"  emovox {name:10s}: {len(files) / wall:7.1f} clips/s ({wall:.1f} s)")
    seed = SeedPipeline(args.threads or 1)
    import librosa

    t = time.perf_counter()
    feats = []
    for f in files:
        y, _ = librosa.load(f, sr=seed.sample_rate_hz, duration=2.5, offset=0.6)
        feats.append(seed.features(y))
    for i in range(0, len(feats), 32):
        seed.logits(np.stack(feats[i:i + 32]))
    seed_wall = time.perf_counter() - t
    print(f"  seed-style S3     : {len(files) / seed_wall:7.1f} clips/s ({seed_wall:.1f} s) [{seed.what}]")
    for name in results:
        print(f"  ratio emovox {name} / seed-style: {seed_wall / results[name][0]:.1f}x")

    if args.int8:
        from emovox.corpora import load_corpus

        truth = {r.path: r.emotion for r in load_corpus("ravdess")}
        _, p32, labels = results["onnx fp32"]
        _, p8, _ = results["onnx int8"]
        y = [truth.get(f) for f in files]
        keep = [i for i, e in enumerate(y) if e in labels]

        def acc_uar(preds):
            hits = [preds[i].top_class == y[i] for i in keep]
            recalls = [np.mean([preds[i].top_class == c for i in keep if y[i] == c])
                       for c in labels if any(y[i] == c for i in keep)]
            return float(np.mean(hits)), float(np.mean(recalls))

        a32, u32 = acc_uar(p32)
        a8, u8 = acc_uar(p8)
        agree = np.mean([a.top_class == b.top_class for a, b in zip(p32, p8)])
        dmax = max(abs(a.scores[k] - b.scores[k]) for a, b in zip(p32, p8) for k in labels)
        size32 = (model_dir / "model.onnx").stat().st_size / 1e6
        size8 = (int8_dir(model_dir) / "model.onnx").stat().st_size / 1e6
        print(f"int8 vs fp32 on {len(keep)} labelled clips: accuracy {a32:.3f} -> {a8:.3f} "
              f"({a8 - a32:+.3f}), UAR {u32:.3f} -> {u8:.3f} ({u8 - u32:+.3f}); top class agrees on "
              f"{agree:.1%}; max probability change {dmax:.3f}; size {size32:.2f} -> {size8:.2f} MB")


if __name__ == "__main__":
    main()
