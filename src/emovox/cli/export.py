"""``emovox export MODEL_DIR --format onnx [--int8] --out DIR``: export a model artifact."""

from __future__ import annotations

import argparse
import sys

from emovox.errors import ConfigError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a model artifact to ONNX (optionally int8)",
        description="Write DIR/model.onnx (waveform in, logits out, front end inside) and a copy "
        "of the artifact's config.json, so DIR loads with --backend onnx.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="model artifact folder")
    p.add_argument("--format", default="onnx", choices=("onnx",), help="export format")
    p.add_argument("--int8", action="store_true", help="int8 dynamic quantisation of the weights")
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="output folder (default: MODEL_DIR itself, next to model.safetensors)",
    )
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from emovox.export import export_onnx

    if args.opset < 13:
        raise ConfigError(f"--opset {args.opset}: must be at least 13")
    out = args.out or args.model_dir
    path = export_onnx(args.model_dir, out, quantize=args.int8, opset=args.opset)
    size_mb = path.stat().st_size / 1e6
    print(
        f"wrote {path} ({size_mb:.2f} MB{', int8' if args.int8 else ''}) and {path.parent / 'config.json'}",
        file=sys.stderr,
    )
    return 0
