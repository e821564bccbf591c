"""What ``emovox evaluate`` runs: corpora -> labels -> splits -> fit/predict per fold -> result.

:func:`evaluate` loads the corpora, applies the label scheme, builds the
protocol's splits, extracts features through the disk cache when the model
wants them, and runs :func:`~emovox.evaluation.folds.run_experiment`. A target
other than emotion goes to :func:`emovox.evaluation.targets.evaluate_target`.

The pieces live in their own modules and are re-exported here, so
``from emovox.evaluation.experiment import ...`` keeps working:

- :mod:`emovox.evaluation.folds`: :class:`FoldData`, :class:`FoldOutput`, :func:`run_experiment`;
- :mod:`emovox.evaluation.spec`: :class:`EvaluationSpec`;
- :mod:`emovox.evaluation.model_resolver`: :func:`resolve_model`, :func:`register_model_resolver`;
- :mod:`emovox.evaluation.data`: corpus entries, labels, splits and features.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from emovox.errors import ConfigError
from emovox.evaluation.cross_corpus import shared_scheme
from emovox.evaluation.data import (
    default_cache_dir,
    keep_first_speakers,
    load_corpus_entry,
    load_entries,
    make_splits,
    prepare_labels,
    spec_features,
)
from emovox.evaluation.folds import EvaluableModel, FitPredict, FoldData, FoldOutput, run_experiment
from emovox.evaluation.model_resolver import register_model_resolver, resolve_model
from emovox.evaluation.spec import PROTOCOL_SETTINGS, EvaluationSpec
from emovox.evaluation.targets import evaluate_target
from emovox.labels import LabelScheme

__all__ = [
    "PROTOCOL_SETTINGS",
    "EvaluableModel",
    "EvaluationSpec",
    "FitPredict",
    "FoldData",
    "FoldOutput",
    "default_cache_dir",
    "evaluate",
    "keep_first_speakers",
    "load_corpus_entry",
    "load_entries",
    "make_splits",
    "prepare_labels",
    "register_model_resolver",
    "resolve_model",
    "run_experiment",
    "spec_features",
]


def evaluate(
    spec: EvaluationSpec, *, progress: Callable[[int, int, str], None] | None = None, progress_bars: bool | None = None
) -> dict:
    """Run one evaluation end to end; return the result dict (see :func:`run_experiment`).

    ``progress(fold_number, n_folds, fold_name)`` is called before each fold;
    ``progress_bars`` shows a tqdm bar on stderr while features are extracted
    (default: when ``progress`` is given). ``emovox evaluate`` turns the bars
    off when stderr is not a terminal, so logs hold no bar frames.
    """
    spec.check_protocol()
    if spec.target != "emotion":
        return evaluate_target(spec, progress=progress, progress_bars=progress_bars)
    from emovox.labels import resolve_scheme

    resolve_scheme(spec.scheme)  # fail on a bad scheme before any corpus is read
    model = resolve_model(spec.model, seed=spec.seed, tune=spec.tune, features=spec.features)
    loaded, train_names, test_names = load_entries(spec)
    everything = [r for _, entry in loaded for r in entry]
    scheme: str | LabelScheme = spec.scheme
    if spec.protocol == "leave-one-corpus-out" and spec.scheme == "native":
        # Each held-out corpus is tested on the classes every corpus shares (calm counted as neutral).
        scheme = shared_scheme([r.corpus for r in everything], [r.emotion for r in everything])
    records, y, classes = prepare_labels(everything, scheme)

    dropped: list[str] = []
    if spec.protocol == "cross-corpus":
        # A class the training corpora lack cannot be predicted; one the test
        # corpus lacks cannot be tested: keep the classes on both sides.
        train_side = {classes[c] for r, c in zip(records, y) if r.corpus not in test_names}
        test_side = {classes[c] for r, c in zip(records, y) if r.corpus in test_names}
        shared = tuple(c for c in classes if c in train_side and c in test_side)
        if len(shared) < 2:
            raise ConfigError(
                f"cross-corpus: the training and test corpora share {len(shared)} class(es) "
                f"({', '.join(shared) or 'none'}) under scheme {spec.scheme!r}; pick a scheme they share"
            )
        dropped = [c for c in classes if c not in shared]
        keep = [i for i, c in enumerate(y) if classes[c] in shared]
        records = [records[i] for i in keep]
        y = np.array([shared.index(classes[y[i]]) for i in keep], dtype=np.int64)
        classes = shared

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
    X = None
    if model.feature_set is not None:
        X = spec_features(
            records,
            model.feature_set,
            spec,
            progress_bars=progress is not None if progress_bars is None else progress_bars,
        )
    config = {**spec.to_dict(), "model_config": model.to_dict(), "dropped_classes": dropped}
    return run_experiment(
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
