"""Finding a corpus's audio files on disk, shared by every corpus loader.

Loaders never decode audio: they walk a folder, keep the files whose
extension is audio, and parse their names. Hidden files and folders (``.DS_Store``,
macOS ``._x.wav`` resource forks, ``.git``) and non-audio files (``README``,
``*.txt``, ``*.csv``) are ignored; an audio file whose name cannot be parsed is
an error that names the file and the expected pattern (:func:`name_error`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from emovox.errors import CorpusError

#: Extensions of the named corpora: publishers ship ``.wav``, the shared copies ``.flac``.
CORPUS_SUFFIXES: tuple[str, ...] = (".wav", ".flac")
#: Extensions the generic loaders (``csv``, ``folder``) accept.
MEDIA_SUFFIXES: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".webm")


def corpus_dir(root: str | os.PathLike, corpus: str) -> Path:
    """``root`` as an absolute folder path, or :class:`CorpusError` if it is none."""
    path = Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
    if not os.path.exists(path):  # Path.exists raises on names over 255 bytes
        raise CorpusError(
            f"{corpus} folder {str(path)!r} does not exist: pass the folder that holds "
            "the corpus, or set $EMOVOX_CORPORA to the folder of all corpora"
        )
    if not path.is_dir():
        raise CorpusError(f"{corpus} folder {str(path)!r} is not a folder: pass the corpus folder")
    return path


def find_audio(
    root: Path,
    corpus: str,
    pattern: str,
    *,
    suffixes: Iterable[str] = CORPUS_SUFFIXES,
) -> list[Path]:
    """All audio files under ``root``, recursively, sorted by path.

    Parameters
    ----------
    root : Path
        Absolute corpus folder (see :func:`corpus_dir`). Symbolic links are followed.
    corpus : str
        Corpus name, for messages.
    pattern : str
        The expected layout, quoted when the folder holds no audio.
    suffixes : iterable of str
        Lower-case extensions to keep (matched case-insensitively).

    Raises
    ------
    CorpusError
        If the folder holds no audio file with one of ``suffixes``.
    """
    keep = tuple(s.lower() for s in suffixes)
    found: list[Path] = []
    for folder, filenames in walk_once(root):
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(keep):
                found.append(Path(folder) / name)
    if not found:
        raise CorpusError(f"no {'/'.join(keep)} files under {str(root)!r} for corpus {corpus!r}: expected {pattern}")
    return sorted(found, key=str)


def walk_once(root: Path) -> Iterator[tuple[str, list[str]]]:
    """``(folder, file names)`` under ``root``, following symbolic links but entering each real folder once.

    ``os.walk(followlinks=True)`` alone loops through a link to a parent folder
    until the path is too long, and branches at every such link (a hang with
    two of them); hidden folders (``.name``) are skipped.
    """
    seen: set[tuple[int, int]] = set()
    for folder, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            info = os.stat(folder)
        except OSError:
            dirnames[:] = []
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen:
            dirnames[:] = []
            continue
        seen.add(key)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        yield folder, filenames


def name_error(path: Path, corpus: str, pattern: str, detail: str = "") -> CorpusError:
    """The error for an audio file whose name does not follow the corpus layout."""
    why = f" ({detail})" if detail else ""
    return CorpusError(f"{corpus}: cannot parse {str(path)!r}{why}: expected {pattern}")


def stem(path: Path) -> str:
    """File name without its (audio) extension."""
    return path.name.rsplit(".", 1)[0]
