"""The speaker-adaptation head (``--adapt``) of a Whisper-backed artifact, as build steps.

Step 6 of the default model's build (recipe ``shipped-default``,
:mod:`emovox.recipes.build_default`; ``scripts/build_models.py default``):

1. If the artifact's ``model.onnx`` has no ``embedding`` output (exports made
   before speaker adaptation existed), re-export it (float16 weights read
   from ``model.safetensors``, as the build does) and check it against torch.
2. The embedding of every clip the default model was trained on (the four
   shared corpora, ``emovox7`` labels) through the product path
   (:meth:`emovox.inference.Predictor.clip_embedding`), cached in ``--workdir``.
3. :func:`emovox.recipes.speaker_adaptation.fit_speaker_adaptation` on the
   build's 3 speaker-disjoint folds: calibration and figures with each
   held-out speaker centred by 20 random clips of their own, then the head
   fitted on everyone; written as ``adapt.safetensors`` + ``config["adaptation"]``.
4. Checks that the shipped files give the same adapted probabilities on the
   ONNX and torch backends; for the shipped model, writes the card's section
   (``docs/model_card.md``).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from emovox.recipes import shipped_default as build


def _weights_id(artifact: Path) -> str:
    h = hashlib.sha256()
    with open(artifact / "model.safetensors", "rb") as handle:
        while chunk := handle.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()[:16]


def ensure_embedding_output(artifact: Path) -> None:
    """Re-export ``model.onnx`` with the ``embedding`` output when it lacks one."""
    from emovox.export.onnx import export_onnx, share_weights
    from emovox.inference.backends import OnnxBackend

    if OnnxBackend(artifact).has_embeddings:
        return
    precision = json.loads((artifact / "config.json").read_text()).get("onnx", {}).get("precision", "")
    if precision == "int8":
        export_onnx(artifact, artifact, quantize=True)
    else:
        export_onnx(artifact, artifact, half_weights=True)
        build.log(
            f"model.onnx re-exported with its embedding output; shares "
            f"{share_weights(artifact) / 1e6:.1f} MB of weights with model.safetensors"
        )
    config = json.loads((artifact / "config.json").read_text())
    if isinstance(config.get("files"), dict):
        config["files"]["model.onnx"] = {"bytes": (artifact / "model.onnx").stat().st_size}
        from emovox.fileio import atomic_write_text

        atomic_write_text(artifact / "config.json", json.dumps(config, indent=2) + "\n")


def embeddings(artifact: Path, kept, workdir: Path) -> np.ndarray:
    """``(n, d)`` embeddings of ``kept``'s clips, cached by the artifact's weights and the clip list."""
    from emovox.inference import load_model

    paths = [r.path for r in kept]
    key = hashlib.sha256((_weights_id(artifact) + "\n".join(paths)).encode()).hexdigest()[:16]
    cache = workdir / f"embeddings-{key}.npy"
    if cache.exists():
        return np.load(cache)
    predictor = load_model(artifact, num_threads=1)
    rows, t0 = [], time.time()
    for i, path in enumerate(paths):
        rows.append(predictor.clip_embedding(path))
        if (i + 1) % 500 == 0:
            build.log(f"embeddings {i + 1}/{len(paths)} ({time.time() - t0:.0f} s)")
    x = np.stack(rows).astype(np.float32)
    workdir.mkdir(parents=True, exist_ok=True)
    np.save(cache, x)
    return x


def parity(artifact: Path, kept) -> float:
    """Max adapted-probability difference between the ONNX and torch backends on a few corpus clips."""
    from emovox.inference import load_model

    speaker = kept[0].speaker_key
    own = [r.path for r in kept if r.speaker_key == speaker][:25]
    onnx_p, torch_p = (
        load_model(artifact, backend="onnx", num_threads=1),
        load_model(artifact, backend="torch", num_threads=1),
    )
    onnx_p.adapt(own[:20])
    torch_p.adapt(own[:20])
    a = np.array([list(onnx_p.predict(p).scores.values()) for p in own[20:]])
    b = np.array([list(torch_p.predict(p).scores.values()) for p in own[20:]])
    return float(np.abs(a - b).max())


CARD_HEADING = "## Speaker adaptation (`--adapt`)"


def card_section(section: dict, plain: dict) -> str:
    """The model card's section on the adapted head, from its config section and the plain out-of-fold figures."""
    held = section["heldout"]
    rows = "\n".join(
        f"| {g} | {plain.get(g, {}).get('uar', float('nan')):.3f} | {u:.3f} |" for g, u in held["per_group"].items()
    )
    return f"""{CARD_HEADING}

`emovox predict FILE --adapt CLIPS` (also `emovox listen --adapt`, and
`Predictor.adapt(paths)` in Python) switches to a second head fitted on
speaker-centred embeddings (`adapt.safetensors`, {section["n_speakers"]} training speakers): the mean
embedding of a few unlabelled recordings of the speaker (at least {section["min_clips"]} clips,
about {section["recommended_clips"]} recommended; long recordings are cut into 3 s segments) is
subtracted first, which removes much of the voice and channel offset. It is a
separate option, never the headline figure: the user must give clips of the
speaker first. Same {held["protocol"]}; its own
calibration (T = {section["temperature"]:.3f}, threshold {section["threshold"]:.3f}).

| corpus | UAR without (7-way, above) | UAR with `--adapt` (k = {held["k"]}) |
|---|---|---|
{rows}
| all | {plain.get("all", {}).get("uar", float("nan")):.3f} | **{held["uar"]:.3f}** (accuracy {held["accuracy"]:.3f}) |

"""


def write_card_section(card: Path, text: str) -> None:
    """Insert or replace this step's section of the model card ``card``."""
    build.replace_card_section(card, CARD_HEADING, text)


def run(artifact: Path, workdir: Path, *, card: Path | None = None) -> dict:
    """Steps 1-4 on ``artifact`` (embeddings cached in ``workdir``); ``card``: the model card to update, if any."""
    from emovox.recipes.speaker_adaptation import add_adaptation, fit_speaker_adaptation

    kept, y, classes = build.records()
    config = json.loads((artifact / "config.json").read_text())
    if list(config["task"]["labels"]) != list(classes):
        raise SystemExit(f"{artifact} predicts {config['task']['labels']}, the recipe's classes are {classes}")
    ensure_embedding_output(artifact)
    x = embeddings(artifact, kept, workdir)
    fit = fit_speaker_adaptation(
        x,
        np.asarray(y),
        [r.speaker_key for r in kept],
        n_classes=len(classes),
        splits=build.splits(kept, y),
        groups=[r.corpus for r in kept],
    )
    add_adaptation(artifact, fit)
    diff = parity(artifact, kept)
    if diff > 1e-3:
        raise SystemExit(f"ONNX and torch disagree on adapted probabilities by {diff:.2e}")
    if card is not None:
        write_card_section(card, card_section(fit.section, config["metrics"]["speaker_independent"]))
    build.log(
        f"adapted head added: held-out UAR {fit.section['heldout']['uar']:.3f} "
        f"(k={fit.section['heldout']['k']}), ONNX vs torch max difference {diff:.1e}"
    )
    return fit.section
