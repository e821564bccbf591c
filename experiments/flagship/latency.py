"""ONNX size/latency/throughput of the flagship (random weights: speed does not depend on them).

.venv/bin/python experiments/flagship/latency.py
Prints: parameters, ONNX file size, ONNX single-thread latency for a 3 s clip
(features included), torch single-thread latency, and clips/s on 2 threads
including FLAC decoding of real RAVDESS files (batches of 16 clips cut/padded to 3 s).
The machine is shared: the load average is printed beside the figures.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import soundfile as sf
import torch

from emovox.models.flagship import build_flagship


def main() -> None:
    torch.set_num_threads(1)
    model = build_flagship(8).eval()
    n_params = sum(p.numel() for p in model.parameters())
    tmp = Path(tempfile.mkdtemp()) / "flagship.onnx"
    torch.onnx.export(
        model,
        (torch.zeros(1, 48000),),
        str(tmp),
        input_names=["waveform"],
        output_names=["logits"],
        opset_version=17,
        dynamo=False,
        dynamic_axes={"waveform": {0: "batch", 1: "samples"}, "logits": {0: "batch"}},
    )
    print(f"params {n_params}  float32 {n_params * 4 / 1e6:.2f} MB  onnx {tmp.stat().st_size / 1e6:.2f} MB")
    x = np.random.default_rng(0).standard_normal((1, 48000)).astype(np.float32) * 0.1
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(tmp), so, providers=["CPUExecutionProvider"])
    for _ in range(5):
        sess.run(None, {"waveform": x})
    ts = []
    for _ in range(50):
        t = time.perf_counter()
        sess.run(None, {"waveform": x})
        ts.append(time.perf_counter() - t)
    print(f"onnx 1 thread, 3 s clip: median {np.median(ts) * 1e3:.2f} ms  p10 {np.percentile(ts, 10) * 1e3:.2f} ms")
    with torch.no_grad():
        xt = torch.from_numpy(x)
        model(xt)
        ts = []
        for _ in range(20):
            t = time.perf_counter()
            model(xt)
            ts.append(time.perf_counter() - t)
    print(f"torch 1 thread, 3 s clip: median {np.median(ts) * 1e3:.2f} ms")
    # throughput on 2 threads including decoding
    so2 = ort.SessionOptions()
    so2.intra_op_num_threads = 2
    sess2 = ort.InferenceSession(str(tmp), so2, providers=["CPUExecutionProvider"])
    files = sorted(Path("/work/shared/corpora/ravdess/Audio_Speech_Actors_01-24").glob("Actor_0*/*.flac"))[:320]
    t = time.perf_counter()
    batch = []
    for f in files:
        y, sr = sf.read(str(f), dtype="float32", always_2d=True)
        y = y.mean(axis=1)
        y = y[:48000] if len(y) >= 48000 else np.pad(y, (0, 48000 - len(y)))
        batch.append(y)
        if len(batch) == 16:
            sess2.run(None, {"waveform": np.stack(batch)})
            batch = []
    dt = time.perf_counter() - t
    print(f"throughput 2 threads incl. FLAC decode: {len(files) / dt:.0f} clips/s ({len(files)} clips)")
    print("load average:", os.getloadavg())


if __name__ == "__main__":
    main()
