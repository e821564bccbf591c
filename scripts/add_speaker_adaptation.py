"""Add the speaker-adaptation head (``--adapt``) to a Whisper-backed artifact (by default the shipped one).

One command, from the repository root (corpora read from ``../shared/corpora``)::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/add_speaker_adaptation.py

The steps (re-export with an ``embedding`` output if needed, embeddings of
the training clips, :func:`emovox.recipes.speaker_adaptation.fit_speaker_adaptation`,
ONNX/torch parity, the model card's section) live in
:mod:`emovox.recipes.shipped_adaptation`, which ``scripts/build_models.py default``
(through ``scripts/build_whisper_default.py``) also runs at its end.
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
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/emovox-whisper-default/adapt"))
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from emovox.recipes.shipped_adaptation import run

    card = REPO / "docs" / "model_card.md" if args.artifact.resolve() == SHIPPED.resolve() else None
    section = run(args.artifact, args.workdir, card=card)
    print(json.dumps(section["heldout"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
