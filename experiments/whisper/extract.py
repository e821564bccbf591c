"""Pool every hidden state of a frozen Whisper encoder over each clip of a corpus.

For each clip: ``emovox.audio.load_audio`` at 16 kHz, the one model silence trim
(``emovox.audio.trim_for_model``, unless ``--no-trim``), Whisper log-mel, the
encoder on the clip's own frames (no padding to 30 s), then the mean and the
standard deviation over frames of each of the ``n_layers + 1`` hidden states.

``--pad-30s`` instead zero-pads each clip to 30 s as Whisper does (10x the
compute), runs all 1500 frames and pools over the clip's own frames only.

Writes ``<out>/<model>_<corpus>_<trim|full>[_pad30].npy``, float32
``(n_clips, n_layers + 1, 2, d_model)`` (axis 2: mean, std), and a ``.json``
beside it with one record per row (path, speaker, emotion, gender, seconds).

Usage
-----
OMP_NUM_THREADS=1 .venv/bin/python experiments/whisper/extract.py --corpus emodb
OMP_NUM_THREADS=1 .venv/bin/python experiments/whisper/extract.py --corpus emodb --model /tmp/emovox-whisper/tiny.en
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from emovox.audio import load_audio, trim_for_model
from emovox.corpora import load_corpus
from emovox.models.whisper_encoder import WhisperLogMel, load_whisper_encoder

ROOT = Path("/tmp/emovox-whisper")
SAMPLE_RATE_HZ = 16000


def feature_path(out_dir: Path, model_dir: Path, corpus: str, *, trim: bool, pad_30s: bool = False) -> Path:
    suffix = ("_trim" if trim else "_full") + ("_pad30" if pad_30s else "")
    return Path(out_dir) / f"{Path(model_dir).name}_{corpus}{suffix}.npy"


@torch.no_grad()
def pooled_states(y: np.ndarray, frontend: WhisperLogMel, encoder, *, pad_30s: bool = False) -> np.ndarray:
    """Mean and std over the clip's frames of every hidden state: ``(n_layers + 1, 2, d_model)`` float32."""
    n_frames = -(-(len(y) // 160) // 2)  # encoder frames (20 ms) covering the clip
    if pad_30s:
        y = np.pad(y, (0, 30 * SAMPLE_RATE_HZ - len(y)))
    states = encoder(frontend(torch.from_numpy(y))[None])
    h = torch.stack([s[0, :n_frames] for s in states])  # (n_layers + 1, frames, d_model)
    return torch.stack([h.mean(dim=1), h.std(dim=1, unbiased=False)], dim=1).numpy()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, help="ravdess | emodb | emovo (any emovox corpus name)")
    ap.add_argument("--model", type=Path, default=ROOT / "base", help="folder from scripts/import_whisper_ct2.py")
    ap.add_argument("--out", type=Path, default=ROOT / "features")
    ap.add_argument("--no-trim", action="store_true", help="keep leading/trailing silence")
    ap.add_argument("--pad-30s", action="store_true", help="zero-pad to 30 s as Whisper does (comparison only)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    trim = not args.no_trim
    out = feature_path(args.out, args.model, args.corpus, trim=trim, pad_30s=args.pad_30s)
    records = load_corpus(args.corpus)
    frontend, encoder = WhisperLogMel(), load_whisper_encoder(args.model)
    feats, meta = [], []
    load_s = encode_s = audio_s = 0.0
    for i, r in enumerate(records):
        t0 = time.perf_counter()
        y = load_audio(r.path, sample_rate_hz=SAMPLE_RATE_HZ)
        if trim:
            y = trim_for_model(y, sample_rate_hz=SAMPLE_RATE_HZ)
        t1 = time.perf_counter()
        feats.append(pooled_states(y, frontend, encoder, pad_30s=args.pad_30s))
        t2 = time.perf_counter()
        load_s, encode_s, audio_s = load_s + t1 - t0, encode_s + t2 - t1, audio_s + len(y) / SAMPLE_RATE_HZ
        meta.append(
            {
                "path": r.path,
                "speaker": r.speaker,
                "emotion": r.emotion,
                "gender": r.gender,
                "seconds": round(len(y) / SAMPLE_RATE_HZ, 4),
            }
        )
        if (i + 1) % 200 == 0:
            print(f"  {i + 1}/{len(records)} encode {1000 * encode_s / (i + 1):.0f} ms/clip", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npy")
    np.save(tmp, np.stack(feats).astype(np.float32))
    os.replace(tmp, out)
    out.with_suffix(".json").write_text(
        json.dumps(
            {"model": str(args.model), "corpus": args.corpus, "trim": trim, "pad_30s": args.pad_30s, "records": meta}
        )
    )
    n = len(records)
    print(
        f"{out.name}: {n} clips, {audio_s / n:.2f} s audio/clip; load+trim {1000 * load_s / n:.1f} ms/clip, "
        f"log-mel+encoder {1000 * encode_s / n:.1f} ms/clip ({encode_s / audio_s:.3f} s per audio s), 1 thread",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
