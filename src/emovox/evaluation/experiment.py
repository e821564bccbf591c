"""The experiment runner: corpora -> labels -> splits -> fit/predict per fold -> result.

Two levels:

:func:`run_experiment`
    The generic core. It takes the splits and a ``fit_predict(train, test)``
    callable and knows nothing about models: anything that can be trained on
    one :class:`FoldData` and predict another plugs in (the classifiers of
    :mod:`emovox.models.classifiers`, a saved model artifact, ...).
:func:`evaluate`
    What ``emovox evaluate`` runs: loads corpora, applies a label scheme,
    builds the protocol's splits, extracts features through the features
    layer's disk cache when the model wants them, and calls
    :func:`run_experiment`.

Extension point for other models
--------------------------------
:func:`resolve_model` turns the ``--model`` string into an object with
``name``, ``feature_set`` (a :data:`emovox.features.FEATURE_SETS` name, or
``None`` when the model reads ``FoldData.records`` itself), ``fit_predict``
and ``to_dict()``. Built-in names are the classifiers (on the ``--features``
feature set) and the legacy ``svm-egemaps`` / ``svm-mfcc``; other code
(e.g. neural model artifacts, ``emovox evaluate --model runs/my-model``) adds
support with :func:`register_model_resolver`, a function ``str -> model or
None``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from emovox import __version__
from emovox.errors import ConfigError
from emovox.evaluation.metrics import compute_metrics, summarize_folds
from emovox.evaluation.protocols import (
    PROTOCOLS,
    Split,
    check_speaker_disjoint,
    cross_corpus,
    leave_one_speaker_out,
    random_stratified,
    speaker_kfold,
)

if TYPE_CHECKING:
    from emovox.features import FeatureSet

__all__ = [
    "EvaluationSpec",
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


@dataclass(frozen=True)
class FoldData:
    """One side (train or test) of a split, as a model sees it.

    Attributes
    ----------
    X : np.ndarray [shape=(n, d), dtype=float] or None
        Feature vectors, or ``None`` when the model extracts its own input.
    y : np.ndarray [shape=(n,), dtype=int64] or None
        Class indices into ``classes``; ``None`` on the test side.
    records : tuple of Record or None
        The corpus records (paths, speakers, …), when known.
    speakers : np.ndarray [shape=(n,), dtype=object]
        Speaker keys (``"corpus/speaker"``), e.g. for inner speaker-disjoint CV.
    classes : tuple of str
        Class names in index order.
    """

    X: np.ndarray | None
    y: np.ndarray | None
    records: tuple | None
    speakers: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.speakers)


@dataclass(frozen=True)
class FoldOutput:
    """What ``fit_predict`` may return instead of a bare array.

    Attributes
    ----------
    predicted : np.ndarray [shape=(n_test,), dtype=int]
        Predicted class indices.
    scores : np.ndarray [shape=(n_test, n_classes)] or None
        Class scores/probabilities, stored per sample in the result.
    info : dict
        JSON-ready facts about the fold's model (e.g. tuned hyper-parameters).
        A model trained beforehand (a saved artifact) lists the test speakers
        it saw in training under ``"speakers_seen_in_training"``; the runner
        counts them as speaker overlap, so the result is then not
        speaker-independent.
    """

    predicted: np.ndarray
    scores: np.ndarray | None = None
    info: dict = field(default_factory=dict)


#: ``fit_predict(train, test)`` returns predicted class indices ``(n_test,)``,
#: class scores ``(n_test, n_classes)`` (argmax taken), or a :class:`FoldOutput`.
FitPredict = Callable[[FoldData, FoldData], Any]


class EvaluableModel(Protocol):
    """What :func:`resolve_model` returns: a named model that fits and predicts one fold."""

    # Read-only members, so that a model whose ``feature_set`` is always a ``str`` conforms.
    @property
    def name(self) -> str: ...

    @property
    def feature_set(self) -> str | None: ...

    def fit_predict(self, train: FoldData, test: FoldData) -> Any: ...

    def to_dict(self) -> dict: ...


def _fold_output(raw: Any, n_test: int, n_classes: int, fold: str) -> FoldOutput:
    if not isinstance(raw, FoldOutput):
        array = np.asarray(raw)
        raw = FoldOutput(array.argmax(axis=1), scores=array) if array.ndim == 2 else FoldOutput(array)
    predicted = np.asarray(raw.predicted)
    if predicted.shape != (n_test,):
        raise ConfigError(f"fold {fold}: the model returned {predicted.shape} predictions for {n_test} test samples")
    if raw.scores is not None and np.shape(raw.scores) != (n_test, n_classes):
        raise ConfigError(f"fold {fold}: scores of shape {np.shape(raw.scores)}, expected {(n_test, n_classes)}")
    return FoldOutput(predicted.astype(np.int64), raw.scores, dict(raw.info))


def run_experiment(
    splits: Sequence[Split],
    fit_predict: FitPredict,
    *,
    y: np.ndarray,
    classes: Sequence[str],
    speakers: Sequence[str],
    X: np.ndarray | None = None,
    records: Sequence | None = None,
    protocol: str = "custom",
    config: Mapping | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict:
    """Train and test once per split; collect per-fold, summary and pooled metrics.

    Parameters
    ----------
    splits : sequence of Split
        From :mod:`emovox.evaluation.protocols`.
    fit_predict : callable
        ``fit_predict(train: FoldData, test: FoldData)``; see :data:`FitPredict`.
        It sees the test side without labels.
    y : np.ndarray [shape=(n,), dtype=int]
        Class index of every sample.
    classes : sequence of str [shape=(n_classes,)]
    speakers : sequence of str [shape=(n,)]
        Speaker key of every sample.
    X : np.ndarray [shape=(n, d)], optional
        Features of every sample.
    records : sequence of Record [shape=(n,)], optional
        For paths and corpora in the per-sample predictions.
    protocol : str
        Recorded in the result.
    config : dict, optional
        Recorded verbatim under ``"config"``.
    progress : callable, optional
        ``progress(fold_number, n_folds, fold_name)`` before each fold.

    Returns
    -------
    dict
        ``emovox_version``, ``created_utc``, ``config``, ``protocol``,
        ``speaker_independent`` (measured: no fold shares a speaker between
        train and test), ``classes``, ``n_samples``, ``folds`` (name, sizes,
        test speakers, speaker overlap, seconds, model info, metrics),
        ``summary`` (mean ± std over folds), ``pooled`` (metrics of all test
        predictions together), ``predictions`` (one dict per tested sample;
        with ``gender`` when records are known) and ``intervals`` (95 %
        speaker-level bootstrap intervals of the pooled UAR and accuracy,
        :func:`emovox.evaluation.uncertainty.result_intervals`).
    """
    classes = tuple(str(c) for c in classes)
    y = np.asarray(y, dtype=np.int64)
    speaker_keys = np.asarray([str(s) for s in speakers], dtype=object)
    n = len(y)
    if len(speaker_keys) != n or (X is not None and len(X) != n) or (records is not None and len(records) != n):
        raise ConfigError("y, speakers, X and records must all have one entry per sample")
    if not splits:
        raise ConfigError("no splits to evaluate")
    records = tuple(records) if records is not None else None

    def side(idx: np.ndarray, with_labels: bool) -> FoldData:
        return FoldData(
            X=None if X is None else X[idx],
            y=y[idx] if with_labels else None,
            records=None if records is None else tuple(records[i] for i in idx),
            speakers=speaker_keys[idx],
            classes=classes,
        )

    folds: list[dict[str, Any]] = []
    predictions: list[dict[str, Any]] = []
    all_true: list[np.ndarray] = []
    all_pred: list[np.ndarray] = []
    for number, split in enumerate(splits, start=1):
        if len(split.test_idx) == 0 or len(split.train_idx) == 0:
            raise ConfigError(f"fold {split.name} has an empty training or test set")
        if progress is not None:
            progress(number, len(splits), split.name)
        started = time.perf_counter()
        raw = fit_predict(side(split.train_idx, True), side(split.test_idx, False))
        output = _fold_output(raw, len(split.test_idx), len(classes), split.name)
        seconds = time.perf_counter() - started
        truth = y[split.test_idx]
        metrics = compute_metrics(truth, output.predicted, classes=classes)
        folds.append(
            {
                "name": split.name,
                "n_train": int(len(split.train_idx)),
                "n_test": int(len(split.test_idx)),
                "n_train_speakers": int(len(set(speaker_keys[split.train_idx]))),
                "test_speakers": sorted(set(speaker_keys[split.test_idx])),
                "speaker_overlap": sorted(
                    set(check_speaker_disjoint(split, speaker_keys))
                    | set(map(str, output.info.get("speakers_seen_in_training", [])))
                ),
                "seconds": round(seconds, 3),
                "model": output.info,
                "metrics": metrics,
            }
        )
        for row, i in enumerate(split.test_idx):
            entry = {
                "fold": split.name,
                "speaker": speaker_keys[i],
                "true": classes[truth[row]],
                "predicted": classes[output.predicted[row]],
            }
            if records is not None:
                entry = {
                    "path": str(records[i].path),
                    "corpus": records[i].corpus,
                    **entry,
                    "gender": getattr(records[i], "gender", None),
                }
            if output.scores is not None:
                entry["scores"] = {c: float(s) for c, s in zip(classes, output.scores[row])}
            predictions.append(entry)
        all_true.append(truth)
        all_pred.append(output.predicted)

    from emovox.evaluation.uncertainty import result_intervals

    return {
        "emovox_version": __version__,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": dict(config or {}),
        "protocol": protocol,
        "speaker_independent": all(not f["speaker_overlap"] for f in folds),
        "classes": list(classes),
        "n_samples": int(n),
        "folds": folds,
        "summary": summarize_folds([f["metrics"] for f in folds]),
        "pooled": compute_metrics(np.concatenate(all_true), np.concatenate(all_pred), classes=classes),
        "predictions": predictions,
        # 95 % speaker-level bootstrap intervals of the pooled UAR and accuracy
        "intervals": result_intervals({"predictions": predictions}),
    }


# ---------------------------------------------------------------------------
# From corpora to a result: what `emovox evaluate` runs.


#: Settings of :class:`EvaluationSpec` that only some protocols use: name -> those protocols.
PROTOCOL_SETTINGS: dict[str, tuple[str, ...]] = {
    "folds": ("speaker-kfold",),
    "test_fraction": ("random",),
    "test_corpus": ("cross-corpus",),
}


@dataclass(frozen=True)
class EvaluationSpec:
    """Everything that defines one evaluation run (serialised into the result).

    Attributes
    ----------
    corpora : tuple of str
        Corpora to train and test on (cross-corpus: to train on).
    model : str
        ``"svm-egemaps"``, ``"svm-mfcc"`` or anything a registered resolver accepts.
    protocol : str
        One of :data:`emovox.evaluation.protocols.PROTOCOLS`.
    scheme : str
        Label scheme: a name, an inline mapping or a JSON file (:func:`emovox.labels.resolve_scheme`); ``"native"``
        keeps each corpus's own classes. Only classes present in the data are
        used; under cross-corpus only classes present on both sides.
    folds : int
        ``k`` of ``speaker-kfold``.
    test_corpus : tuple of str
        Test corpora of ``cross-corpus``.
    test_fraction : float
        Test share of ``random``.
    seed : int
    tune : bool
        Tune the model's hyper-parameters by inner speaker-disjoint CV on the
        training speakers of each fold (classical models).
    max_speakers : int or None
        Keep only the first N speakers (sorted) of each corpus: quick runs.
    corpora_root : str or None
        ``None``: :func:`emovox.corpora.default_corpora_root`.
    cache_dir : str or None
        Feature cache; ``None``: :func:`default_cache_dir`.
    n_jobs : int
        Feature extraction workers.
    features : str or None
        Feature set the model reads (a :data:`emovox.features.FEATURE_SETS` name
        or another name the workbench resolves); ``None``: the model's own
        (``svm-egemaps`` reads ``egemaps``).
    target : str
        What is predicted: ``"emotion"`` (the label scheme's classes), another
        record attribute (``"gender"``, ``"corpus"``, ``"intensity"``) or a
        column of a CSV corpus; numeric targets are regressed
        (:mod:`emovox.evaluation.targets`).
    """

    corpora: tuple[str, ...]
    model: str
    protocol: str = "loso"
    scheme: str = "native"
    folds: int = 6
    test_corpus: tuple[str, ...] = ()
    test_fraction: float = 0.2
    seed: int = 0
    tune: bool = False
    max_speakers: int | None = None
    corpora_root: str | None = None
    cache_dir: str | None = None
    n_jobs: int = 1
    features: str | None = None
    target: str = "emotion"

    def to_dict(self) -> dict:
        """The settings as JSON-ready values, without those the protocol does not use.

        ``folds`` is kept only for ``speaker-kfold``, ``test_fraction`` only for
        ``random`` and ``test_corpus`` only for ``cross-corpus`` (see
        :data:`PROTOCOL_SETTINGS`): a LOSO report listing ``folds: 6`` would
        describe a setting that played no part.
        """
        data = asdict(self)
        data["corpora"] = list(self.corpora)
        data["test_corpus"] = list(self.test_corpus)
        for key, protocols in PROTOCOL_SETTINGS.items():
            if self.protocol not in protocols:
                del data[key]
        return data


_RESOLVERS: list[Callable[[str], Any]] = []


def register_model_resolver(resolver: Callable[[str], Any]) -> Callable[[str], Any]:
    """Teach :func:`resolve_model` a new kind of ``--model`` value.

    ``resolver(model) -> EvaluableModel | None``; return ``None`` for values it
    does not handle. Resolvers are tried after the built-in names, in
    registration order. Usable as a decorator.
    """
    if resolver not in _RESOLVERS:
        _RESOLVERS.append(resolver)
    return resolver


def resolve_model(model: str, *, seed: int = 0, tune: bool = False, features: str | None = None) -> EvaluableModel:
    """The model object for a ``--model`` value, reading the ``--features`` feature set.

    Parameters
    ----------
    model : str
        A classifier of :mod:`emovox.models.classifiers` (``linear``/``logreg``,
        ``svm-linear``, ``svm-rbf``, ``mlp``, ``gbt``, ``rf``, ``knn``), a legacy
        name (``svm-egemaps``, ``svm-mfcc``: ``svm-rbf`` on their own feature
        set), or anything a registered resolver accepts (a saved model folder).
    seed : int
    tune : bool
        Classifiers: pick hyper-parameters per fold by inner speaker-disjoint CV.
    features : str, optional
        Feature set name (:func:`emovox.features.get_feature_set`); required
        by the classifiers, refused by models that read their own input.

    Raises
    ------
    ConfigError
        Unknown model or feature set, a classifier without ``features``, or
        ``features`` given to a model that reads its own input.
    """
    from emovox.models.classifiers import LEGACY_MODELS, classifier_names, is_classifier, make_classifier

    if is_classifier(model):
        classifier = make_classifier(model, features=features, seed=seed, tune=tune)
        from emovox.features import get_feature_set

        get_feature_set(classifier.feature_set)  # an unknown set or a bad file: fail before any corpus is read
        return classifier
    for resolver in _RESOLVERS:
        found = resolver(model)
        if found is not None:
            if features is not None:
                raise ConfigError(
                    f"model {model!r} reads its own input ({found.feature_set or 'audio'}): "
                    f"drop --features {features}, or pick a classifier ({', '.join(classifier_names())})"
                )
            return found
    known = (
        f"{', '.join(classifier_names())} (with --features NAME), {', '.join(LEGACY_MODELS)}, or a saved model folder"
    )
    if Path(model).is_dir():
        raise ConfigError(
            f"model folder {model!r} is not a model artifact emovox can load (config.json + "
            f"model.safetensors, as emovox train writes); or use one of {known}"
        )
    raise ConfigError(f"unknown model {model!r}: expected one of {known}")


def default_cache_dir() -> Path:
    """``$EMOVOX_CACHE/features`` if set, else ``~/.cache/emovox/features``."""
    base = os.environ.get("EMOVOX_CACHE")
    return Path(base) / "features" if base else Path.home() / ".cache" / "emovox" / "features"


def prepare_labels(records: Sequence, scheme_name: str) -> tuple[list, np.ndarray, tuple[str, ...]]:
    """Map records through a label scheme; drop what it drops.

    Returns
    -------
    records : list of Record
        Those the scheme keeps.
    y : np.ndarray [shape=(n,), dtype=int64]
        Class indices into ``classes``.
    classes : tuple of str
        The scheme's classes present in the data, in scheme order.
    """
    from emovox.labels import resolve_scheme

    scheme = resolve_scheme(scheme_name)
    kept = [r for r in records if scheme.keeps(r.emotion)]
    if not kept:
        raise ConfigError(f"label scheme {scheme_name!r} keeps none of the {len(records)} recordings")
    present = {scheme.class_of(r.emotion) for r in kept}
    classes = tuple(c for c in scheme.classes if c in present)
    y = np.array([classes.index(scheme.class_of(r.emotion)) for r in kept], dtype=np.int64)
    return kept, y, classes


def make_splits(
    protocol: str,
    records: Sequence,
    y: np.ndarray,
    *,
    folds: int = 6,
    seed: int = 0,
    train_corpora: Sequence[str] = (),
    test_corpora: Sequence[str] = (),
    test_fraction: float = 0.2,
) -> list[Split]:
    """The splits of a named protocol over ``records`` (see :data:`PROTOCOLS`)."""
    speakers = [r.speaker_key for r in records]
    if protocol == "loso":
        return leave_one_speaker_out(speakers)
    if protocol == "speaker-kfold":
        return speaker_kfold(speakers, k=folds, seed=seed, labels=y, strata=[r.gender or "" for r in records])
    if protocol == "cross-corpus":
        return cross_corpus([r.corpus for r in records], train=tuple(train_corpora), test=tuple(test_corpora))
    if protocol == "random":
        return random_stratified(y, test_fraction=test_fraction, seed=seed)
    raise ConfigError(f"unknown protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")


def keep_first_speakers(records: Sequence, max_speakers: int | None) -> list:
    """The records of the first ``max_speakers`` speakers (sorted ids) of one corpus; all when ``None``."""
    if max_speakers is None:
        return list(records)
    keep = set(sorted({r.speaker for r in records})[:max_speakers])
    return [r for r in records if r.speaker in keep]


def load_entries(spec: EvaluationSpec) -> tuple[list[tuple[str, list]], tuple[str, ...], tuple[str, ...]]:
    """The records of every corpus entry, and the corpus names of the training / test entries.

    An entry is a corpus name (read from its folder under the corpora root) or
    ``LAYOUT:PATH``: a corpus in a given folder (``ravdess:/data/RAVDESS``), a
    CSV manifest (``csv:/data/mine.csv``) or a folder-per-label tree
    (``folder:/data/mine``), so a user's own data is evaluated the same way.

    Returns
    -------
    loaded : list of (entry, list of Record)
        Each entry once, in ``corpora`` then ``test_corpus`` order, cut to
        ``max_speakers``.
    train, test : tuple of str
        Corpus names on the training / test side (``test`` empty unless cross-corpus).
    """
    entries = list(dict.fromkeys([*spec.corpora, *spec.test_corpus]))  # each corpus once
    names: dict[str, set[str]] = {}
    loaded = []
    for entry in entries:
        records = keep_first_speakers(load_corpus_entry(entry, spec.corpora_root), spec.max_speakers)
        names[entry] = {r.corpus for r in records}
        loaded.append((entry, records))
    train = tuple(sorted(set().union(*(names[e] for e in spec.corpora))))
    test = tuple(sorted(set().union(*(names[e] for e in spec.test_corpus)))) if spec.test_corpus else ()
    if set(train) & set(test):
        raise ConfigError(
            f"cross-corpus: corpus {sorted(set(train) & set(test))[0]!r} is on both the training "
            "and the test side; give it to --corpus or --test-corpus, not both"
        )
    return loaded, train, test


def spec_features(
    records: Sequence, feature_set: str | FeatureSet, spec: EvaluationSpec, *, progress_bars: bool = False
) -> np.ndarray:
    """Features ``(n, d)`` of ``records`` through the spec's disk cache (16 kHz input)."""
    from emovox.features import featurize_records

    cache = Path(spec.cache_dir) if spec.cache_dir else default_cache_dir()
    return featurize_records(
        records, feature_set, sample_rate_hz=16000, cache_dir=cache, n_jobs=spec.n_jobs, progress=progress_bars
    )


def load_corpus_entry(entry: str, corpora_root: str | os.PathLike[str] | None = None) -> list:
    """Records of one ``--corpus`` entry: ``NAME`` (its folder under the corpora root) or ``LAYOUT:PATH``.

    Raises :class:`ConfigError` for an unknown layout or a missing path, and
    :class:`CorpusError` (from the loader) for a folder it cannot read.
    """
    from emovox.corpora import corpus_names, default_corpora_root, get_corpus_info, load_corpus

    known = corpus_names()
    name, sep, path = entry.partition(":")
    if name not in known:
        raise ConfigError(
            f"unknown corpus {entry!r}: expected one of {', '.join(known)}, "
            "optionally as LAYOUT:PATH (e.g. csv:/data/mine.csv, folder:/data/mine)"
        )
    if sep:
        if not path:
            raise ConfigError(f"corpus {entry!r} has an empty path: write {name}:PATH")
        return load_corpus(name, os.path.expanduser(path))  # Path.expanduser raises on ~unknown-user
    folder = get_corpus_info(name).default_dir
    if folder is None:
        raise ConfigError(
            f"corpus {name!r} needs its path: write {name}:PATH "
            f"(e.g. --corpus {name}:/data/mine{'.csv' if name == 'csv' else ''})"
        )
    root = Path(corpora_root) if corpora_root is not None else default_corpora_root()
    return load_corpus(name, root / folder)


def evaluate(
    spec: EvaluationSpec, *, progress: Callable[[int, int, str], None] | None = None, progress_bars: bool | None = None
) -> dict:
    """Run one evaluation end to end; return the result dict (see :func:`run_experiment`).

    ``progress(fold_number, n_folds, fold_name)`` is called before each fold;
    ``progress_bars`` shows a tqdm bar on stderr while features are extracted
    (default: when ``progress`` is given). ``emovox evaluate`` turns the bars
    off when stderr is not a terminal, so logs hold no bar frames.
    """
    if spec.protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {spec.protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    if spec.target != "emotion":
        from emovox.evaluation.targets import evaluate_target

        return evaluate_target(spec, progress=progress, progress_bars=progress_bars)
    if spec.protocol == "cross-corpus" and not spec.test_corpus:
        raise ConfigError("--protocol cross-corpus needs --test-corpus NAME (the corpus to test on)")
    if spec.protocol != "cross-corpus" and spec.test_corpus:
        raise ConfigError(f"--test-corpus is only used with --protocol cross-corpus, not {spec.protocol!r}")
    from emovox.labels import resolve_scheme

    resolve_scheme(spec.scheme)  # fail on a bad scheme before any corpus is read
    model = resolve_model(spec.model, seed=spec.seed, tune=spec.tune, features=spec.features)
    loaded, train_names, test_names = load_entries(spec)
    records, y, classes = prepare_labels([r for _, entry in loaded for r in entry], spec.scheme)

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
