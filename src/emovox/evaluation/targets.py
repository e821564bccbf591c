"""Targets beyond emotion: record attributes and any column of a CSV manifest.

:func:`evaluate_target` is what :func:`emovox.evaluation.experiment.evaluate`
runs when ``spec.target`` is not ``"emotion"``. What a target becomes:

==============  =====================================================================
target          task
==============  =====================================================================
``gender``      classification (``female``/``male``); UAR first, accuracy beside
``corpus``      classification (which corpus a clip comes from)
``language``    classification
``intensity``   regression on an ordinal scale: RAVDESS normal = 1, strong = 2;
                CREMA-D LO/MD/HI = 1/2/3 (``XX``, unspecified, dropped); a CSV
                manifest's ``intensity`` cell as a number or one of those levels
``speaker``     refused: speaker-independent splits never test a training speaker
COLUMN          any other column of a ``csv:PATH`` corpus: numeric (every non-empty
                cell a finite number) -> regression (CCC first, MAE beside);
                otherwise classification
==============  =====================================================================

Records without a value (an empty cell, ``NA``, an unknown gender, CREMA-D's
``XX``) are dropped; their count is recorded in the result's config as
``dropped_without_target``. Classification runs through
:func:`~emovox.evaluation.experiment.run_experiment` with the workbench
classifiers (:func:`~emovox.evaluation.experiment.resolve_model`); regression
through :func:`~emovox.evaluation.regression.run_regression` with the
workbench regressors (:func:`~emovox.evaluation.workbench_models.make_regressor`). Both use the splits of
:func:`~emovox.evaluation.experiment.make_splits`; for a numeric target,
speaker k-fold stratifies by a few quantile bins of it
(:func:`~emovox.evaluation.regression.target_bins`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import cast

import numpy as np

from emovox.errors import ConfigError
from emovox.evaluation.data import load_entries, make_splits, spec_features
from emovox.evaluation.folds import run_experiment
from emovox.evaluation.model_resolver import resolve_model
from emovox.evaluation.spec import EvaluationSpec

__all__ = ["BUILTIN_TARGETS", "INTENSITY_LEVELS", "evaluate_target", "target_values"]

#: ``progress(fold_number, n_folds, fold_name)``, called before each fold.
Progress = Callable[[int, int, str], None]

#: Record attributes usable as targets -> how they are predicted.
BUILTIN_TARGETS: dict[str, str] = {
    "gender": "categorical",
    "corpus": "categorical",
    "language": "categorical",
    "intensity": "ordinal",
    "speaker": "refused",
}

#: Corpus intensity levels -> ordinal value (RAVDESS normal/strong, CREMA-D LO/MD/HI; XX is unspecified).
INTENSITY_LEVELS: dict[str, float] = {"normal": 1.0, "strong": 2.0, "LO": 1.0, "MD": 2.0, "HI": 3.0}

#: Cell texts that mean "no value" (compared lower-case).
MISSING = frozenset({"", "na", "n/a", "nan", "none", "null", "-", "?", "xx"})

_SPEAKER_REASON = (
    "--target speaker cannot be evaluated: speaker-independent splits never test a speaker seen in "
    "training, so every test speaker is a class the model never saw; use gender, corpus, language, "
    "intensity or a csv: column"
)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _csv_path(entry: str) -> str | None:
    layout, sep, path = entry.partition(":")
    return os.path.expanduser(path) if layout == "csv" and sep and path else None


def target_values(target: str, loaded: Sequence[tuple[str, list]]) -> tuple[list, bool]:
    """The value of ``target`` for every record, and whether the target is numeric.

    Parameters
    ----------
    target : str
        A :data:`BUILTIN_TARGETS` name or a CSV column.
    loaded : sequence of (entry, records)
        Each ``--corpus`` entry with the records loaded from it.

    Returns
    -------
    values : list [shape=(n_records,)]
        One per record in entry order: ``float`` (numeric target), ``str``
        (categorical) or ``None`` (no value: the record is dropped).
    numeric : bool
        Regress (``True``) or classify.

    Raises
    ------
    ConfigError
        ``speaker``; an unknown target (listing what exists); an intensity
        cell that is neither a number nor a level.
    """
    if target == "speaker":
        raise ConfigError(_SPEAKER_REASON)
    if target in ("gender", "corpus", "language"):
        return [getattr(r, target) or None for _, records in loaded for r in records], False
    if target == "intensity":
        values: list[float | None] = []
        for entry, records in loaded:
            for r in records:
                text = (r.intensity or "").strip()
                if text.lower() in MISSING:
                    values.append(None)
                    continue
                value = INTENSITY_LEVELS.get(text, _number(text))
                if value is None:
                    raise ConfigError(
                        f"intensity {text!r} of {entry} is neither a number nor a level "
                        f"({', '.join(INTENSITY_LEVELS)}): write it as a number"
                    )
                values.append(value)
        return values, True

    from emovox.corpora.manifest import read_manifest_column

    cells: list[str | None] = []
    for entry, records in loaded:
        path = _csv_path(entry)
        if path is None:
            raise ConfigError(
                f"unknown target {target!r} for corpus {entry!r}: expected emotion, "
                f"{', '.join(t for t in BUILTIN_TARGETS if t != 'speaker')}, or a column of a csv:PATH corpus"
            )
        column = read_manifest_column(path, target)  # ConfigError listing the columns
        cells.extend(column.get(r.path, "") for r in records)
    present = [c for c in cells if c is not None and c.lower() not in MISSING]
    numbers = [_number(c) for c in present]
    numeric = bool(present) and all(v is not None for v in numbers)
    if numeric:
        return [None if c is None or c.lower() in MISSING else _number(c) for c in cells], True
    return [None if c is None or c.lower() in MISSING else c for c in cells], False


def _bars(progress: Progress | None, progress_bars: bool | None) -> bool:
    """Feature bars: as asked, else when fold progress is reported."""
    return progress is not None if progress_bars is None else progress_bars


def _constant_per_speaker(records: list, values: list) -> bool:
    seen: dict[str, object] = {}
    return all(seen.setdefault(r.speaker_key, v) == v for r, v in zip(records, values))


def _classification(
    spec: EvaluationSpec,
    records: list,
    values: list,
    dropped: int,
    train_names: tuple[str, ...],
    test_names: tuple[str, ...],
    progress: Progress | None,
    progress_bars: bool | None,
) -> dict:
    classes = tuple(sorted(set(values)))
    if len(classes) < 2:
        raise ConfigError(
            f"target {spec.target!r} has a single class ({', '.join(classes)}) in the data: "
            "nothing to classify; add corpora or speakers with other values"
        )
    y = np.array([classes.index(v) for v in values], dtype=np.int64)
    if spec.protocol == "cross-corpus":
        seen = {values[i] for i, r in enumerate(records) if r.corpus not in test_names}
        unseen = sorted({values[i] for i, r in enumerate(records) if r.corpus in test_names} - seen)
        if unseen:
            raise ConfigError(
                f"cross-corpus: {spec.target} {', '.join(unseen)} of the test corpora never occurs "
                "in the training corpora, so it cannot be predicted; pick another target or protocol"
            )
    from emovox.models.classifiers import classifier_names, is_classifier

    if not is_classifier(spec.model):  # a saved model predicts the emotions it was trained on, not this target
        raise ConfigError(
            f"--target {spec.target} is learnt per fold by a workbench classifier: use --model "
            f"{', '.join(classifier_names())} with --features NAME, not {spec.model!r}"
        )
    model = resolve_model(spec.model, seed=spec.seed, tune=spec.tune, features=spec.features)
    splits = make_splits(
        spec.protocol,
        records,
        y,
        folds=spec.folds,
        seed=spec.seed,
        train_corpora=train_names,
        test_corpora=test_names,
        test_fraction=spec.test_fraction,
    )
    X = (
        None
        if model.feature_set is None
        else spec_features(records, model.feature_set, spec, progress_bars=_bars(progress, progress_bars))
    )
    notes = []
    if spec.protocol == "loso" and _constant_per_speaker(records, values):
        notes.append(
            f"{spec.target} is constant within each speaker: every LOSO test fold holds one class, so "
            "fold UARs are single-class recalls; read the pooled UAR, or use --protocol speaker-kfold"
        )
    config = {
        **spec.to_dict(),
        "task": "classification",
        "model_config": model.to_dict(),
        "dropped_without_target": dropped,
        "notes": notes,
    }
    result = run_experiment(
        splits,
        model.fit_predict,
        y=y,
        classes=classes,
        speakers=[r.speaker_key for r in records],
        X=X,
        records=records,
        protocol=spec.protocol,
        config=config,
        progress=progress,
    )
    return {**result, "task": "classification", "target": spec.target}


def _regression(
    spec: EvaluationSpec,
    records: list,
    values: list,
    dropped: int,
    train_names: tuple[str, ...],
    test_names: tuple[str, ...],
    progress: Progress | None,
    progress_bars: bool | None,
) -> dict:
    from emovox.evaluation.regression import run_regression, target_bins
    from emovox.evaluation.workbench_models import make_regressor

    y = np.asarray(values, dtype=np.float64)
    if len(np.unique(y)) < 2:
        raise ConfigError(
            f"target {spec.target!r} takes a single value ({y[0]:g}) in the data: nothing to "
            "regress; add corpora or speakers with other values"
        )
    model = make_regressor(spec.model, features=spec.features, seed=spec.seed, tune=spec.tune)
    # Stratify speaker k-fold by a few bins of the target, never by every distinct value.
    splits = make_splits(
        spec.protocol,
        records,
        target_bins(y),
        folds=spec.folds,
        seed=spec.seed,
        train_corpora=train_names,
        test_corpora=test_names,
        test_fraction=spec.test_fraction,
    )
    feature_set = cast(str, model.feature_set)  # make_regressor refuses a regressor without a feature set
    X = spec_features(records, feature_set, spec, progress_bars=_bars(progress, progress_bars))
    config = {
        **spec.to_dict(),
        "task": "regression",
        "model_config": model.to_dict(),
        "dropped_without_target": dropped,
        "target_range": [float(y.min()), float(y.max())],
        "target_distinct_values": int(len(np.unique(y))),
    }
    return run_regression(
        splits,
        model.fit_predict,
        y=y,
        speakers=[r.speaker_key for r in records],
        X=X,
        records=records,
        target=spec.target,
        protocol=spec.protocol,
        config=config,
        progress=progress,
        seed=spec.seed,
    )


def evaluate_target(
    spec: EvaluationSpec, *, progress: Progress | None = None, progress_bars: bool | None = None
) -> dict:
    """Evaluate the prediction of ``spec.target`` (not emotion) under ``spec.protocol``.

    Parameters
    ----------
    spec : EvaluationSpec
        ``target`` names what is predicted (see the module docstring); the
        other settings mean what they mean for emotion.
    progress : callable, optional
        ``progress(fold_number, n_folds, fold_name)`` before each fold.
    progress_bars : bool, optional
        tqdm bar while features are extracted (default: when ``progress`` is given).

    Returns
    -------
    dict
        Classification: the result of
        :func:`~emovox.evaluation.experiment.run_experiment` plus ``task:
        "classification"`` and ``target``. Regression: the result of
        :func:`~emovox.evaluation.regression.run_regression` (``task:
        "regression"``, CCC first, MAE beside, intervals).

    Raises
    ------
    ConfigError
        ``speaker``, an unknown target or column, a target without values, or
        one with a single value or class; each in one line.
    """
    from dataclasses import replace

    target = spec.target.strip()
    spec = replace(spec, target=target)
    if target == "emotion":  # emovox.evaluation.experiment.evaluate runs emotion and calls this for the rest
        raise ConfigError(
            "evaluate_target is for targets other than emotion: use emovox.evaluation.experiment.evaluate"
        )
    if target == "speaker":
        raise ConfigError(_SPEAKER_REASON)
    spec.check_protocol()

    loaded, train_names, test_names = load_entries(spec)
    values, numeric = target_values(target, loaded)
    everything = [r for _, records in loaded for r in records]
    keep = [i for i, v in enumerate(values) if v is not None]
    if not keep:
        where = ", ".join(entry for entry, _ in loaded)
        kind = "numeric " if numeric else ""
        raise ConfigError(
            f"target {target!r} has no {kind}values in {where}: "
            + (
                "intensity comes with RAVDESS, CREMA-D and csv: manifests with an intensity column"
                if target == "intensity"
                else "fill the column, or pick another target"
            )
        )
    records = [everything[i] for i in keep]
    kept_values = [values[i] for i in keep]
    dropped = len(values) - len(keep)
    run = _regression if numeric else _classification
    return run(spec, records, kept_values, dropped, train_names, test_names, progress, progress_bars)
