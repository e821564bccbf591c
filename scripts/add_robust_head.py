"""Give a Whisper-backed artifact (by default the shipped one) the channel-robust head of issue 16.

One command, from the repository root (corpora read from ``../shared/corpora``)::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/add_robust_head.py

Embeddings are cached in ``--cache``, shared with ``bench/robustness.py``.
The steps (band limit, embeddings of clips and degraded copies, fold heads,
calibration, the new head and its ONNX export, the card's robustness section)
are described and implemented in :mod:`emovox.recipes.shipped_robust`; ``scripts/build_models.py default``
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
