"""The input list of a batch job: folders, globs, path lists and CSV manifests, local or remote.

An *input item* on the command line is one of

- a folder: every audio file under it (recursive, sorted);
- a glob pattern (``*``, ``?``, ``[``; ``**`` crosses folders): the files it matches, sorted;
- ``@list.txt``: a text file with one path per line (blank lines and ``#`` comments skipped);
- a ``.csv`` file: a manifest whose ``path`` column lists the inputs (other columns ignored);
- anything else: one audio file.

Paths inside a list or a manifest that are relative resolve against the
folder of that list (as :mod:`emovox.corpora.manifest` does). Local paths are
made absolute, so a job resumed from another working folder names the same
files. Any of these may be a URI that :mod:`pyarrow.fs` reads
(``file:///data/x.flac``, ``s3://bucket/calls/**/*.wav``, ``gs://...``,
``hdfs://...``); remote files are read as bytes inside the workers.

Everything that does not exist is collected and reported in one
:class:`~emovox.errors.ConfigError` line, before any work starts.
"""

from __future__ import annotations

import csv
import fnmatch
import glob
import io
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from emovox.errors import ConfigError

__all__ = ["AUDIO_EXTENSIONS", "expand_inputs", "is_uri", "read_list", "read_manifest", "open_source"]

#: Extensions collected from folders (any format the audio layer decodes).
AUDIO_EXTENSIONS = frozenset(
    [
        ".wav",
        ".flac",
        ".mp3",
        ".ogg",
        ".oga",
        ".opus",
        ".m4a",
        ".aac",
        ".mp4",
        ".webm",
        ".wma",
        ".aiff",
        ".aif",
        ".au",
        ".caf",
        ".mka",
        ".amr",
    ]
)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB_CHARS = "*?["
#: Missing inputs named in the error line before "... and N more".
_SHOWN_MISSING = 3


def is_uri(path: str) -> bool:
    """Whether ``path`` is a URI (``scheme://...``) rather than a local path."""
    return bool(_URI.match(path))


def _is_glob(path: str) -> bool:
    return any(c in path for c in _GLOB_CHARS)


def _is_audio(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


# ---------------------------------------------------------------------- remote (pyarrow.fs)
def _filesystem(uri: str):
    """``(pyarrow FileSystem, path inside it)`` for a URI; ConfigError when pyarrow cannot open it."""
    try:
        from pyarrow import fs as pafs
    except ImportError:  # pragma: no cover - pyarrow comes with the ray extra
        raise ConfigError(f"{uri!r}: reading URIs needs pyarrow: pip install 'emovox[ray]'") from None
    try:
        return pafs.FileSystem.from_uri(uri)
    except (OSError, ValueError, TypeError) as error:
        raise ConfigError(f"cannot open {uri!r}: {str(error).splitlines()[0]}") from None


def _uri_root(uri: str, path: str) -> str:
    """The ``scheme://authority`` prefix that turns a filesystem path back into a URI."""
    scheme, rest = uri.split("://", 1)
    if scheme == "file":
        return "file://"
    authority = rest.split("/", 1)[0]
    return f"{scheme}://" if path.startswith(authority) else f"{scheme}://{authority}"


def _join_uri(root: str, path: str) -> str:
    if root == "file://":
        return root + path
    return root + path if root.endswith("://") else root + "/" + path.lstrip("/")


def _expand_uri(uri: str) -> list[str] | None:
    """Files a URI names (a file, a folder's audio files, or a glob's matches); None if nothing."""
    from pyarrow import fs as pafs

    if _is_glob(uri):
        head = re.split(r"[*?\[]", uri, maxsplit=1)[0]
        base_uri = head.rsplit("/", 1)[0] if "/" in head.split("://", 1)[1] else head
        filesystem, base = _filesystem(base_uri)
        pattern = base + uri[len(base_uri) :]  # the pattern in the filesystem's own path form
        regex = _glob_regex(pattern)
        try:
            infos = filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        except OSError as error:
            raise ConfigError(f"cannot list {base_uri!r}: {str(error).splitlines()[0]}") from None
        root = _uri_root(uri, base)
        found = sorted(i.path for i in infos if i.type == pafs.FileType.File and regex.fullmatch(i.path))
        return [_join_uri(root, p) for p in found] or None
    filesystem, path = _filesystem(uri)
    try:
        info = filesystem.get_file_info(path)
    except OSError as error:
        raise ConfigError(f"cannot read {uri!r}: {str(error).splitlines()[0]}") from None
    if info.type == pafs.FileType.File:
        return [uri]
    if info.type == pafs.FileType.Directory:
        infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
        root = _uri_root(uri, path)
        found = sorted(i.path for i in infos if i.type == pafs.FileType.File and _is_audio(i.path))
        if not found:
            raise ConfigError(f"folder {uri!r} holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS)[:6])}, ...)")
        return [_join_uri(root, p) for p in found]
    return None


def _glob_regex(pattern: str) -> re.Pattern:
    """A glob with ``**`` (any folders) as a regex over ``/``-separated paths."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                out.append(re.escape("["))
                i += 1
            else:
                out.append(fnmatch.translate(pattern[i : j + 1])[4:-3])  # the bracket class alone
                i = j + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def open_source(path: str):
    """What the audio layer is given for an input: the local path itself, or a remote file's bytes.

    Raises
    ------
    OSError
        The remote file cannot be read.
    """
    if not is_uri(path):
        return path
    filesystem, inner = _filesystem(path)
    with filesystem.open_input_file(inner) as handle:
        return handle.read()


# ---------------------------------------------------------------------- lists and manifests
def _read_text(path: str) -> str:
    try:
        if is_uri(path):
            data = open_source(path)
            return data.decode("utf-8-sig")
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"no such list file {path!r}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {path!r}: {error}") from None


def _resolve(entry: str, base: str) -> str:
    """``entry`` from a list at folder ``base``: URIs and absolute paths as they are."""
    if is_uri(entry):
        return entry
    if os.path.isabs(entry):
        return entry
    if is_uri(base):
        return base.rstrip("/") + "/" + entry
    return os.path.abspath(os.path.join(base, os.path.expanduser(entry)))


def _list_base(path: str) -> str:
    return path.rsplit("/", 1)[0] if is_uri(path) else os.path.dirname(os.path.abspath(path))


def read_list(path: str) -> list[str]:
    """Paths in a text file, one a line; relative ones resolve against the file's folder."""
    base = _list_base(path)
    lines = (line.strip() for line in _read_text(path).splitlines())
    return [_resolve(line, base) for line in lines if line and not line.startswith("#")]


def read_manifest(path: str) -> list[str]:
    """The ``path`` column of a CSV manifest; relative ones resolve against the CSV's folder."""
    reader = csv.DictReader(io.StringIO(_read_text(path)))
    fields = [f.strip() for f in (reader.fieldnames or [])]
    if "path" not in fields:
        raise ConfigError(
            f"manifest {path!r} has no 'path' column (columns: {', '.join(fields) or 'none'}): "
            "add a header row with a 'path' column listing the audio files"
        )
    reader.fieldnames = fields
    base = _list_base(path)
    out = []
    for line_no, row in enumerate(reader, start=2):
        entry = (row.get("path") or "").strip()
        if not entry:
            raise ConfigError(f"manifest {path!r} line {line_no}: empty 'path'")
        out.append(_resolve(entry, base))
    return out


# ---------------------------------------------------------------------- expansion
def _expand_local(item: str) -> list[str] | None:
    """Files a local item names, absolute; None when it names nothing."""
    expanded = os.path.expanduser(item)
    if os.path.isdir(expanded):
        found = sorted(str(p.absolute()) for p in Path(expanded).rglob("*") if p.is_file() and _is_audio(p.name))
        if not found:
            raise ConfigError(f"folder {item!r} holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS)[:6])}, ...)")
        return found
    if os.path.isfile(expanded):
        return [os.path.abspath(expanded)]
    if _is_glob(item):
        matches = sorted(os.path.abspath(m) for m in glob.glob(expanded, recursive=True) if os.path.isfile(m))
        return matches or None
    return None


def _exists(path: str) -> bool:
    return True if is_uri(path) else os.path.isfile(path)


def expand_inputs(items: Sequence[str], *, lists: Iterable[str] = ()) -> list[str]:
    """The ordered list of input files of a batch job.

    Parameters
    ----------
    items : sequence of str
        Command-line inputs: files, folders, globs, ``@list.txt``, ``*.csv``
        manifests, local or URIs (see the module docstring).
    lists : iterable of str
        More text lists of paths (``--list FILE``), read after ``items``.

    Returns
    -------
    list of str
        Absolute local paths and URIs, in the order given (folder contents
        and glob matches sorted). Duplicates are kept: each entry is an input
        and gets its own result row.

    Raises
    ------
    ConfigError
        Nothing was given, a pattern matches nothing, or paths do not exist
        (all of them summarised in one line).
    """
    files: list[str] = []
    missing: list[str] = []

    def add_listed(paths: list[str], source: str) -> None:
        for p in paths:
            (files if _exists(p) else missing).append(p)
        if not paths:
            raise ConfigError(f"{source!r} lists no paths")

    for item in items:
        if item.startswith("@"):
            add_listed(read_list(item[1:]), item[1:])
        elif item.lower().endswith(".csv") and not _is_glob(item):
            add_listed(read_manifest(item), item)
        else:
            found = _expand_uri(item) if is_uri(item) else _expand_local(item)
            if found is None:
                missing.append(item)
            else:
                files.extend(found)
    for path in lists:
        add_listed(read_list(path), path)
    if missing:
        shown = ", ".join(repr(m) for m in missing[:_SHOWN_MISSING])
        more = f" and {len(missing) - _SHOWN_MISSING} more" if len(missing) > _SHOWN_MISSING else ""
        raise ConfigError(
            f"{len(missing)} input{'s' if len(missing) > 1 else ''} not found: {shown}{more} "
            "(give existing files, folders, glob patterns in quotes, @list.txt or a CSV manifest)"
        )
    if not files:
        raise ConfigError("no inputs: give files, folders, glob patterns, @list.txt or a CSV manifest")
    return files
