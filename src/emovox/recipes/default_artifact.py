"""The artifact the ``default`` recipe writes: a new head on a self-contained copy of the base encoder.

The artifact copies the encoder (about 30 MB) rather than referring to the
installed package's: a model must keep working, with the same answers, when
emovox is upgraded and ships another encoder, and must travel as one folder
(to a service, a batch cluster). ``config["training"]["base_model"]``
records which model it was built on (:func:`base_model_identity`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np

from emovox.errors import ConfigError, ModelError
from emovox.recipes.default_embeddings import BASE_MODEL

__all__ = ["LICENSE_FILE", "ONNX_PRECISION", "base_model_identity", "write_artifact", "model_card_text"]

LICENSE_FILE = "LICENSE-whisper.txt"
ONNX_PRECISION = "float16 weights read from model.safetensors, float32 compute"


def base_model_identity(model: str | os.PathLike = BASE_MODEL) -> dict:
    """What a run builds on: the base model's name or folder, version and hashes (JSON-able)."""
    from emovox.evaluation.robustness import embedding_id
    from emovox.inference.backends import read_config
    from emovox.inference.predictor import resolve_model_dir

    folder = resolve_model_dir(model)
    config = read_config(folder)
    encoder = (config.get("training") or {}).get("encoder") or {}
    return {
        "model": os.fspath(model),
        "package_version": config.get("package_version"),
        "config_sha256": hashlib.sha256((folder / "config.json").read_bytes()).hexdigest(),
        "encoder_sha256": encoder.get("sha256"),
        "embedding_id": embedding_id(os.fspath(folder)),
    }


def write_artifact(
    out_dir: str | os.PathLike,
    head,
    *,
    classes: Sequence[str],
    calibration,
    base: str | os.PathLike = BASE_MODEL,
    training: dict | None = None,
    metrics: dict | None = None,
    model_card: str | None = None,
    calibration_note: str | None = None,
    carry_files: Sequence[str] = (),
    carry_config: Sequence[str] = (),
) -> Path:
    """Write ``head`` on a copy of ``base``'s encoder as a self-contained artifact folder ``out_dir``.

    Parameters
    ----------
    head : emovox.models.softmax_regression.LinearFit
        Scaler and linear layer on the base model's embedding ``(d,)``.
    classes : sequence of str
        The artifact's labels, in the head's row order.
    calibration : emovox.inference.calibration.CalibrationResult
        Temperature and threshold (stored as ``calibration`` and ``threshold``).
    base : str or path-like
        A ``whisper-linear`` artifact (a shipped name or a folder).
    training, metrics : dict, optional
        Sections of ``config.json`` (``training`` gains ``base_model`` and the encoder description).
    model_card : str, optional
        Markdown stored as ``config["model_card"]``.
    calibration_note : str, optional
        What the calibration was fitted on (``config["calibration"]["fitted_on"]``).
    carry_files, carry_config : sequences of str
        Files (e.g. ``adapt.safetensors``) and ``config.json`` sections (e.g.
        ``adaptation``, ``robustness``) copied from ``base``: for a new head on
        the base model's own labels (a rebuild of the shipped model), never
        for other labels (a ``ConfigError``).

    Notes
    -----
    The folder is assembled beside ``out_dir`` and moved into place at the
    end, so a reader never sees half a model. The ONNX graph is exported (the
    exporter checks it against torch) and reads its float16 weights from
    ``model.safetensors``.
    """
    from emovox.export.onnx import export_onnx, share_weights
    from emovox.fileio import atomic_folder, atomic_write_text, file_mode
    from emovox.inference.predictor import resolve_model_dir
    from emovox.models.artifact import load_artifact, make_config, save_artifact
    from emovox.models.spec import TaskSpec
    from emovox.models.whisper_classifier import HeadFit, WhisperEmotionClassifier
    from emovox.models.whisper_encoder import half_encoders

    base_dir = resolve_model_dir(base)
    model, config = load_artifact(base_dir)
    if config["architecture"]["name"] != "whisper-linear":
        raise ModelError(
            f"base model {os.fspath(base)!r} is a {config['architecture']['name']!r} model: the "
            "default recipe needs a 'whisper-linear' one (such as the shipped 'default')"
        )
    params = dict(config["architecture"]["params"])
    classes = tuple(str(c) for c in classes)
    n_features = cast(WhisperEmotionClassifier, model).head.in_features  # a whisper-linear artifact builds one
    if head.coef.shape != (len(classes), n_features):
        raise ConfigError(
            f"head of shape {head.coef.shape} does not fit {len(classes)} classes on {n_features} features"
        )
    if (carry_files or carry_config) and list(classes) != list(config["task"]["labels"]):
        raise ConfigError(
            f"carry_files/carry_config belong to the base model's labels {config['task']['labels']}, "
            f"not {list(classes)}"
        )
    new = WhisperEmotionClassifier(len(classes), encoder=params["encoder"], layers=params["layers"])
    kept = {k: v for k, v in model.state_dict().items() if not k.startswith(("head.", "feature_"))}
    missing = new.load_state_dict(kept, strict=False).missing_keys
    if sorted(missing) != ["feature_mean", "feature_scale", "head.bias", "head.weight"]:
        raise ModelError(f"base model {os.fspath(base)!r} does not match its architecture (missing {missing})")
    f32 = np.float32
    new.set_head(
        HeadFit(
            layers=tuple(new.layers),
            C=float(head.C),
            mean=np.asarray(head.mean, f32),
            scale=np.asarray(head.scale, f32),
            coef=np.asarray(head.coef, f32),
            intercept=np.asarray(head.intercept, f32),
            inner_uar=float("nan"),
        )
    )
    half_encoders(new)
    task = config["task"]
    spec = TaskSpec(
        labels=classes, sample_rate_hz=int(task["sample_rate_hz"]), clip_s=float(task["clip_s"]), input_kind="waveform"
    )
    base_training = config.get("training") or {}
    training = {
        **(training or {}),
        "base_model": base_model_identity(base),
        "encoder": base_training.get("encoder"),
        "encoder_source": base_training.get("encoder_source"),
        "layers": list(new.layers),
    }
    out = make_config(
        spec,
        "whisper-linear",
        params,
        preprocessing=dict(config.get("preprocessing") or {}),
        training={k: v for k, v in training.items() if v is not None},
        metrics=dict(metrics or {}),
        **calibration.to_config(),
    )
    if calibration_note:
        out["calibration"]["fitted_on"] = calibration_note
    out["onnx"] = {"precision": ONNX_PRECISION}
    for section in carry_config:
        if section in config:
            out[section] = config[section]
    if model_card:
        out["model_card"] = model_card
    target = Path(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(target) as staging:  # weights, ONNX and config swapped in together
        save_artifact(staging, new, out)
        export_onnx(staging, staging, half_weights=True)
        share_weights(staging)
        for name in (LICENSE_FILE, *carry_files):
            if (base_dir / name).is_file():
                shutil.copyfile(base_dir / name, staging / name)
                os.chmod(staging / name, file_mode())
        written = json.loads((staging / "config.json").read_text(encoding="utf-8"))
        written["files"] = {
            p.name: {"bytes": p.stat().st_size} for p in sorted(staging.iterdir()) if p.name != "config.json"
        }
        atomic_write_text(staging / "config.json", json.dumps(written, indent=2, sort_keys=True) + "\n")
    return target


def model_card_text(classes: Sequence[str], training: dict, heldout: dict, calibration) -> str:
    """The ``model_card`` of an artifact the ``default`` recipe wrote (markdown)."""
    data = training["data"]
    counts = ", ".join(f"{c} {n}" for c, n in data["class_counts"].items())
    honest = (
        "Speaker-independent"
        if heldout["speaker_independent"]
        else "**Not speaker-independent** (the data names no speakers, or one)"
    )
    head = training["head"]
    copies = f" and {head['copies']} degraded copies of each" if head["copies"] else ""
    return f"""# emovox model fitted on your data (recipe `default`)

Built by `emovox train --recipe default`: the frozen encoder of emovox's
shipped default model (OpenAI Whisper base, first 4 blocks, float16; MIT
licence, `LICENSE-whisper.txt`) and a new linear head (balanced softmax
regression, C = {head["C"]:g}) fitted on {data["n_clips"]} clips{copies}.

**Labels** ({len(classes)}): {", ".join(classes)}. Answers under the calibrated
confidence {calibration.threshold:.3f} are `unknown`; inputs without speech
are `no_speech`.

**Training data**: {", ".join(data["corpora"])}; {data["n_speakers"]} speaker(s);
{counts}. The model inherits the terms of this data.

## Held-out figures

{honest}: {heldout["protocol"]}. UAR {heldout["uar"]:.3f}, accuracy
{heldout["accuracy"]:.3f} on {heldout["n"]} clips (fold UAR {heldout["fold_uar_mean"]:.3f} ±
{heldout["fold_uar_std"]:.3f}). Per-class recall:
{", ".join(f"{c} {r:.2f}" for c, r in heldout["recall"].items() if r is not None)}.

## Calibration

Temperature {calibration.temperature:.3f} fitted on the out-of-fold logits
(ECE {calibration.ece_before:.3f} -> {calibration.ece_after:.3f}, measured on the
logits it was fitted on). `unknown` threshold {calibration.threshold:.3f}: the confidence
that keeps 90% of the correct held-out answers; {heldout["answered_share"]:.0%} of the
held-out clips are answered.

These figures hold for speakers and recording conditions like those of the
training data; other voices, languages and channels will score lower.
"""
