"""Fuzz the model-artifact loader: ``config.json`` and the safetensors weights.

Input layout: ``config.json`` bytes, then :data:`SEPARATOR`, then the bytes of
``model.safetensors`` (an 8-byte header length, a JSON header of dtypes,
shapes and data offsets, the tensor data). Without the separator the input
is the config and the seed's weights are used. Seeds are a real tiny-cnn
artifact plus hand-made variants (huge shapes, wrong dtypes, offsets past the
end, absurd architecture sizes); libFuzzer mutates from there.

Each input is written to an artifact folder and loaded the ways emovox loads
one: :func:`emovox.models.artifact.read_config` and
:func:`~emovox.models.artifact.load_artifact` (torch path),
:func:`emovox.inference.backends.read_config` +
:meth:`~emovox.inference.backends.ModelInfo.from_config` (the ONNX path's
config reader). Contract: a loaded model and config, or an
:class:`~emovox.errors.EmovoxError` (``ModelError`` / ``ConfigError``); never
another exception, a hang, or memory beyond ``-rss_limit_mb``.

    python fuzz/fuzz_artifact.py CORPUS_DIR SEEDS_DIR -max_total_time=600 -rss_limit_mb=2048
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import atheris
import common  # noqa: F401

with atheris.instrument_imports(include=["emovox"]):
    import torch

    from emovox.errors import EmovoxError
    from emovox.inference.backends import ModelInfo
    from emovox.inference.backends import read_config as read_info_config
    from emovox.models.artifact import CONFIG_NAME, WEIGHTS_NAME, load_artifact, read_config

torch.set_num_threads(1)
SEPARATOR = b"\n--emovox-weights--\n"
_DIR = tempfile.mkdtemp(prefix="emovox-fuzz-artifact-")
_SEED_WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seed_weights.safetensors")
_DEFAULT_WEIGHTS = Path(_SEED_WEIGHTS).read_bytes() if os.path.exists(_SEED_WEIGHTS) else b""


def test_one_input(data: bytes) -> None:
    config, sep, weights = data.partition(SEPARATOR)
    if not sep:
        weights = _DEFAULT_WEIGHTS
    with open(os.path.join(_DIR, CONFIG_NAME), "wb") as fh:
        fh.write(config)
    with open(os.path.join(_DIR, WEIGHTS_NAME), "wb") as fh:
        fh.write(weights)
    try:
        read_config(_DIR)
        model, cfg = load_artifact(_DIR)
        assert isinstance(model, torch.nn.Module) and isinstance(cfg, dict)
        assert not model.training
    except EmovoxError as error:
        assert "\n" not in str(error), str(error)
    try:
        info = ModelInfo.from_config(read_info_config(_DIR))
        assert len(info.labels) >= 2
        assert info.sample_rate_hz > 0 and math.isfinite(info.clip_s) and info.clip_s > 0, info
        assert 0 < info.n_samples <= 3600 * info.sample_rate_hz, info
        assert math.isfinite(info.temperature) and info.temperature > 0
        assert 0.0 <= info.threshold <= 1.0
    except EmovoxError as error:
        assert "\n" not in str(error), str(error)


if __name__ == "__main__":
    common.start(test_one_input)
