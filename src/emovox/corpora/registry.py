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
from typing import Any

from emovox.corpora.crema_d import load_crema_d
from emovox.corpora.emodb import load_emodb
from emovox.corpora.emovo import load_emovo
from emovox.corpora.files import stem
from emovox.corpora.folder import load_folder
from emovox.corpora.manifest import load_csv
from emovox.corpora.ravdess import load_ravdess, load_ravdess_song
from emovox.corpora.records import Record
from emovox.corpora.savee import load_savee
from emovox.corpora.tess import load_tess
from emovox.corpora.turev import load_turev
from emovox.errors import ConfigError, CorpusError

ENV_ROOT = "EMOVOX_CORPORA"


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
    """

    name: str
    title: str
    loader: Callable[..., list[Record]]
    default_dir: str | None
    unique_names: bool = True

    def options(self) -> list[str]:
        """Keyword options the loader accepts."""
        params = inspect.signature(self.loader).parameters.values()
        return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


CORPORA: dict[str, CorpusInfo] = {
    info.name: info
    for info in (
        CorpusInfo("ravdess", "RAVDESS speech, English", load_ravdess, "ravdess"),
        CorpusInfo("ravdess-song", "RAVDESS song, English", load_ravdess_song, "ravdess-song-excerpt"),
        CorpusInfo("crema-d", "CREMA-D, English", load_crema_d, "crema-d"),
        CorpusInfo("tess", "TESS, English", load_tess, "tess"),
        CorpusInfo("savee", "SAVEE, English", load_savee, "savee"),
        CorpusInfo("emodb", "EMO-DB (Berlin), German", load_emodb, "emodb"),
        CorpusInfo("emovo", "EMOVO, Italian", load_emovo, "emovo"),
        CorpusInfo("turev", "TurEV-DB, Turkish", load_turev, "turev-db"),
        CorpusInfo("csv", "CSV manifest (path,label,speaker)", load_csv, None, False),
        CorpusInfo("folder", "one folder per label", load_folder, None, False),
    )
}


def corpus_names() -> list[str]:
    """Names :func:`load_corpus` accepts, in registry order."""
    return list(CORPORA)


def get_corpus_info(name: str) -> CorpusInfo:
    """The :class:`CorpusInfo` of ``name``, or :class:`CorpusError` listing the names."""
    try:
        return CORPORA[name]
    except KeyError:
        raise CorpusError(f"unknown corpus {name!r}: expected one of {', '.join(CORPORA)}") from None


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
