"""ONNX export of a model artifact, optionally int8-quantised.

``export_onnx(artifact_dir, out_dir)`` writes ``out_dir/model.onnx`` and a copy
of the artifact's ``config.json`` (unchanged), so ``out_dir`` is an artifact the
ONNX backend loads (``load_model(out_dir, backend="onnx")``). The graph takes
``waveform`` ``(batch, samples)`` float32 and returns ``logits``
``(batch, n_classes)``; both axes are dynamic and the front end is inside the
graph (the neural model input contract), so inference needs onnxruntime only.
A model with ``embedding``/``classify`` methods (the Whisper-backed ones) gets a
second output, ``embedding`` ``(batch, n_features)``: the head's input, which
speaker adaptation (:mod:`emovox.inference.adaptation`) reads.

The export is checked before it is kept: the ONNX and torch probabilities of
the same random clips must agree within 1e-4 (float32), at the model's clip
length and, for models taking any length (``preprocessing.crop = "none"``), at
another length too. ``quantize=True``
applies onnxruntime's dynamic int8 quantisation to the weights of the body's
``MatMul``/``Gemm``/``Conv`` nodes (the front end's fixed DFT and mel matrices
stay float32); its accuracy change is measured by ``bench/throughput.py
--int8``, not asserted here. ``half_weights=True`` instead stores every large
float32 weight that float16 represents exactly (e.g. the weights of a model
whose encoder was stored in float16) as float16 followed by a ``Cast`` back
to float32: half the file, the same numbers (onnxruntime folds the casts when
it loads the graph), checked like the float32 graph.

:func:`share_weights` then rewrites such a ``model.onnx`` so that its float16
weights are read from the artifact's own ``model.safetensors`` (ONNX external
data: offsets into that file, transposed where the exporter stored a
transpose): the artifact carries one copy of the weights for both backends.
The ONNX file then needs ``model.safetensors`` beside it.

Files are written to temporary names and renamed: a failed export never
leaves a half-written ``model.onnx``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from emovox.errors import ModelError
from emovox.fileio import atomic_output
from emovox.inference.backends import CONFIG_FILE, EMBEDDING_OUTPUT, ONNX_FILE, ModelInfo, TorchBackend, read_config
from emovox.inference.calibration import softmax

__all__ = ["export_onnx", "share_weights", "OPSET", "PARITY_TOLERANCE"]

OPSET = 17
PARITY_TOLERANCE = 1e-4


def _front_end_prefix(module) -> str | None:
    """ONNX node-name prefix of the model's first submodule (its front end)."""
    for name, _ in module.named_children():
        return f"/{name}/"
    return None


def _use_conv_stft(module) -> None:
    """Switch every log-mel front end inside ``module`` to the conv1d DFT (same buffers, same numbers):
    ``torch.stft`` has no ONNX translation for complex outputs."""
    from emovox.features.frontend import LogMelFrontend

    for sub in module.modules():
        if isinstance(sub, LogMelFrontend):
            sub.stft = "conv"


def _has_embedding(module) -> bool:
    return callable(getattr(module, "embedding", None)) and callable(getattr(module, "classify", None))


def _with_embedding(module):
    """A module returning ``(logits, embedding)`` from one encoder pass, for a two-output graph."""
    import torch

    class WithEmbedding(torch.nn.Module):
        def __init__(self, model) -> None:
            super().__init__()
            self.model = model

        def forward(self, y):
            embedding = self.model.embedding(y)
            return self.model.classify(embedding), embedding

    return WithEmbedding(module).eval()


def _quantize(fp32_path: Path, int8_path: Path, *, exclude_prefix: str | None) -> None:
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise ModelError("int8 export needs onnx and onnxruntime: pip install 'emovox[onnx]'") from None
    graph = onnx.load(str(fp32_path)).graph
    excluded = [n.name for n in graph.node if exclude_prefix and n.name.startswith(exclude_prefix)]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint on the root logger
    try:
        quantize_dynamic(
            str(fp32_path),
            str(int8_path),
            weight_type=QuantType.QUInt8,
            op_types_to_quantize=["MatMul", "Gemm", "Conv"],
            nodes_to_exclude=excluded,
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        root.setLevel(level)


def _halve_weights(src: Path, dst: Path, *, min_elements: int = 1024) -> int:
    """Rewrite ``src`` to ``dst`` with exactly-float16 weights stored as float16 + ``Cast``; returns how many."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ModelError("float16 weight storage needs onnx: pip install 'emovox[onnx]'") from None
    model = onnx.load(str(src))
    graph = model.graph
    kept, casts = [], []
    for init in graph.initializer:
        w = numpy_helper.to_array(init) if init.data_type == TensorProto.FLOAT else None
        if w is None or w.size < min_elements or not np.array_equal(w.astype(np.float16).astype(np.float32), w):
            kept.append(init)
            continue
        half = numpy_helper.from_array(w.astype(np.float16), name=f"{init.name}__fp16")
        kept.append(half)
        casts.append(
            helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=f"{init.name}__cast")
        )
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(dst))
    return len(casts)


def _atomic_copy(src: Path, dst: Path) -> None:
    with atomic_output(dst) as tmp:
        shutil.copyfile(src, tmp)


def export_onnx(
    artifact_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    quantize: bool = False,
    half_weights: bool = False,
    opset: int = OPSET,
    seed: int = 0,
) -> Path:
    """Export an artifact's model to ``out_dir/model.onnx`` (+ its ``config.json``).

    Parameters
    ----------
    artifact_dir : str or PathLike
        A model artifact (``config.json`` + ``model.safetensors``).
    out_dir : str or PathLike
        Destination folder (created; may be ``artifact_dir`` itself).
    quantize : bool
        Write the int8 dynamically quantised graph instead of float32.
    half_weights : bool
        Store the weights float16 represents exactly as float16 (same outputs,
        smaller file); not with ``quantize``.
    opset : int
        ONNX opset.
    seed : int
        Seeds the random clips of the parity check.

    Returns
    -------
    Path
        The written ``model.onnx``.
    """
    try:
        import torch
    except ImportError:
        raise ModelError("ONNX export needs PyTorch: pip install 'emovox[torch]'") from None
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError("ONNX export needs onnxruntime: pip install 'emovox[onnx]'") from None
    if quantize and half_weights:
        raise ModelError("choose int8 quantisation or float16 weight storage, not both")
    artifact_dir, out_dir = Path(artifact_dir), Path(out_dir)
    info = ModelInfo.from_config(read_config(artifact_dir))
    module = TorchBackend.from_artifact(artifact_dir).module.eval()
    _use_conv_stft(module)
    if out_dir.exists() and not out_dir.is_dir():
        raise ModelError(f"--out {out_dir} is a file: give a folder for model.onnx and config.json")
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    check = (0.1 * rng.standard_normal((2, info.n_samples))).astype(np.float32)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export.") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outputs = ["logits", EMBEDDING_OUTPUT] if _has_embedding(module) else ["logits"]
                torch.onnx.export(
                    _with_embedding(module) if len(outputs) > 1 else module,
                    (torch.from_numpy(check[:1]),),
                    str(fp32),
                    dynamo=False,
                    input_names=["waveform"],
                    output_names=outputs,
                    opset_version=opset,
                    dynamic_axes={"waveform": {0: "batch", 1: "samples"}, **{o: {0: "batch"} for o in outputs}},
                )
        except ModelError:  # the model refused itself, in one line that says why
            raise
        except Exception as error:  # the exporter raises many types
            raise ModelError(
                f"ONNX export of {artifact_dir} failed: {str(error).splitlines()[0]}; "
                "the model must use ONNX-exportable operators (e.g. a conv1d DFT, not torch.stft)"
            ) from None
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(fp32), options, providers=["CPUExecutionProvider"])
        checks = [check]
        if not info.fixed_length:  # the model takes any length: check another one too
            checks.append((0.1 * rng.standard_normal((1, int(0.6 * info.n_samples) + 123))).astype(np.float32))
        if half_weights:
            halved = Path(tmp) / "fp16w.onnx"
            _halve_weights(fp32, halved)
            fp32 = halved
            session = ort.InferenceSession(str(fp32), options, providers=["CPUExecutionProvider"])
        for x in checks:
            try:
                got = softmax(session.run(None, {"waveform": x})[0])
            except Exception as error:  # onnxruntime raises its own types
                raise ModelError(
                    f"the exported ONNX model fails on input shape {x.shape}: {str(error).splitlines()[0]}"
                ) from None
            with torch.inference_mode():
                want = softmax(module(torch.from_numpy(x)).numpy())
            err = float(np.abs(got - want).max())
            if err > PARITY_TOLERANCE:
                raise ModelError(
                    f"the exported ONNX model disagrees with torch on input shape {x.shape} (max "
                    f"probability difference {err:.2e} > {PARITY_TOLERANCE}): the model has an "
                    "operator the exporter mistranslates or a length fixed at trace time"
                )
        final = fp32
        if quantize:
            final = Path(tmp) / "int8.onnx"
            _quantize(fp32, final, exclude_prefix=_front_end_prefix(module))
        with atomic_output(out_dir / ONNX_FILE) as staged:
            shutil.move(str(final), str(staged))
    if out_dir.resolve() != artifact_dir.resolve():
        _atomic_copy(artifact_dir / CONFIG_FILE, out_dir / CONFIG_FILE)
    return out_dir / ONNX_FILE


def _safetensors_index(path: Path) -> tuple[int, dict]:
    """``(byte offset of the data, header)`` of a safetensors file (8-byte length, JSON header, data)."""
    import json
    import struct

    with open(path, "rb") as handle:
        (n,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(n))
    header.pop("__metadata__", None)
    return 8 + n, header


def share_weights(artifact_dir: str | os.PathLike, *, min_elements: int = 1024, seed: int = 0) -> int:
    """Make ``model.onnx`` read its float16 weights from ``model.safetensors`` in the same folder.

    Every float16 initializer of at least ``min_elements`` values that equals a
    float16 tensor of ``model.safetensors`` (or its transpose, for a matrix) is
    replaced by an external-data reference to that tensor's bytes (plus a
    ``Transpose`` node where needed), so the artifact stores those weights once.
    Run it on an export made with ``half_weights=True`` from an artifact whose
    encoder was stored in float16 (:func:`emovox.models.whisper_encoder.half_encoders`).
    The rewritten graph must give the same logits as before on a random clip
    (else :class:`ModelError`, and the file is left as it was).

    Returns
    -------
    int
        Bytes of weights now read from ``model.safetensors``.
    """
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
        from safetensors.numpy import load_file
    except ImportError:
        raise ModelError(
            "sharing weights needs onnx, onnxruntime and safetensors: pip install 'emovox[onnx]'"
        ) from None
    directory = Path(artifact_dir)
    onnx_path, weights_path = directory / ONNX_FILE, directory / "model.safetensors"
    base, header = _safetensors_index(weights_path)
    tensors = {k: v for k, v in load_file(str(weights_path)).items() if v.dtype == np.float16}
    by_shape: dict[tuple, list[str]] = {}
    for name, value in tensors.items():
        by_shape.setdefault(value.shape, []).append(name)
    model = onnx.load(str(onnx_path))
    graph = model.graph
    kept, transposes, shared = [], [], 0
    for init in graph.initializer:
        hit = None
        if init.data_type == TensorProto.FLOAT16 and int(np.prod(init.dims)) >= min_elements:
            value = numpy_helper.to_array(init)
            hit = next(((k, False) for k in by_shape.get(value.shape, ()) if np.array_equal(tensors[k], value)), None)
            if hit is None and value.ndim == 2:
                hit = next(
                    ((k, True) for k in by_shape.get(value.shape[::-1], ()) if np.array_equal(tensors[k].T, value)),
                    None,
                )
        if hit is None:
            kept.append(init)
            continue
        name, transposed = hit
        start, end = header[name]["data_offsets"]
        ref = TensorProto(
            name=f"{init.name}__shared" if transposed else init.name,
            data_type=TensorProto.FLOAT16,
            dims=list(tensors[name].shape),
            data_location=TensorProto.EXTERNAL,
        )
        for key, text in (
            ("location", weights_path.name),
            ("offset", str(base + start)),
            ("length", str(end - start)),
        ):
            entry = ref.external_data.add()
            entry.key, entry.value = key, text
        kept.append(ref)
        shared += end - start
        if transposed:
            transposes.append(
                helper.make_node("Transpose", [ref.name], [init.name], perm=[1, 0], name=f"{init.name}__transpose")
            )
    if not shared:
        return 0
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = transposes + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    x = (0.1 * np.random.default_rng(seed).standard_normal((1, 24000))).astype(np.float32)
    before = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    want = before.run(None, {before.get_inputs()[0].name: x})[0]
    with atomic_output(onnx_path) as staged:  # beside the weights it points at; dropped unless it agrees
        onnx.save(model, str(staged))
        after = ort.InferenceSession(str(staged), options, providers=["CPUExecutionProvider"])
        got = after.run(None, {after.get_inputs()[0].name: x})[0]
        if not np.allclose(got, want, rtol=0, atol=1e-6):
            raise ModelError(
                f"sharing weights changed the ONNX logits (max difference "
                f"{float(np.abs(got - want).max()):.2e}): keeping the unshared model.onnx"
            )
    return shared
