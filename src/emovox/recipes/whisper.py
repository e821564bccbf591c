"""Train the Whisper-backed emotion model: pooled encoder features -> fitted head -> artifact.

The encoder is frozen, so training is: decode each clip through the product
path (:func:`emovox.audio.load_audio`, :func:`emovox.audio.trim_for_model`),
pool the encoder's hidden states once per clip (cached on disk, keyed by the
file's bytes and the encoder's weights), then fit the head
(:func:`emovox.training.whisper_fit.fit_linear_head`; layer set and
``C`` chosen by inner speaker-disjoint CV on the training speakers). The
artifact holds the whole waveform-to-logits module, calibrated (temperature
and rejection threshold) on the inner out-of-fold logits, so
``emovox predict --model DIR`` and ``emovox evaluate --model DIR`` take it.

The encoder weights come from a local folder written by
``scripts/import_whisper_ct2.py`` (nothing is downloaded).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emovox.errors import ConfigError, EmovoxError
from emovox.models.whisper_classifier import C_GRID, HeadFit, WhisperEmotionClassifier, pool_hidden_states
from emovox.models.whisper_encoder import WEIGHTS_NAME, WhisperLogMel, load_whisper_encoder

__all__ = [
    "encoder_id",
    "pooled_features",
    "build_classifier",
    "fit_head",
    "train_whisper_model",
    "augment_transforms",
    "adapt_to_speaker",
    "PREPROCESSING",
    "HEADS",
]

SAMPLE_RATE_HZ = 16000
#: The artifact's preprocessing: full clip (up to 30 s), the model silence trim, no normalisation.
PREPROCESSING = {"sample_rate_hz": SAMPLE_RATE_HZ, "crop": "none", "trim_silence": True, "normalize": None}


def encoder_id(encoder_dir: str | os.PathLike) -> str:
    """SHA-256 of the encoder's weights file: identifies the features it produces."""
    h = hashlib.sha256()
    with open(Path(encoder_dir) / WEIGHTS_NAME, "rb") as handle:
        while chunk := handle.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def pooled_features(
    records: Sequence,
    encoder_dir: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    augment=None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Pooled hidden states of every record: ``(n, n_layers + 1, 2, d_model)`` float32.

    Clips longer than 30 s are cut to their first 30 s (the encoder's limit).
    With ``cache_dir`` each clip's features are stored under a key of its
    file's bytes, the encoder's weights and this preprocessing. ``augment``
    (an :mod:`emovox.augment` transform) is applied to each trimmed clip first,
    with a generator seeded by ``seed`` and the file's bytes: one reproducible
    augmented copy per clip, for training rows only.
    """
    from emovox.audio import load_audio, trim_for_model
    from emovox.features.cache import FeatureCache, cache_key, file_fingerprint

    encoder = load_whisper_encoder(encoder_dir)
    frontend = WhisperLogMel(encoder.config.n_mels)
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    config = {
        "whisper_encoder": encoder_id(encoder_dir) if cache else None,
        "preprocessing": PREPROCESSING,
        "pooling": "mean+std per hidden state",
        "max_s": 30.0,
    }
    if augment is not None:
        config["augment"] = {"transform": augment.to_dict(), "seed": seed}
    rows = []
    for i, record in enumerate(records):
        path = os.fspath(getattr(record, "path", record))
        fingerprint = file_fingerprint(path) if (cache or augment is not None) else None
        key = cache_key(fingerprint, config) if cache and fingerprint is not None else None
        row = cache.get(key) if cache and key is not None else None
        if row is None:
            try:
                y = trim_for_model(load_audio(path, sample_rate_hz=SAMPLE_RATE_HZ), sample_rate_hz=SAMPLE_RATE_HZ)
            except EmovoxError as error:
                raise type(error)(f"{path}: {error}") from error
            if augment is not None:
                assert fingerprint is not None  # computed whenever there is an augment
                rng = np.random.default_rng([seed, int(fingerprint[:15], 16)])
                y = np.asarray(augment(y, sample_rate_hz=SAMPLE_RATE_HZ, rng=rng), dtype=np.float32)
            with torch.inference_mode():
                pooled = pool_hidden_states(encoder(frontend(torch.from_numpy(y[: 30 * SAMPLE_RATE_HZ])[None])))[0]
            row = pooled.numpy().astype(np.float32)
            if cache and key is not None:
                cache.put(key, row)
        rows.append(row)
        if progress:
            progress(i + 1, len(records))
    return np.stack(rows)


def build_classifier(encoder_dir: str | os.PathLike, fit: HeadFit, n_classes: int) -> WhisperEmotionClassifier:
    """The waveform-to-logits module: the encoder's weights plus a fitted head."""
    encoder = load_whisper_encoder(encoder_dir)
    model = WhisperEmotionClassifier(n_classes, encoder=encoder.config.to_dict(), layers=fit.layers)
    model.encoder.load_state_dict(encoder.state_dict())
    model.set_head(fit)
    return model.eval()


#: ``augment=N`` in :func:`train_whisper_model`: the first N of these copies of every training clip.
AUGMENT_NAMES = ("noise 10-30 dB SNR", "pitch +-2 semitones")
HEADS = ("linear", "weighted", "mlp")


def augment_transforms(n: int) -> list:
    """The first ``n`` (0-2) augmentation transforms: Gaussian noise at 10-30 dB SNR, pitch shift of +-2 semitones."""
    from emovox.augment import GaussianNoise, PitchShift

    if not 0 <= int(n) <= 2:
        raise ConfigError(f"augment={n!r}: 0, 1 (noise) or 2 (noise + pitch) augmented copies per training clip")
    return [GaussianNoise(snr_db=(10.0, 30.0)), PitchShift(semitones=(-2.0, 2.0))][: int(n)]


def fit_head(
    pooled: np.ndarray,
    y: np.ndarray,
    speakers: Sequence[str],
    *,
    n_classes: int,
    head: str = "linear",
    layers: Sequence[int] | None = None,
    head_options: dict | None = None,
    augmented: Sequence[np.ndarray] = (),
    extra: tuple[np.ndarray, np.ndarray] | None = None,
    inner_cv: bool = True,
    seed: int = 0,
):
    """Fit one of :data:`HEADS` on pooled rows; the result has ``layers``, ``inner_uar``, ``oof_logits``, ``logits()``.

    ``pooled`` ``(n, n_states, 2, d_model)``, ``y`` ``(n,)``, ``speakers`` ``(n,)``.
    ``layers=None``: the linear head chooses among each state alone and all of
    them (inner CV), the others read every state. ``inner_cv=False`` with a
    single linear candidate (``layers`` given, one ``C`` in ``head_options["Cs"]``)
    fits once without the inner CV (no out-of-fold logits, ``inner_uar`` NaN):
    for evaluations, where nothing is chosen or calibrated.
    """
    from emovox.models.whisper_classifier import HeadFit, fit_standardised_logistic, flatten_layers
    from emovox.training.whisper_fit import fit_linear_head, fit_pooled_head

    if head not in HEADS:
        raise ConfigError(f"head={head!r} is not one of {', '.join(HEADS)}")
    options = dict(head_options or {})
    if head != "linear":
        return fit_pooled_head(
            pooled,
            y,
            speakers,
            n_classes=n_classes,
            kind=head,
            layers=layers,
            seed=seed,
            augmented=augmented,
            extra=extra,
            **options,
        )
    Cs = tuple(options.pop("Cs", C_GRID))
    if options:
        raise ConfigError(f"head_options {sorted(options)} do not apply to the linear head (it takes Cs)")
    if not inner_cv and layers is not None and len(Cs) == 1:
        rows = [flatten_layers(a, layers) for a in (pooled, *augmented)]
        ys = [np.asarray(y)] * (1 + len(augmented))
        if extra is not None:
            rows.append(flatten_layers(extra[0], layers))
            ys.append(np.asarray(extra[1]))
        mean, scale, coef, intercept = fit_standardised_logistic(
            np.concatenate(rows), np.concatenate(ys), Cs[0], n_classes
        )
        return HeadFit(
            layers=tuple(int(i) for i in layers),
            C=Cs[0],
            mean=mean.astype(np.float32),
            scale=scale.astype(np.float32),
            coef=coef.astype(np.float32),
            intercept=intercept.astype(np.float32),
            inner_uar=float("nan"),
        )
    return fit_linear_head(
        pooled,
        y,
        speakers,
        n_classes=n_classes,
        seed=seed,
        Cs=Cs,
        extra=extra,
        layer_sets=None if layers is None else [tuple(layers)],
        augmented=augmented,
    )


def train_whisper_model(
    records: Sequence,
    encoder_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    scheme: str = "native",
    head: str = "linear",
    layers: Sequence[int] | None = None,
    head_options: dict | None = None,
    augment: int = 0,
    adapt: bool = False,
    features_encoder_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Fit the head on ``records`` and save a calibrated artifact in ``out_dir``; returns a summary.

    Parameters
    ----------
    records : sequence of emovox.corpora.Record
        Training clips (speakers are used for the inner CV). Several corpora
        may be mixed; ``scheme`` harmonises their labels (``"emovox7"``).
    encoder_dir : path-like
        Whisper encoder folder (``model.safetensors`` + ``config.json``): the
        weights that go into the artifact (a truncated encoder works).
    out_dir : path-like
        Artifact folder (replaced atomically).
    scheme : str
        Label scheme (see :func:`emovox.labels.resolve_scheme`).
    head : {"linear", "weighted", "mlp"}
        ``linear``: standardised statistics -> logistic regression
        (:func:`~emovox.training.whisper_fit.fit_linear_head`, layer set
        and ``C`` by inner speaker CV); ``weighted`` / ``mlp``: the torch heads
        of :mod:`emovox.models.whisper_heads` (epochs by inner speaker CV).
    layers : sequence of int, optional
        Hidden states the head may read (default: every state; the linear head
        then chooses among each state alone and all of them, and the artifact
        is the original ``whisper-linear`` one with the whole encoder). Otherwise
        the artifact is a ``whisper-head`` whose encoder runs only the blocks up
        to ``max`` of the chosen states (``summary["depth"]``).
    head_options : dict, optional
        ``linear``: ``Cs``; others: ``hidden``, ``dropout``, ``n_members``,
        ``epoch_grid``, ``lr``, ``weight_decay``.
    augment : int
        0-2 augmented copies of each training clip (:func:`augment_transforms`).
    adapt : bool
        Speaker-adaptive normalisation (``--adapt``): every speaker's pooled
        statistics are centred on that speaker's mean; the model then needs
        :meth:`~emovox.models.whisper_heads.WhisperHeadClassifier.set_speaker_offset`
        for each new speaker (:func:`adapt_to_speaker`, from a few unlabelled
        clips). Off by default.
    features_encoder_dir : path-like, optional
        A (full) encoder whose hidden states ``0..n`` equal ``encoder_dir``'s, used
        for the pooled features instead (its feature cache is reused).

    Returns
    -------
    dict
        ``artifact``, ``classes``, ``layers``, ``depth`` (encoder blocks run),
        ``head``, ``inner_cv_uar``, ``temperature``, ``threshold``, timings.
    """
    from emovox.evaluation.experiment import prepare_labels
    from emovox.inference.adaptation import speaker_centred
    from emovox.inference.calibration import calibrate
    from emovox.models.artifact import make_config, save_artifact
    from emovox.models.spec import TaskSpec
    from emovox.models.whisper_heads import PooledHead, WhisperHeadClassifier
    from emovox.training.pipeline import data_card

    if head not in HEADS:
        raise ConfigError(f"head={head!r} is not one of {', '.join(HEADS)}")
    options = dict(head_options or {})
    t0 = time.perf_counter()
    kept, y, classes = prepare_labels(records, scheme)
    encoder = load_whisper_encoder(encoder_dir)
    n_states = encoder.config.n_layers + 1
    source = features_encoder_dir or encoder_dir
    pooled = pooled_features(kept, source, cache_dir=cache_dir, progress=progress)[:, :n_states]
    copies = [
        pooled_features(kept, source, cache_dir=cache_dir, augment=t, seed=seed)[:, :n_states]
        for t in augment_transforms(augment)
    ]
    speakers = [r.speaker_key for r in kept]
    if adapt:
        pooled = speaker_centred(pooled, speakers)
        copies = [speaker_centred(c, speakers) for c in copies]
    allowed = tuple(range(n_states)) if layers is None else tuple(int(i) for i in layers)
    if not allowed or any(not 0 <= i < n_states for i in allowed):
        raise ConfigError(f"layers={list(allowed)}: this encoder has hidden states 0..{n_states - 1}")
    t1 = time.perf_counter()
    fit = fit_head(
        pooled,
        y,
        speakers,
        n_classes=len(classes),
        head=head,
        layers=None if layers is None else allowed,
        head_options=options,
        augmented=copies,
        seed=seed,
    )
    if head == "linear":
        choice = {"C": fit.C}
        settings = {"kind": "linear"}
    else:
        choice = {"epochs": fit.epochs, "inner_uar_by_epochs": {str(k): v for k, v in fit.inner_uar_by_epochs.items()}}
        settings = dict(fit.settings)
    calibration = calibrate(fit.oof_logits, y)
    enc_config = encoder.config.to_dict()
    depth = max(fit.layers)
    params: dict[str, Any]
    model: WhisperEmotionClassifier | WhisperHeadClassifier
    if head == "linear" and not adapt and layers is None:  # the original architecture, unchanged
        arch, params = "whisper-linear", {"encoder": enc_config, "layers": list(fit.layers)}
        model = build_classifier(encoder_dir, fit, len(classes))
    else:
        arch = "whisper-head"
        params = {"encoder": enc_config, "layers": list(fit.layers), "head": settings, "adapt": bool(adapt)}
        model = WhisperHeadClassifier(len(classes), encoder=enc_config, layers=fit.layers, head=settings, adapt=adapt)
        model.load_encoder(encoder.state_dict())
        fitted = PooledHead.from_linear_fit(fit, enc_config["d_model"]) if head == "linear" else fit.module()
        model.head.load_state_dict(fitted.state_dict())
        model.eval()
    spec = TaskSpec(labels=tuple(classes), sample_rate_hz=SAMPLE_RATE_HZ, clip_s=3.0, input_kind="waveform")
    recipe = "whisper-linear" if arch == "whisper-linear" else f"whisper-{head}"
    config = make_config(
        spec,
        arch,
        params,
        preprocessing=dict(PREPROCESSING),
        training={
            "recipe": recipe,
            "head": head,
            "scheme": scheme,
            **choice,
            "layers": list(fit.layers),
            "depth": depth,
            "head_settings": settings,
            "augment": [t.to_dict() for t in augment_transforms(augment)],
            "adapt": bool(adapt),
            "inner_cv_uar": fit.inner_uar,
            "encoder": {**enc_config, "sha256": encoder_id(encoder_dir)},
            "data": data_card(kept, classes=classes, labels=y),
            "seed": seed,
        },
        metrics={
            "inner_cv": {
                "uar": fit.inner_uar,
                "protocol": "4-fold speaker k-fold inside the training data"
                + (" (speaker-centred features: --adapt)" if adapt else ""),
            }
        },
        **calibration.to_config(),
    )
    artifact = save_artifact(out_dir, model, config)
    return {
        "artifact": str(artifact),
        "architecture": arch,
        "head": head,
        "classes": list(classes),
        "layers": list(fit.layers),
        "depth": depth,
        **choice,
        "inner_cv_uar": fit.inner_uar,
        "temperature": calibration.temperature,
        "threshold": calibration.threshold,
        "n_train": len(kept),
        "n_augmented": len(copies) * len(kept),
        "adapt": bool(adapt),
        "features_s": round(t1 - t0, 2),
        "fit_s": round(time.perf_counter() - t1, 2),
    }


def adapt_to_speaker(model, paths: Sequence[str | os.PathLike] | None) -> int:
    """``--adapt``: set a ``whisper-head`` model's speaker offset from a few unlabelled recordings of one speaker.

    Each file is decoded and silence-trimmed as for prediction (first 30 s);
    the offset is :func:`emovox.inference.adaptation.speaker_offset` (the one
    implementation: the mean) of the clips' pooled statistics
    (:meth:`~emovox.models.whisper_heads.WhisperHeadClassifier.pooled`).
    ``None`` or an empty list resets the offset. Returns the number of clips used.
    Raises :class:`ConfigError` when the model was not trained with ``adapt=True``.
    """
    from emovox.audio import load_audio, trim_for_model
    from emovox.inference.adaptation import speaker_offset

    if not getattr(model, "adapt", False):
        raise ConfigError(
            "this model was not trained with adapt=True (speaker-centred features); "
            "train it with train_whisper_model(..., adapt=True) to use --adapt"
        )
    clips = []
    for path in paths or ():
        try:
            y = trim_for_model(
                load_audio(os.fspath(path), sample_rate_hz=SAMPLE_RATE_HZ), sample_rate_hz=SAMPLE_RATE_HZ
            )
        except EmovoxError as error:
            raise type(error)(f"{path}: {error}") from error
        clips.append(torch.from_numpy(np.ascontiguousarray(y[: 30 * SAMPLE_RATE_HZ], dtype=np.float32)))
    offset = None
    if clips:
        with torch.inference_mode():
            rows = np.stack([model.pooled(clip)[0].numpy() for clip in clips])
        offset = torch.from_numpy(speaker_offset(rows))
    model.set_speaker_offset(offset)
    return len(clips)


# ---------------------------------------------------------------------- the registered recipe
def fit_recipe(records: Sequence, *, out_dir: str | os.PathLike, scheme: str, settings: dict) -> dict:
    """The ``fit`` of recipe ``whisper-linear``: :func:`train_whisper_model` on the ``--backbone`` encoder."""
    from emovox.evaluation.experiment import default_cache_dir
    from emovox.recipes.default_embeddings import clip_progress

    if not settings.get("backbone"):
        raise ConfigError(
            "--recipe whisper-linear needs --backbone DIR (a Whisper encoder folder written by "
            "scripts/import_whisper_ct2.py); --recipe default uses the encoder shipped with emovox"
        )
    torch.set_num_threads(int(settings.get("threads") or 2))
    with clip_progress(len(records), enabled=bool(settings.get("progress", True)), desc="encoder features") as progress:
        summary = train_whisper_model(
            records,
            settings["backbone"],
            Path(out_dir) / "model",
            scheme=scheme,
            cache_dir=default_cache_dir(),
            seed=int(settings.get("seed") or 0),
            progress=progress,
        )
    summary["lines"] = [
        f"trained whisper-linear on {summary['n_train']} clips: layers {summary['layers']}, "
        f"C {summary['C']:g}; inner speaker-CV UAR {summary['inner_cv_uar']:.3f}; "
        f"temperature {summary['temperature']:.3f}"
    ]
    return summary


def build_recipe():
    """The registered ``whisper-linear`` recipe (closed form: :func:`fit_recipe`)."""
    from emovox.training.recipes import Recipe

    return Recipe(
        name="whisper-linear",
        arch="whisper-linear",
        label_scheme="native",
        trim_silence=True,
        fit=fit_recipe,
        settings={"backbone": None, "seed": 0, "threads": 2, "progress": True},
        description="frozen Whisper encoder (--backbone DIR), pooled hidden states, logistic-regression "
        "head chosen by inner speaker CV",
    )


def _register() -> None:
    from emovox.training.recipes import register_recipe

    register_recipe("whisper-linear", build_recipe)


_register()
