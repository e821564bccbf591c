"""Run a recipe on corpus records: split, load, train, evaluate, save an artifact.

This is what ``emovox train`` calls; the CLI only parses arguments. Output
folder layout::

    OUT/checkpoint.safetensors   # resumable state (kept after the run)
    OUT/log.json, OUT/log.csv    # one record per epoch
    OUT/curves.png               # loss and accuracy/UAR curves
    OUT/model/                   # the artifact: model.safetensors + config.json
    OUT/summary.json             # what was run, best epoch, validation/test metrics

Under ``torchrun`` every process runs this function on the same records;
only the writer (rank 0) evaluates the test fold and writes anything (see
:mod:`emovox.training.distributed`).

Inputs come from the recipe's ``make_datasets`` hook when it has one (the
seed replicas: their own features, scaling and on-the-fly augmentation of
training draws), else from the generic pipeline (fixed-length waveforms, or a
feature set standardised with training statistics). Either way test clips go
through :func:`emovox.training.pipeline.prepare_inputs` with the artifact's
``preprocessing`` section, as ``emovox evaluate --model DIR`` does for a model over features.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emovox.errors import ConfigError
from emovox.evaluation import compute_metrics, speaker_kfold, speaker_validation_split
from emovox.labels import get_scheme
from emovox.models.artifact import make_config, save_artifact
from emovox.models.registry import build_model
from emovox.models.spec import TaskSpec
from emovox.training.callbacks import Callback
from emovox.training.checkpoint import atomic_write_text
from emovox.training.data import ArrayDataset
from emovox.training.distributed import init_distributed, threads_per_process
from emovox.training.engine import fit_closed_form, predict_logits, seed_everything, train_model
from emovox.training.pipeline import (
    apply_normalization,
    data_card,
    feature_inputs,
    fit_normalization,
    load_waveforms,
    prepare_inputs,
)
from emovox.training.recipes import Recipe

ARTIFACT_SUBDIR = "model"


def run_recipe(
    recipe: Recipe,
    records: Sequence,
    *,
    out_dir: str | os.PathLike,
    scheme: str | None = None,
    folds: int | None = None,
    fold: int = 0,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    settings: dict | None = None,
) -> dict:
    """Train ``recipe`` on ``records`` and save everything under ``out_dir``.

    A closed-form recipe (:attr:`Recipe.fit`, e.g. ``default``) is fitted by
    its own ``fit``, run by :func:`emovox.training.engine.fit_closed_form` (one
    epoch to the callbacks), with :attr:`Recipe.settings` updated by ``settings``;
    ``fold`` and ``resume`` do not apply to it (its ``settings`` may have its
    own ``folds``).

    Parameters
    ----------
    recipe : Recipe
        Already adjusted with any command-line overrides.
    records : sequence of emovox.corpora.Record
    scheme : str, optional
        Label scheme name (default: the recipe's).
    folds, fold : int
        With ``folds``, train on the speakers outside fold ``fold`` of a
        speaker k-fold split and report metrics on that fold. Without, all
        records are training data (and there is no test figure).
    resume : bool
        Continue an interrupted run in ``out_dir``.

    Returns
    -------
    dict : the summary also written to ``out_dir/summary.json``. On a
        non-writer process under torchrun: ``{"writer": False, "rank": r,
        "best_epoch": ...}`` (nothing written, no test evaluation).
    """
    if recipe.fit is not None:
        return _run_closed_form(
            recipe,
            records,
            out_dir=Path(out_dir),
            scheme=scheme,
            folds=folds,
            fold=fold,
            resume=resume,
            callbacks=callbacks,
            settings=settings,
        )
    if settings:
        raise ConfigError(
            f"recipe {recipe.name!r} is trained by the engine: its options are TrainConfig fields, "
            f"not settings {sorted(settings)}"
        )
    ctx = init_distributed()
    out_dir = Path(out_dir)
    cfg = recipe.train
    label_scheme = get_scheme(scheme or recipe.label_scheme)
    kept = [r for r in records if label_scheme.keeps(r.emotion)]
    if not kept:
        raise ConfigError(f"no records left after label scheme {label_scheme.name!r}: choose another --scheme")
    present = {label_scheme.class_of(r.emotion) for r in kept}
    classes = tuple(c for c in label_scheme.classes if c in present)
    if len(classes) < 2:
        raise ConfigError(f"only {len(classes)} class ({', '.join(classes)}) in the data: need at least 2")
    y_all = np.array([classes.index(label_scheme.class_of(r.emotion)) for r in kept])
    speakers = [r.speaker_key for r in kept]

    protocol: dict = {"name": "all-training", "scheme": label_scheme.name}
    pool = np.arange(len(kept))
    test_idx = np.array([], dtype=int)
    if folds:
        splits = speaker_kfold(speakers, k=folds, seed=cfg.seed, labels=y_all, strata=[r.gender or "?" for r in kept])
        if not 0 <= fold < len(splits):
            raise ConfigError(f"fold={fold} is out of range: choose 0..{len(splits) - 1}")
        pool, test_idx = np.asarray(splits[fold].train_idx), np.asarray(splits[fold].test_idx)
        protocol = {
            "name": "speaker-kfold",
            "folds": folds,
            "fold": fold,
            "scheme": label_scheme.name,
            "test_speakers": sorted({speakers[i] for i in test_idx}),
        }
    inner = speaker_validation_split(speakers, pool, fraction=recipe.val_fraction, seed=cfg.seed, labels=y_all)
    train_idx, val_idx = np.asarray(inner.train_idx), np.asarray(inner.test_idx)
    protocol["validation_speakers"] = sorted({speakers[i] for i in val_idx})

    needed = np.concatenate([train_idx, val_idx, test_idx])
    waves_list = load_waveforms(
        [kept[i] for i in needed],
        sample_rate_hz=recipe.sample_rate_hz,
        normalize=recipe.normalize,
        trim_silence=recipe.trim_silence,
        progress=cfg.progress and ctx.is_writer,
    )
    waves = dict(zip(needed.tolist(), waves_list))

    preprocessing = {
        "sample_rate_hz": recipe.sample_rate_hz,
        "clip_s": recipe.clip_s,
        "normalize": recipe.normalize,
        "trim_silence": recipe.trim_silence,
        "crop": "center",
        "feature": recipe.feature,
        "normalization": None,
        "wave_augment": recipe.to_dict()["wave_augment"],
        "spec_augment": recipe.to_dict()["spec_augment"],
    }
    n_samples = int(round(recipe.clip_s * recipe.sample_rate_hz))
    if recipe.input_kind == "features" and not recipe.feature:
        raise ConfigError(f"recipe {recipe.name!r} has input_kind 'features' but no feature name")
    if recipe.make_datasets is not None:  # the recipe's own pipeline (e.g. a seed replica's)
        train_ds, val_ds, own = recipe.make_datasets(
            [waves[i] for i in train_idx], y_all[train_idx], [waves[i] for i in val_idx], y_all[val_idx], seed=cfg.seed
        )
        preprocessing.update(own)
        dims = tuple(np.asarray(val_ds[0][0]).shape) if recipe.input_kind == "features" else None
        spec = _task_spec(recipe, classes, dims)
    elif recipe.input_kind == "features":
        assert recipe.feature  # a features recipe without one was refused above
        rows = feature_inputs([waves[i] for i in needed], feature=recipe.feature, sample_rate_hz=recipe.sample_rate_hz)
        feats = dict(zip(needed.tolist(), rows))
        stats = fit_normalization(np.stack([feats[i] for i in train_idx]))
        preprocessing["normalization"] = stats

        def inputs(idx):
            return apply_normalization(np.stack([feats[i] for i in idx]), stats)

        spec = _task_spec(recipe, classes, tuple(next(iter(feats.values())).shape))
        train_ds = ArrayDataset(inputs(train_idx), y_all[train_idx])
        val_ds = ArrayDataset(inputs(val_idx), y_all[val_idx])
    else:
        spec = _task_spec(recipe, classes, None)
        train_ds = ArrayDataset(
            [waves[i] for i in train_idx], y_all[train_idx], length=n_samples, crop="random", seed=cfg.seed
        )
        val_ds = ArrayDataset([waves[i] for i in val_idx], y_all[val_idx], length=n_samples, crop="center")

    seed_everything(cfg.seed, threads=threads_per_process(cfg.threads, ctx))
    model = build_model(recipe.arch, spec, **recipe.arch_params)
    result = train_model(
        model,
        train_ds,
        val_ds,
        cfg,
        out_dir=out_dir,
        n_classes=len(classes),
        wave_augment=recipe.wave_augment,
        spec_augment=recipe.spec_augment,
        callbacks=callbacks,
        resume=resume,
    )
    if not ctx.is_writer:
        return {"writer": False, "rank": ctx.rank, "best_epoch": result.best_epoch}

    metrics: dict = {
        "validation": {k: result.best_record[k] for k in ("val_loss", "val_accuracy", "val_uar")},
        "best_epoch": result.best_epoch,
    }
    if len(test_idx):
        x_test = prepare_inputs([waves[i] for i in test_idx], spec.to_dict(), preprocessing)
        y_pred = predict_logits(model, x_test, batch_size=cfg.eval_batch_size).argmax(axis=1)
        metrics["test"] = compute_metrics(y_all[test_idx], y_pred, classes=list(classes))

    train_records = [kept[i] for i in train_idx]
    config = make_config(
        spec,
        recipe.arch,
        recipe.arch_params,
        preprocessing=preprocessing,
        training={
            "recipe": recipe.to_dict(),
            "config": cfg.to_dict(),
            "data": data_card(train_records, classes=classes, labels=y_all[train_idx]),
            "validation_data": data_card([kept[i] for i in val_idx], classes=classes, labels=y_all[val_idx]),
            "protocol": protocol,
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "stopped_early": result.stopped_early,
            **({"processes": ctx.world_size} if ctx.enabled else {}),
        },
        metrics=_jsonable(metrics),
    )
    artifact = save_artifact(out_dir / ARTIFACT_SUBDIR, model, config)
    summary = {
        "artifact": str(artifact),
        "recipe": recipe.name,
        "arch": recipe.arch,
        "classes": list(classes),
        "protocol": protocol,
        "metrics": _jsonable(metrics),
        "n_train": int(len(train_idx)),
        "n_val": int(len(val_idx)),
        "n_test": int(len(test_idx)),
    }
    if ctx.enabled:
        summary["processes"] = ctx.world_size
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _run_closed_form(
    recipe: Recipe,
    records: Sequence,
    *,
    out_dir: Path,
    scheme: str | None,
    folds: int | None,
    fold: int,
    resume: bool,
    callbacks: Sequence[Callback],
    settings: dict | None,
) -> dict:
    """:attr:`Recipe.fit` with the recipe's settings updated by ``settings`` (unknown ones refused)."""
    assert recipe.fit is not None  # run_recipe sends only recipes with a fit here
    merged = dict(recipe.settings)
    given = dict(settings or {})
    if folds is not None:
        given.setdefault("folds", folds)
    unknown = sorted(set(given) - set(merged))
    if unknown:
        raise ConfigError(f"recipe {recipe.name!r} takes the settings {sorted(merged) or 'none'}, not {unknown}")
    if fold or resume:
        raise ConfigError(
            f"recipe {recipe.name!r} fits its head in closed form in one go: no held-out --fold or --resume"
        )
    merged.update(given)
    fit = recipe.fit
    summary = fit_closed_form(
        lambda: fit(list(records), out_dir=out_dir, scheme=scheme or recipe.label_scheme, settings=merged),
        callbacks=callbacks,
    )
    for key in ("artifact", "lines"):
        if key not in summary:
            raise ConfigError(f"recipe {recipe.name!r}: its fit returned no {key!r} (a bug in the recipe)")
    return summary


def _task_spec(recipe: Recipe, classes: tuple[str, ...], feature_dims: tuple[int, ...] | None) -> TaskSpec:
    if recipe.input_kind == "features":
        return TaskSpec(
            labels=classes,
            sample_rate_hz=recipe.sample_rate_hz,
            clip_s=recipe.clip_s,
            input_kind="features",
            feature=recipe.feature,
            feature_dims=feature_dims,
        )
    return TaskSpec(labels=classes, sample_rate_hz=recipe.sample_rate_hz, clip_s=recipe.clip_s)


def _jsonable(obj):
    """NumPy scalars/arrays -> Python; NaN -> None (artifact JSON is strict)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
