"""Give a Whisper-backed artifact (by default the shipped one) the channel-robust head of issue 16.

One command, from the repository root (corpora read from ``../shared/corpora``)::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/add_robust_head.py

Steps (embeddings cached in ``--cache``, shared with ``bench/robustness.py``):

0. ``preprocessing.band_limit_hz = 8000``: every input reaches the encoder
   through a telephone band (the design ``docs/robustness.md`` chose).
1. The embedding of every clip of the four corpora (``emovox7``) as recorded
   and of :data:`emovox.recipes.robust.N_COPIES` degraded copies of it
   (telephone calls, the full degradation chain, noisy places), through the
   artifact's ONNX ``embedding`` output and the product preprocessing.
2. :func:`emovox.recipes.robust.fold_heads` on the build's 3 speaker-disjoint
   folds: out-of-fold logits of every clip and every copy (held-out speakers).
3. Temperature and rejection threshold fitted on those out-of-fold logits,
   clean and degraded together (the audio the product meets); the card's
   per-corpus figures from the clean ones.
4. The head fitted on every clip and copy replaces the artifact's linear head
   (the encoder and its float16 weights are unchanged; a speaker-adaptation
   head is refitted afterwards on the band-limited embeddings by
   ``scripts/add_speaker_adaptation.py``); the ONNX graph is re-exported reading its weights from
   ``model.safetensors`` and checked against torch on corpus clips.
5. ``config["robustness"]``: what the model was measured on (the warnings of
   :func:`emovox.inference.gate.quality_warnings` use it) and, when
   ``bench/results/robustness.json`` and ``bench/results/nonspeech.json``
   exist, their figures; for the shipped model, the card's sections.

The steps live in :mod:`emovox.recipes.shipped_robust`; ``scripts/build_models.py default``
(through ``scripts/build_whisper_default.py``) runs them as its step 5, before the
speaker-adaptation head. ``--card-only`` refreshes step 5 after the benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "src" / "emovox" / "pretrained" / "default"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifact", type=Path, default=SHIPPED)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/emovox-robustness"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--card-only", action="store_true", help="only step 5 (after the benchmarks)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from emovox.recipes import shipped_adaptation, shipped_robust

    torch.set_num_threads(2)
    card = REPO / "docs" / "model_card.md" if args.artifact.resolve() == SHIPPED.resolve() else None
    if not args.card_only:
        shipped_robust.set_band_limit(args.artifact)
        result, final, _ = shipped_robust.fit(args.artifact, args.cache, args.workers)
        shipped_robust.install(args.artifact, result, final)
        if (args.artifact / "adapt.safetensors").is_file():  # its embeddings changed with the band: refit it
            shipped_adaptation.run(args.artifact, args.cache / "adapt", card=card)
    section = shipped_robust.robustness_section(args.artifact, bench_results=REPO / "bench" / "results", card=card)
    print(json.dumps({k: v for k, v in section.items() if k in ("measured", "gate")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
