"""What defines one evaluation run: :class:`EvaluationSpec` (serialised into every result)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from emovox.errors import ConfigError

if TYPE_CHECKING:
    pass

__all__ = ["PROTOCOL_SETTINGS", "EvaluationSpec"]


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

    def check_protocol(self) -> None:
        """Raise :class:`ConfigError` for an unknown protocol or a ``test_corpus`` that does not go with it."""
        from emovox.evaluation.protocols import PROTOCOLS

        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.protocol!r}: expected one of {', '.join(PROTOCOLS)}")
        if self.protocol == "cross-corpus" and not self.test_corpus:
            raise ConfigError("--protocol cross-corpus needs --test-corpus NAME (the corpus to test on)")
        if self.protocol != "cross-corpus" and self.test_corpus:
            raise ConfigError(f"--test-corpus is only used with --protocol cross-corpus, not {self.protocol!r}")

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
