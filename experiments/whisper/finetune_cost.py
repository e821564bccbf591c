"""Measured cost of fine-tuning the top Whisper-base blocks on CPU (one thread), to decide whether it fits.

Times, on real RAVDESS clips, (a) the frozen forward of blocks 1..6 (what
feature extraction costs per clip) and (b) a training step of the top ``k``
blocks (forward from the cached input of block ``7 - k``, pooled head, backward,
AdamW step), per clip, then extrapolates to the protocols' training sets.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python experiments/whisper/finetune_cost.py
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch


def main() -> int:
    from emovox.audio import load_audio, trim_for_model
    from emovox.corpora import load_corpus
    from emovox.models.whisper_classifier import pool_hidden_states
    from emovox.models.whisper_encoder import WhisperLogMel, load_whisper_encoder

    torch.set_num_threads(1)
    encoder = load_whisper_encoder("/tmp/emovox-whisper/base")
    front = WhisperLogMel(80)
    records = load_corpus("ravdess")[::97][:8]
    clips = [
        torch.from_numpy(trim_for_model(load_audio(r.path, sample_rate_hz=16000), sample_rate_hz=16000))[None]
        for r in records
    ]
    seconds = float(np.mean([c.shape[1] / 16000 for c in clips]))
    with torch.inference_mode():
        t0, c0 = time.perf_counter(), time.process_time()
        states = [encoder(front(c)) for c in clips]
        frozen, frozen_cpu = ((time.perf_counter() - t0) / len(clips), (time.process_time() - c0) / len(clips))
    print(
        f"clips: mean {seconds:.2f} s; frozen forward (log-mel + 6 blocks): {1000 * frozen:.0f} ms wall, "
        f"{1000 * frozen_cpu:.0f} ms CPU per clip"
    )
    for k in (1, 2):
        blocks = [encoder.layers[i] for i in range(6 - k, 6)]
        params = [p for b in blocks for p in b.parameters()] + list(encoder.layer_norm.parameters())
        for p in params:
            p.requires_grad_(True)
        head = torch.nn.Linear(7 * 2 * 512, 7)
        opt = torch.optim.AdamW(params + list(head.parameters()), lr=1e-5)
        t0, c0 = time.perf_counter(), time.process_time()
        for s in states:
            x = s[6 - k].clone()
            out = list(s[: 7 - k])
            for b in blocks:
                x = b(x)
                out.append(x)
            out[-1] = encoder.layer_norm(x)
            loss = torch.nn.functional.cross_entropy(head(pool_hidden_states(out).flatten(1)), torch.tensor([0]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        wall = (time.perf_counter() - t0) / len(states)
        step = (time.process_time() - c0) / len(states)  # CPU time: the machine is shared
        for p in params:
            p.requires_grad_(False)
        # RAVDESS protocol: 6 outer folds x (4 inner folds + final) fits, 1200 training clips, 10 epochs
        ravdess_h = step * 1200 * 10 * 6 * 5 / 3600
        all7_h = step * 3200 * 10 * 6 * 5 / 3600
        print(
            f"fine-tune top {k} block(s): {1000 * step:.0f} ms CPU ({1000 * wall:.0f} ms wall) per clip per "
            f"step; one epoch of 1200 RAVDESS "
            f"clips {step * 1200 / 60:.1f} min; RAVDESS 6 folds x 5 fits x 10 epochs {ravdess_h:.0f} h; "
            f"emovox7 four-corpus protocol (3200 clips) {all7_h:.0f} h (CPU time, one thread)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
