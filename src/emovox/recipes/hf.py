"""The ``hf-linear`` recipe: a frozen Hugging Face speech encoder (``--backbone DIR``) with a fitted linear head.

::

    emovox train --recipe hf-linear --backbone /models/wavlm-base-plus --corpus ravdess --out runs/wavlm
    emovox train --recipe hf-linear --backbone facebook/hubert-base-ls960 --corpus csv:mine.csv --folds 5 --out runs/h

``--backbone`` is a model folder (``save_pretrained`` output, a downloaded
snapshot) or a name already in the local Hugging Face cache; nothing is
downloaded (:func:`emovox.models.hf_encoder.load_hf_encoder`: wav2vec 2.0,
HuBERT, WavLM, data2vec-audio, Whisper; needs ``pip install "emovox[hf]"``).

1. **Features**: every clip through the product path
   (:func:`emovox.audio.load_audio`, :func:`emovox.audio.trim_for_model`,
   the first 30 s), then the mean and standard deviation over frames of every
   hidden state, ``(n_layers + 1, 2, d_model)`` per clip, cached on disk
   (``$EMOVOX_CACHE/features``) under a key of the file's bytes, the
   encoder's revision and this preprocessing.
2. **Head**: balanced multinomial logistic regression on the standardised
   statistics of a layer set
   (:func:`emovox.training.whisper_fit.fit_linear_head`): the layer set (each
   hidden state alone, or all of them; ``--set layers=[..]`` fixes it) and
   ``C`` are chosen by an inner speaker-disjoint 4-fold CV on the training
   speakers only.
3. **Calibration** (temperature and the ``unknown`` threshold,
   :func:`emovox.inference.calibration.calibrate`) on logits of speakers the
   head did not see: with ``--folds K``, a held-out protocol over the
   speakers (:func:`emovox.recipes.default_head.heldout_protocol`:
   leave-one-speaker-out when ``K`` equals their number, else ``K``
   speaker-disjoint folds; the whole head choice is redone inside each
   training side) that also writes ``OUT/report.md`` and ``OUT/result.json``
   like ``emovox evaluate``; without ``--folds``, the inner CV's out-of-fold
   logits of the chosen layers and ``C``.
4. **The artifact** in ``OUT/model``: architecture ``hf-head``
   (:class:`emovox.models.hf_head.HFHeadClassifier`: encoder + pooled
   statistics + standardisation + the linear head, waveform in, logits out),
   the encoder's weights (float32) in ``model.safetensors`` and its
   ``transformers`` config in the architecture parameters, so it loads
   without the original folder wherever a model loads (``emovox predict``,
   ``serve``, streaming, ``batch``) and exports to ONNX (``emovox export``).
   ``config.json`` has a ``backbone`` section: name, path, model type and
   family, revision (Hugging Face cache commit, else SHA-256 of the weight
   files), licence (the model card's ``license:``), the hidden states used,
   sizes and the transformers version.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emovox.errors import ConfigError, EmovoxError

__all__ = ["PREPROCESSING", "pooled_features", "backbone_section", "train_hf_model", "fit_recipe", "build_recipe"]

SAMPLE_RATE_HZ = 16000
MAX_S = 30.0
#: The artifact's preprocessing: whole clips (up to 30 s), the model silence trim, no normalisation.
PREPROCESSING = {"sample_rate_hz": SAMPLE_RATE_HZ, "crop": "none", "trim_silence": True, "normalize": None}
ARTIFACT_SUBDIR = "model"
#: With ``--folds``, each training side keeps at least 2 speakers for the inner choice of layers and C.
MIN_SPEAKERS_FOR_FOLDS = 3


def _max_samples(encoder) -> int:
    n = int(MAX_S * SAMPLE_RATE_HZ)
    return n if encoder.max_samples is None else min(n, int(encoder.max_samples))


def _min_samples() -> int:
    from emovox.inference.windows import MIN_WINDOW_S

    return int(MIN_WINDOW_S * SAMPLE_RATE_HZ)


def pooled_features(
    records: Sequence,
    encoder,
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Pooled hidden states of every record: ``(n, n_layers + 1, 2, d_model)`` float32.

    Each clip is decoded and silence-trimmed as for prediction, cut to its
    first 30 s (or the encoder's limit) and, if shorter than 0.5 s, repeated
    up to it (as :func:`emovox.inference.windows.fit_window` does), so the
    features are those the saved model computes. ``encoder`` is an
    :class:`~emovox.models.hf_encoder.HFEncoder` from ``load_hf_encoder``;
    with ``cache_dir`` each row is cached under its file's bytes and the
    encoder's revision.
    """
    import torch

    from emovox.audio import load_audio, trim_for_model
    from emovox.features.cache import FeatureCache, cache_key, file_fingerprint
    from emovox.models.hf_encoder import pool_states

    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    info = encoder.describe()
    config = {
        "hf_encoder": {k: info.get(k) for k in ("model_type", "revision", "frontend", "n_layers", "d_model")},
        "preprocessing": PREPROCESSING,
        "pooling": "mean+std per hidden state",
        "max_samples": _max_samples(encoder),
        "min_samples": _min_samples(),
    }
    rows = []
    for i, record in enumerate(records):
        path = os.fspath(getattr(record, "path", record))
        key = cache_key(file_fingerprint(path), config) if cache is not None else None
        row = cache.get(key) if cache is not None and key is not None else None
        if row is None:
            try:
                y = trim_for_model(load_audio(path, sample_rate_hz=SAMPLE_RATE_HZ), sample_rate_hz=SAMPLE_RATE_HZ)
            except EmovoxError as error:
                raise type(error)(f"{path}: {error}") from error
            y = np.ascontiguousarray(y[: _max_samples(encoder)], dtype=np.float32)
            if y.size < _min_samples():
                y = np.tile(y, int(np.ceil(_min_samples() / max(1, y.size))))[: _min_samples()]
            with torch.inference_mode():
                row = pool_states(encoder.hidden_states(torch.from_numpy(y)[None]))[0].numpy().astype(np.float32)
            if cache is not None and key is not None:
                cache.put(key, row)
        rows.append(row)
        if progress:
            progress(i + 1, len(records))
    return np.stack(rows)


def backbone_section(encoder, layers: Sequence[int]) -> dict:
    """The artifact's ``backbone`` section: what the encoder is and which of its hidden states the head reads."""
    info = encoder.describe()
    keys = ("name", "path", "model_type", "family", "revision", "revision_kind", "license", "n_layers", "d_model")
    return {
        **{k: info.get(k) for k in keys},
        "layers_used": [int(i) for i in layers],
        "frontend": info.get("frontend"),
        "transformers_version": info.get("transformers_version"),
    }


def _check_settings(settings: dict) -> tuple[int | None, tuple[int, ...] | None, tuple[float, ...] | None, int]:
    folds, seed, layers, C = settings.get("folds"), settings.get("seed") or 0, settings.get("layers"), settings.get("C")
    if folds is not None and (isinstance(folds, bool) or not isinstance(folds, int) or folds < 2):
        raise ConfigError(f"--folds {folds!r}: give 2 or more folds")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed {seed!r} must be a non-negative integer")
    if layers is not None:
        if isinstance(layers, int) and not isinstance(layers, bool):
            layers = [layers]
        if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(i, int) for i in layers):
            raise ConfigError(f"layers={layers!r}: give a list of hidden-state indices, e.g. --set layers=[6,7,8]")
        layers = tuple(int(i) for i in layers)
    Cs = None
    if C is not None:
        values = C if isinstance(C, (list, tuple)) else [C]
        if not values or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and c > 0 for c in values):
            raise ConfigError(f"C={C!r}: give a positive number (or a list of them), e.g. --set C=0.1")
        Cs = tuple(float(c) for c in values)
    return folds, layers, Cs, int(seed)


def train_hf_model(
    records: Sequence,
    backbone: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    scheme: str = "native",
    folds: int | None = None,
    layers: Sequence[int] | None = None,
    Cs: Sequence[float] | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Fit the linear head on ``records`` and write a calibrated ``hf-head`` artifact in ``out_dir/model``.

    Parameters
    ----------
    records : sequence of emovox.corpora.Record
        Labelled clips with speakers (the head is chosen by speaker-disjoint CV).
    backbone : str or path-like
        Hugging Face model folder, or a name in the local Hugging Face cache.
    out_dir : path-like
        Run folder: ``model/`` (the artifact); with ``folds`` also ``report.md``,
        ``result.json`` and plots of the held-out protocol.
    scheme : str
        Label scheme (:func:`emovox.labels.resolve_scheme`).
    folds : int, optional
        Held-out protocol for the figures and the calibration (see the module's notes).
    layers : sequence of int, optional
        The hidden states the head reads (default: chosen by inner CV among each alone and all).
    Cs : sequence of float, optional
        Candidate inverse regularisation strengths (default: ``C_GRID``).

    Returns
    -------
    dict
        JSON-able: ``artifact``, ``classes``, ``layers``, ``C``, ``inner_cv_uar``,
        ``heldout`` (with ``folds``), ``temperature``, ``threshold``, ``backbone``,
        timings and ``lines`` (what ``emovox train`` prints).
    """
    import torch

    from emovox.evaluation.experiment import prepare_labels
    from emovox.inference.calibration import calibrate
    from emovox.models.artifact import make_config, save_artifact
    from emovox.models.hf_encoder import load_hf_encoder
    from emovox.models.hf_head import HFHeadClassifier
    from emovox.models.spec import TaskSpec
    from emovox.models.whisper_classifier import C_GRID
    from emovox.training.pipeline import data_card
    from emovox.training.whisper_fit import fit_linear_head

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    kept, y, classes = prepare_labels(list(records), scheme)
    if len(classes) < 2:
        raise ConfigError(f"the data has one label ({classes[0]!r}) after scheme {scheme!r}: a model needs 2 or more")
    speakers = [r.speaker_key for r in kept]
    n_speakers = len(set(speakers))
    if n_speakers < 2:
        raise ConfigError(
            "hf-linear chooses its head by a speaker-disjoint inner CV, which needs at least 2 speakers; "
            "give each clip its speaker (e.g. a 'speaker' column)"
        )
    if folds is not None and n_speakers < MIN_SPEAKERS_FOR_FOLDS:
        raise ConfigError(
            f"--folds needs at least {MIN_SPEAKERS_FOR_FOLDS} speakers (each training side keeps 2 for the "
            f"inner choice of layers and C); the data has {n_speakers}: leave --folds out"
        )
    encoder = load_hf_encoder(backbone)
    n_states = encoder.n_states
    if layers is not None and any(not 0 <= i < n_states for i in layers):
        raise ConfigError(f"layers={list(layers)}: this encoder has hidden states 0..{n_states - 1}")
    pooled = pooled_features(kept, encoder, cache_dir=cache_dir, progress=progress)
    t1 = time.perf_counter()
    grid = tuple(Cs or C_GRID)
    layer_sets = None if layers is None else [tuple(layers)]

    def fit(rows: np.ndarray, labels: np.ndarray, who: Sequence[str]):
        return fit_linear_head(rows, labels, who, n_classes=len(classes), layer_sets=layer_sets, Cs=grid, seed=seed)

    final = fit(pooled, y, speakers)
    heldout: dict[str, Any] | None = None
    if folds is not None:
        logits, heldout, result = _heldout(pooled, y, speakers, kept, classes, folds=folds, seed=seed, fit=fit)
        calibration = calibrate(logits, y)
        fitted_on = f"out-of-fold logits, {heldout['protocol']}"
    else:
        assert final.oof_logits is not None  # fit_linear_head keeps the chosen pair's out-of-fold logits
        calibration = calibrate(final.oof_logits, y)
        fitted_on = "inner 4-fold speaker-disjoint out-of-fold logits of the chosen layers and C"
    t2 = time.perf_counter()

    model = HFHeadClassifier(len(classes), encoder=encoder.to_params(), layers=final.layers)
    model.encoder.model.load_state_dict(encoder.model.state_dict())
    model.set_linear_head(final)
    model.eval()
    backbone_info = backbone_section(encoder, final.layers)
    params = {
        "encoder": encoder.to_params(),
        "layers": list(final.layers),
        "weighting": "concat",
        "pooling": "mean-std",
        "head": {"kind": "linear"},
    }
    spec = TaskSpec(labels=tuple(classes), sample_rate_hz=SAMPLE_RATE_HZ, clip_s=3.0, input_kind="waveform")
    metrics: dict[str, Any] = {
        "inner_cv": {"uar": final.inner_uar, "protocol": "4-fold speaker k-fold inside the training data"}
    }
    if heldout is not None:
        metrics["heldout"] = heldout
        metrics["speaker_independent" if heldout["speaker_independent"] else "same_speakers"] = {
            "all": {k: heldout[k] for k in ("uar", "accuracy", "n", "speakers", "classes")}
        }
    calibration_config = calibration.to_config()
    calibration_config["calibration"]["fitted_on"] = fitted_on
    config = make_config(
        spec,
        "hf-head",
        params,
        preprocessing=dict(PREPROCESSING),
        training={
            "recipe": "hf-linear",
            "module": __name__,
            "scheme": scheme,
            "head": "balanced logistic regression on standardised mean+std of the chosen hidden states",
            "C": final.C,
            "layers": list(final.layers),
            "layer_choice": "given" if layers is not None else "inner speaker CV: each hidden state alone, or all",
            "inner_cv_uar": final.inner_uar,
            "folds": folds,
            "seed": seed,
            "data": data_card(kept, classes=classes, labels=y),
        },
        metrics=metrics,
        **calibration_config,
    )
    config["backbone"] = backbone_info
    artifact = save_artifact(out_dir / ARTIFACT_SUBDIR, model, config)
    if folds is not None:
        from emovox.evaluation.report import write_report

        result["config"]["artifact"] = str(artifact)
        write_report(result, out_dir)
    summary = {
        "artifact": str(artifact),
        "recipe": "hf-linear",
        "architecture": "hf-head",
        "classes": list(classes),
        "layers": list(final.layers),
        "C": final.C,
        "inner_cv_uar": final.inner_uar,
        "heldout": heldout,
        "temperature": calibration.temperature,
        "threshold": calibration.threshold,
        "backbone": backbone_info,
        "n_train": len(kept),
        "n_speakers": n_speakers,
        "features_s": round(t1 - t0, 2),
        "fit_s": round(t2 - t1, 2),
        "threads": torch.get_num_threads(),
    }
    summary["lines"] = _lines(summary, fitted_on)
    return summary


def _heldout(pooled, y, speakers, records, classes, *, folds: int, seed: int, fit) -> tuple[np.ndarray, dict, dict]:
    """Out-of-fold logits of every clip under the held-out protocol, its summary and the evaluation result."""
    from emovox.evaluation.experiment import FoldOutput, run_experiment
    from emovox.recipes.default_head import heldout_protocol

    protocol = heldout_protocol(speakers, y, folds=folds, seed=seed)
    captured: list[np.ndarray] = []

    def fit_predict(train, test):
        head = fit(train.X, train.y, list(map(str, train.speakers)))
        captured.append(head.logits(test.X))
        return FoldOutput(captured[-1].argmax(axis=1), info={"layers": list(head.layers), "C": head.C})

    result = run_experiment(
        list(protocol.splits),
        fit_predict,
        y=y,
        classes=classes,
        speakers=speakers,
        X=pooled,
        records=records,
        protocol=protocol.name,
        config={"model": "hf-linear (frozen encoder + logistic regression)", "protocol": protocol.description},
    )
    logits = np.zeros((len(y), len(classes)))
    for split, block in zip(protocol.splits, captured):  # the runner visits the splits in order
        logits[split.test_idx] = block
    pooled_metrics = result["pooled"]
    heldout = {
        "protocol": protocol.description,
        "speaker_independent": protocol.speaker_independent,
        "uar": pooled_metrics["uar"],
        "accuracy": pooled_metrics["accuracy"],
        "n": int(len(y)),
        "speakers": len(set(speakers)),
        "classes": len(classes),
        "fold_uar_mean": result["summary"]["uar"]["mean"],
        "fold_uar_std": result["summary"]["uar"]["std"],
        "n_folds": len(protocol.splits),
    }
    return logits, heldout, result


def _lines(summary: dict, fitted_on: str) -> list[str]:
    b = summary["backbone"]
    lines = [
        f"trained hf-linear on {summary['n_train']} clips of {summary['n_speakers']} speakers with the "
        f"{b['family']} encoder {b['name']} ({b['n_layers']} blocks, d_model {b['d_model']}; licence: {b['license']}): "
        f"hidden states {summary['layers']}, C {summary['C']:g}; inner speaker-CV UAR {summary['inner_cv_uar']:.3f}"
    ]
    h = summary["heldout"]
    if h is not None:
        lines.append(
            f"held out: {h['protocol']}: UAR {h['uar']:.3f}, accuracy {h['accuracy']:.3f} (fold UAR "
            f"{h['fold_uar_mean']:.3f} ± {h['fold_uar_std']:.3f} over {h['n_folds']} folds)"
        )
    lines.append(
        f"calibration on {fitted_on}: temperature {summary['temperature']:.3f}, "
        f"'unknown' under confidence {summary['threshold']:.3f}"
    )
    return lines


# ---------------------------------------------------------------------- the registered recipe
def fit_recipe(records: Sequence, *, out_dir: str | os.PathLike, scheme: str, settings: dict) -> dict:
    """The ``fit`` of recipe ``hf-linear``: :func:`train_hf_model` on the ``--backbone`` encoder."""
    import torch

    from emovox.evaluation.experiment import default_cache_dir
    from emovox.recipes.default_embeddings import clip_progress

    if not settings.get("backbone"):
        raise ConfigError(
            "--recipe hf-linear needs --backbone DIR: a Hugging Face speech encoder folder (wav2vec2, hubert, "
            "wavlm, data2vec-audio, whisper) or a name already in the local Hugging Face cache"
        )
    folds, layers, Cs, seed = _check_settings(settings)
    threads = settings.get("threads") or 2
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"--threads {threads!r} must be a positive integer")
    torch.set_num_threads(threads)
    with clip_progress(len(records), enabled=bool(settings.get("progress", True)), desc="encoder features") as progress:
        return train_hf_model(
            records,
            settings["backbone"],
            out_dir,
            scheme=scheme,
            folds=folds,
            layers=layers,
            Cs=Cs,
            seed=seed,
            cache_dir=default_cache_dir(),
            progress=progress,
        )


def build_recipe():
    """The registered ``hf-linear`` recipe (closed form: :func:`fit_recipe`)."""
    from emovox.training.recipes import Recipe

    return Recipe(
        name="hf-linear",
        arch="hf-head",
        label_scheme="native",
        trim_silence=True,
        fit=fit_recipe,
        settings={
            "backbone": None,
            "folds": None,
            "seed": 0,
            "threads": 2,
            "progress": True,
            "layers": None,
            "C": None,
        },
        description="a frozen Hugging Face speech encoder (--backbone DIR: wav2vec2, HuBERT, WavLM, data2vec-audio, "
        "Whisper), pooled hidden states, logistic-regression head chosen by inner speaker CV (--folds K: "
        "held-out figures and calibration)",
    )


def _register() -> None:
    from emovox.training.recipes import register_recipe

    register_recipe("hf-linear", build_recipe)


_register()
