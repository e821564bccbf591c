"""Export of model artifacts to other runtimes (ONNX, optionally int8)."""

from __future__ import annotations

from emovox.export.onnx import export_onnx

__all__ = ["export_onnx"]
