"""CPU time (not wall time) per clip of decoding + ONNX inference, single thread.

On a shared machine wall-clock figures depend on the other jobs; CPU seconds
per clip do not (much), and bound the idle throughput: clips/s on 2 cores
~= 2 / (decode + inference CPU seconds per clip).
.venv/bin/python experiments/flagship/cpu_cost.py
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
    files = sorted(Path("/work/shared/corpora/ravdess/Audio_Speech_Actors_01-24").glob("Actor_2*/*.flac"))[:200]
    for f in files[:20]:
        sf.read(str(f))  # warm the page cache
    c = time.process_time()
    ys = []
    for f in files:
        y, _ = sf.read(str(f), dtype="float32", always_2d=True)
        ys.append(y.mean(axis=1))
    dec = (time.process_time() - c) / len(files)
    model = build_flagship(8).eval()
    path = Path(tempfile.mkdtemp()) / "flagship.onnx"
    torch.onnx.export(
        model,
        (torch.zeros(1, 48000),),
        str(path),
        input_names=["waveform"],
        output_names=["logits"],
        opset_version=17,
        dynamo=False,
        dynamic_axes={"waveform": {0: "batch", 1: "samples"}, "logits": {0: "batch"}},
    )
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    X = np.stack([np.pad(y[:48000], (0, max(0, 48000 - len(y)))) for y in ys]).astype(np.float32)
    sess.run(None, {"waveform": X[:1]})
    c = time.process_time()
    for i in range(len(X)):
        sess.run(None, {"waveform": X[i : i + 1]})
    one = (time.process_time() - c) / len(X)
    c = time.process_time()
    for i in range(0, len(X), 16):
        sess.run(None, {"waveform": X[i : i + 16]})
    b16 = (time.process_time() - c) / len(X)
    print(f"decode FLAC (RAVDESS, ~3.7 s clips): {dec * 1e3:.2f} ms CPU/clip")
    print(f"ONNX 3 s clip, batch 1: {one * 1e3:.2f} ms CPU/clip; batch 16: {b16 * 1e3:.2f} ms CPU/clip")
    print(f"=> idle 2-core throughput bound incl. decoding: {2 / (dec + b16):.0f} clips/s")
    print("load average:", os.getloadavg())


if __name__ == "__main__":
    main()
