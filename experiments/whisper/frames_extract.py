"""Frame-level Whisper-base hidden states 0..4 of the four corpora, stored once for frame-level head experiments.

Product path, exactly as :func:`emovox.recipes.whisper.pooled_features`:
``load_audio`` (16 kHz) -> ``trim_for_model`` -> first 30 s -> ``WhisperLogMel`` ->
encoder at the clip's own length. Only blocks 1..4 are run (``truncate_encoder``;
hidden states 0..4 equal the full encoder's). Frames are stored at the encoder's
50 Hz, float16, in one memmap per corpus:

- ``/tmp/emovox-research/frames/<corpus>.f16``: ``(total_frames, 5, 512)`` float16;
- ``/tmp/emovox-research/frames/<corpus>.json``: ``offsets`` (n_clips + 1) and
  per-clip ``corpus``/``speaker``/``emotion`` (the row order of
  ``pooled_data.load()``, i.e. the order of ``load_corpus`` over ravdess, emodb,
  emovo, turev; checked against ``pooled_plain.npz``).

Sanity check: mean and population std over each clip's fp32 frames, compared with
``pooled_plain.npz`` states 0..4 (printed: max abs difference, and the same for
the fp16-stored frames).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python experiments/whisper/frames_extract.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pooled_data  # noqa: E402

OUT = pooled_data.OUT / "frames"
N_STATES = 5


def main() -> int:
    from emovox.audio import load_audio, trim_for_model
    from emovox.corpora import load_corpus
    from emovox.models.whisper_encoder import WhisperLogMel, load_whisper_encoder, truncate_encoder

    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    z = np.load(pooled_data.OUT / "pooled_plain.npz", allow_pickle=False)
    ref = {k: z[k] for k in ("x", "corpus", "speaker", "emotion")}  # read once (NpzFile re-reads on every access)
    full = load_whisper_encoder(pooled_data.ENCODER)
    encoder = truncate_encoder(full, N_STATES - 1)
    frontend = WhisperLogMel(full.config.n_mels)
    del full
    row = 0
    worst32, worst16 = 0.0, 0.0
    t0 = time.process_time()
    for corpus in pooled_data.CORPORA:
        records = load_corpus(corpus)
        chunks, offsets = [], [0]
        for r in records:
            assert (
                ref["corpus"][row] == r.corpus
                and ref["speaker"][row] == r.speaker_key
                and ref["emotion"][row] == r.emotion
            ), (row, r)
            y = trim_for_model(load_audio(str(r.path), sample_rate_hz=16000), sample_rate_hz=16000)
            with torch.inference_mode():
                states = encoder(frontend(torch.from_numpy(y[: 30 * 16000])[None]))
            h = torch.stack(states, dim=2)[0]  # (frames, 5, 512)
            pooled = torch.stack([h.mean(0), h.std(0, unbiased=False)], dim=1).numpy()  # (5, 2, 512)
            worst32 = max(worst32, float(np.abs(pooled - ref["x"][row, :N_STATES]).max()))
            h16 = h.numpy().astype(np.float16)
            p16 = np.stack([h16.astype(np.float32).mean(0), h16.astype(np.float32).std(0)], axis=1)
            worst16 = max(
                worst16,
                float((np.abs(p16 - ref["x"][row, :N_STATES]) / (1e-3 + np.abs(ref["x"][row, :N_STATES]))).max()),
            )
            chunks.append(h16)
            offsets.append(offsets[-1] + len(h16))
            row += 1
            if row % 500 == 0:
                print(f"  {row} clips, {time.process_time() - t0:.0f} CPU s", flush=True)
        arr = np.concatenate(chunks)
        mm = np.lib.format.open_memmap(OUT / f"{corpus}.npy", mode="w+", dtype=np.float16, shape=arr.shape)
        mm[:] = arr
        mm.flush()
        del mm, arr, chunks
        (OUT / f"{corpus}.json").write_text(
            json.dumps(
                {
                    "offsets": offsets,
                    "corpus": [r.corpus for r in records],
                    "speaker": [r.speaker_key for r in records],
                    "emotion": [r.emotion for r in records],
                }
            )
        )
        print(
            f"{corpus}: {len(records)} clips, {offsets[-1]} frames, {time.process_time() - t0:.0f} CPU s; "
            f"max |pooled fp32 - pooled_plain| {worst32:.2e}, max rel. err of fp16-frame pooling {worst16:.2e}",
            flush=True,
        )
    assert row == len(ref["x"]), (row, len(ref["x"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
