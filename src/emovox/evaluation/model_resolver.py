"""The ``--model`` value -> a model the fold runner can train and test.

:func:`resolve_model` turns a name into an object with ``name``,
``feature_set`` (a :data:`emovox.features.FEATURE_SETS` name, or ``None`` when
the model reads ``FoldData.records`` itself), ``fit_predict`` and
``to_dict()``. Built-in names are the classifiers (on the ``--features``
feature set) and the legacy ``svm-egemaps`` / ``svm-mfcc``; other code (e.g.
neural model artifacts, ``emovox evaluate --model runs/my-model``) adds
support with :func:`register_model_resolver`, a function ``str -> model or
None``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emovox.errors import ConfigError

if TYPE_CHECKING:
    pass
from emovox.evaluation.folds import EvaluableModel

__all__ = ["register_model_resolver", "resolve_model"]


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
        A workbench classifier (:func:`~emovox.evaluation.workbench_models.make_classifier`:
        ``linear``/``logreg``, ``svm-linear``, ``svm-rbf``, ``mlp``, ``gbt``, ``rf``, ``knn``), a legacy
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
    from emovox.evaluation.workbench_models import make_classifier
    from emovox.models.classifiers import LEGACY_MODELS, classifier_names, is_classifier

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
