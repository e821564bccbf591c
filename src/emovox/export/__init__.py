"""Exports: model artifacts to other runtimes (ONNX, optionally int8), and timelines to subtitle and
annotation formats (:mod:`emovox.export.timeline_formats`: SRT, WebVTT, Audacity labels, ELAN)."""

from __future__ import annotations

from emovox.export.onnx import export_onnx

__all__ = ["export_onnx"]
