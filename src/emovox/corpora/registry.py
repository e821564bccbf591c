"""Corpora by name: where they live by default and which loader reads them.

The corpora root is ``$EMOVOX_CORPORA`` when set, else ``shared/corpora``
beside the repository that holds this package's source (``<repo>/../shared/corpora``);
each corpus has a default folder under it (:func:`default_corpus_dir`). The
generic ``csv`` and ``folder`` loaders have none: they always need a path.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import emovox.corpora.crema_d as crema_d
import emovox.corpora.emodb as emodb
import emovox.corpora.emovo as emovo
import emovox.corpora.ravdess as ravdess
import emovox.corpora.savee as savee
import emovox.corpora.tess as tess
import emovox.corpora.turev as turev
from emovox.corpora.files import stem
from emovox.corpora.folder import load_folder
from emovox.corpora.manifest import load_csv
from emovox.corpora.records import Record
from emovox.errors import ConfigError, CorpusError
from emovox.registry import Registry

ENV_ROOT = "EMOVOX_CORPORA"
#: What a data card says for a corpus emovox has no licence for.
UNKNOWN_LICENCE = "see the corpus's own terms"


@dataclass(frozen=True)
class CorpusInfo:
    """What emovox knows about one corpus.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"crema-d"``.
    title : str
        Human-readable name and language.
    loader : callable
        ``loader(root, **options) -> list[Record]``.
    default_dir : str or None
        Folder name under the corpora root; ``None`` for the generic loaders.
    unique_names : bool
        Whether (speaker, file stem) identifies a recording, so that a second
        copy of a file (a nested duplicate folder) is an error.
    licence : str or None
        The terms the corpus is published under, read from its module's
        ``LICENCE``; ``None`` for the generic loaders (the user's own data).
    citation : str or None
        The publication to cite, from the module's ``CITATION``.
    """

    name: str
    title: str
    loader: Callable[..., list[Record]]
    default_dir: str | None
    unique_names: bool = True
    licence: str | None = None
    citation: str | None = None

    @property
    def licence_note(self) -> str:
        """Licence and citation for data and model cards, e.g. ``"CC BY-NC-SA 4.0 (Livingstone & Russo 2018)"``."""
        if self.licence is None:
            return UNKNOWN_LICENCE
        return f"{self.licence} ({self.citation})" if self.citation else self.licence

    def options(self) -> list[str]:
        """Keyword options the loader accepts."""
        params = inspect.signature(self.loader).parameters.values()
        return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def _corpus(
    name: str, title: str, loader: Callable[..., list[Record]], default_dir: str, module: ModuleType
) -> CorpusInfo:
    """A published corpus: its licence and citation come from its module (``LICENCE``, ``CITATION``)."""
    return CorpusInfo(name, title, loader, default_dir, licence=module.LICENCE, citation=module.CITATION)


CORPORA: dict[str, CorpusInfo] = {
    info.name: info
    for info in (
        _corpus("ravdess", "RAVDESS speech, English", ravdess.load_ravdess, "ravdess", ravdess),
        _corpus("ravdess-song", "RAVDESS song, English", ravdess.load_ravdess_song, "ravdess-song-excerpt", ravdess),
        _corpus("crema-d", "CREMA-D, English", crema_d.load_crema_d, "crema-d", crema_d),
        _corpus("tess", "TESS, English", tess.load_tess, "tess", tess),
        _corpus("savee", "SAVEE, English", savee.load_savee, "savee", savee),
        _corpus("emodb", "EMO-DB (Berlin), German", emodb.load_emodb, "emodb", emodb),
        _corpus("emovo", "EMOVO, Italian", emovo.load_emovo, "emovo", emovo),
        _corpus("turev", "TurEV-DB, Turkish", turev.load_turev, "turev-db", turev),
        CorpusInfo("csv", "CSV manifest (path,label,speaker)", load_csv, None, False),
        CorpusInfo("folder", "one folder per label", load_folder, None, False),
    )
}


_REGISTRY = Registry("corpus", lookup_error=CorpusError, modules=(), entries=lambda: CORPORA)


def corpus_names() -> list[str]:
    """Names :func:`load_corpus` accepts, in registry order."""
    return list(CORPORA)


def get_corpus_info(name: str) -> CorpusInfo:
    """The :class:`CorpusInfo` of ``name``, or :class:`CorpusError` listing the names."""
    info: CorpusInfo = _REGISTRY.get(name)
    return info


def corpus_licence(name: str) -> str:
    """The licence of corpus ``name`` (its module's ``LICENCE``), for data cards.

    A name emovox does not know (a user's ``csv``/``folder`` data, a corpus
    label from a manifest) gives :data:`UNKNOWN_LICENCE` rather than an error.
    """
    info = CORPORA.get(name)
    return UNKNOWN_LICENCE if info is None or info.licence is None else info.licence


def default_corpora_root() -> Path:
    """Folder holding the corpora: ``$EMOVOX_CORPORA``, else ``<repo>/../shared/corpora``.

    ``<repo>`` is the checkout holding this package's ``src/`` folder; for an
    installed (non-editable) package that folder usually does not exist, so set
    ``$EMOVOX_CORPORA``. The path is returned whether or not it exists.
    """
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(os.path.abspath(os.path.expanduser(env)))
    repo = Path(__file__).resolve().parents[3]
    return Path(os.path.abspath(repo.parent / "shared" / "corpora"))


def default_corpus_dir(name: str) -> Path | None:
    """Default folder of corpus ``name`` under :func:`default_corpora_root`, or ``None``
    for ``csv`` and ``folder``, which have none."""
    info = get_corpus_info(name)
    return None if info.default_dir is None else default_corpora_root() / info.default_dir


def load_corpus(name: str, root: os.PathLike | str | None = None, **options: Any) -> list[Record]:
    """Load corpus ``name`` from ``root`` (default: :func:`default_corpus_dir`).

    Parameters
    ----------
    name : str
        One of :func:`corpus_names`.
    root : path, optional
        Corpus folder (the manifest file for ``csv``).
    **options
        Loader options, e.g. ``vocal_channel="both"`` for ``ravdess``,
        ``mapping="joy=happy"`` / ``speaker_regex=...`` for ``csv`` / ``folder``.

    Returns
    -------
    list of Record
        Sorted by path.

    Raises
    ------
    CorpusError
        Unknown corpus, missing or empty folder, unparseable file name (the
        message names the file and the expected pattern), or the same recording twice.
    ConfigError
        An option the loader does not take.
    """
    info = get_corpus_info(name)
    unknown = sorted(set(options) - set(info.options()))
    if unknown:
        accepted = ", ".join(info.options()) or "none"
        raise ConfigError(f"corpus {name!r} takes no option {', '.join(map(repr, unknown))}: options are {accepted}")
    if root is None:
        root = default_corpus_dir(name)
        if root is None:
            raise CorpusError(f"corpus {name!r} has no default folder: pass its path")
    records = sorted(info.loader(root, **options), key=lambda r: r.path)
    if info.unique_names:
        _check_unique(records, name)
    return records


def _check_unique(records: list[Record], name: str) -> None:
    first: dict[tuple[str, str, str], str] = {}
    for record in records:
        key = (record.corpus, record.speaker, stem(Path(record.path)))
        if key in first:
            raise CorpusError(
                f"{name}: {record.path!r} is a second copy of {first[key]!r}: "
                "point at a folder holding one copy of the corpus"
            )
        first[key] = record.path
