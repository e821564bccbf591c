"""Convert a CTranslate2 Whisper model folder into an emovox Whisper encoder folder.

Usage
-----
.venv/bin/python scripts/import_whisper_ct2.py SRC_DIR OUT_DIR [--license TEXT]

``SRC_DIR`` holds a CTranslate2 ``model.bin`` (binary format 5 or 6, float32,
float16 or bfloat16 weights; int8-quantised models are refused), e.g. a
faster-whisper conversion. ``OUT_DIR`` receives ``model.safetensors`` (encoder
weights only, float16) and ``config.json`` (sizes + provenance), each written
atomically; read it with :func:`emovox.models.whisper_encoder.load_whisper_encoder`.

Name mapping (CT2 -> emovox/Hugging Face): ``self_attention/linear_0`` is the
fused q, k, v projection, split in three along the output axis; CT2 stores a
zero key bias, which is dropped (a key bias adds the same amount to every score
of a query, so softmax ignores it); ``self_attention/linear_1`` -> ``out_proj``;
``ffn/linear_0``/``linear_1`` -> ``fc1``/``fc2``; ``gamma``/``beta`` ->
``weight``/``bias``; ``position_encodings/encodings`` -> ``embed_positions``.
Only the encoder is read; the rest of ``model.bin`` is skipped.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import struct
import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from emovox.errors import EmovoxError, ModelError
from emovox.models.whisper_encoder import WhisperEncoderConfig, save_whisper_encoder

#: CTranslate2 DataType ids -> numpy dtypes (5 = bfloat16, widened by hand).
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
_LAYER = re.compile(r"encoder/layer_(\d+)/(.+)")
_LAYER_NAMES = {
    "self_attention/layer_norm/gamma": "self_attn_layer_norm.weight",
    "self_attention/layer_norm/beta": "self_attn_layer_norm.bias",
    "self_attention/linear_1/weight": "self_attn.out_proj.weight",
    "self_attention/linear_1/bias": "self_attn.out_proj.bias",
    "ffn/layer_norm/gamma": "final_layer_norm.weight",
    "ffn/layer_norm/beta": "final_layer_norm.bias",
    "ffn/linear_0/weight": "fc1.weight",
    "ffn/linear_0/bias": "fc1.bias",
    "ffn/linear_1/weight": "fc2.weight",
    "ffn/linear_1/bias": "fc2.bias",
}
_TOP_NAMES = {
    "encoder/conv1/weight": "conv1.weight", "encoder/conv1/bias": "conv1.bias",
    "encoder/conv2/weight": "conv2.weight", "encoder/conv2/bias": "conv2.bias",
    "encoder/position_encodings/encodings": "embed_positions",
    "encoder/layer_norm/gamma": "layer_norm.weight", "encoder/layer_norm/beta": "layer_norm.bias",
}


def _string(f: BinaryIO) -> str:
    (n,) = struct.unpack("<H", f.read(2))
    return f.read(n)[:-1].decode("utf-8")  # NUL-terminated


def read_ct2(path: Path, *, prefix: str = "encoder/") -> tuple[str, int, dict[str, np.ndarray]]:
    """Read the variables of a CTranslate2 ``model.bin`` whose names start with ``prefix``.

    Returns the spec name (``"WhisperSpec"``), its revision and ``name -> array``.
    """
    with open(path, "rb") as f:
        (version,) = struct.unpack("<I", f.read(4))
        if version not in (5, 6):
            raise ModelError(f"{str(path)!r} is CTranslate2 binary version {version}, only 5 and 6 are read; "
                             "re-convert the model with a recent ctranslate2")
        spec = _string(f)
        revision, count = struct.unpack("<II", f.read(8))
        out = {}
        for _ in range(count):
            name = _string(f)
            (rank,) = struct.unpack("<B", f.read(1))
            shape = struct.unpack(f"<{rank}I", f.read(4 * rank))
            dtype_id, nbytes = struct.unpack("<BI", f.read(5))
            if not name.startswith(prefix):
                f.seek(nbytes, 1)
                continue
            buf = f.read(nbytes)
            dtype = CT2_DTYPES.get(dtype_id)
            if dtype is None:
                raise ModelError(f"{str(path)!r}: variable {name!r} has unknown CTranslate2 dtype id {dtype_id}")
            if dtype == "bfloat16":
                array = (np.frombuffer(buf, np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                array = np.frombuffer(buf, dtype)
            out[name] = array.reshape(shape)
    return spec, revision, out


def ct2_to_state_dict(variables: dict[str, np.ndarray]) -> tuple[dict[str, torch.Tensor], WhisperEncoderConfig]:
    """Map CT2 encoder variables onto :class:`WhisperEncoder` names; infer the config from the shapes."""
    if any(k.endswith("weight_scale") for k in variables):
        raise ModelError("the model is int8-quantised (it has *weight_scale variables); "
                         "convert it with --quantization float16 or float32")
    if "encoder/conv1/weight" not in variables or "encoder/num_heads" not in variables:
        raise ModelError("model.bin has no Whisper encoder (encoder/conv1/weight, encoder/num_heads); "
                         "is it a CTranslate2 Whisper model?")
    fp = {k: torch.from_numpy(np.asarray(v, dtype=np.float32).copy()) for k, v in variables.items()}
    state: dict[str, torch.Tensor] = {}
    layers = set()
    for key, value in fp.items():
        if key in _TOP_NAMES:
            state[_TOP_NAMES[key]] = value
        elif match := _LAYER.fullmatch(key):
            i, rest = int(match[1]), match[2]
            layers.add(i)
            if rest in _LAYER_NAMES:
                state[f"layers.{i}.{_LAYER_NAMES[rest]}"] = value
            elif rest == "self_attention/linear_0/weight":
                q, k, v = value.chunk(3, dim=0)
                state.update({f"layers.{i}.self_attn.q_proj.weight": q, f"layers.{i}.self_attn.k_proj.weight": k,
                              f"layers.{i}.self_attn.v_proj.weight": v})
            elif rest == "self_attention/linear_0/bias":
                q, _, v = value.chunk(3, dim=0)  # the key bias is dropped (softmax ignores it)
                state.update({f"layers.{i}.self_attn.q_proj.bias": q, f"layers.{i}.self_attn.v_proj.bias": v})
    conv1 = fp["encoder/conv1/weight"]
    config = WhisperEncoderConfig(
        n_mels=int(conv1.shape[1]), d_model=int(conv1.shape[0]), n_heads=int(variables["encoder/num_heads"]),
        n_layers=len(layers), n_ctx=int(fp["encoder/position_encodings/encodings"].shape[0]),
    )
    return state, config


def convert(src_dir: Path, out_dir: Path, *, license_text: str | None = None) -> Path:
    """Convert ``src_dir/model.bin`` into ``out_dir``; return ``out_dir``."""
    model_bin = Path(src_dir) / "model.bin"
    if not model_bin.is_file():
        raise ModelError(f"{str(model_bin)!r} is missing: SRC_DIR must be a CTranslate2 model folder")
    spec, revision, variables = read_ct2(model_bin)
    state, config = ct2_to_state_dict(variables)
    sha = hashlib.sha256()
    with open(model_bin, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    metadata = {"source": {"format": "ctranslate2", "spec": spec, "revision": revision,
                           "path": str(Path(src_dir).resolve()), "model_bin_sha256": sha.hexdigest()}}
    if license_text:
        metadata["license"] = license_text
    return save_whisper_encoder(out_dir, state, config, metadata=metadata)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src_dir", type=Path, help="CTranslate2 Whisper model folder (with model.bin)")
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
