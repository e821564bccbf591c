"""Features a user computed elsewhere, read from a file: the ``file:PATH`` feature set.

Two formats:

CSV
    A header with a ``path`` column and one or more numeric columns; one row
    per clip. Relative paths resolve against the CSV's folder (as in a corpus
    manifest).
NPZ
    ``paths``: a unicode string array ``(n,)``; ``X``: a numeric array
    ``(n, d)``. Read with ``allow_pickle=False`` (an object array is refused).

Rows are matched to corpus records by resolved absolute path. Every value
must be finite. A record missing from the file, a duplicated path, a
non-numeric column or a non-finite value is a one-line
:class:`~emovox.errors.ConfigError`. The set's :meth:`~FeatureSet.config`
holds the file's absolute path and SHA-256, so anything keyed on it changes
when the file does.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from emovox.errors import ConfigError
from emovox.features.feature_set import FeatureSet

__all__ = ["PREFIX", "ImportedFeatures", "imported_feature_set"]

PREFIX = "file:"


def _from_waveform(y: np.ndarray, *, sample_rate_hz: int, **_: object) -> np.ndarray:
    raise ConfigError(
        "features read from a file are looked up by the clip's path, not computed from a waveform; "
        "use featurize_records with records or paths"
    )


@dataclass(frozen=True)
class ImportedFeatures(FeatureSet):
    """A :class:`FeatureSet` whose rows come from a file, looked up by path.

    Attributes
    ----------
    paths : tuple of str
        Resolved absolute path of every row.
    matrix : np.ndarray [shape=(n_rows, d)], float32
    columns : tuple of str
        Column names (CSV) or ``x0 .. x{d-1}`` (NPZ).
    """

    paths: tuple[str, ...] = field(default=(), repr=False, compare=False)
    # Empty by default, like ``paths`` (a default is needed after FeatureSet's defaulted fields).
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32), repr=False, compare=False)
    columns: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def lookup(self, paths: Sequence[str | os.PathLike]) -> np.ndarray:
        """Rows of these clips ``(len(paths), d)`` float32, matched by resolved absolute path.

        Raises
        ------
        ConfigError
            Some clips are not in the file (how many, and the first one).
        """
        index = {p: i for i, p in enumerate(self.paths)}
        wanted = [_resolve(p) for p in paths]
        missing = [p for p in wanted if p not in index]
        if missing:
            raise ConfigError(
                f"{len(missing)} of {len(wanted)} clips are not in {self.params['path']} "
                f"(first: {missing[0]}); add a row for each clip (matched by absolute path)"
            )
        return self.matrix[[index[p] for p in wanted]]


def _resolve(path: str | os.PathLike, base: Path | None = None) -> str:
    p = Path(os.path.expanduser(os.fspath(path)))
    if base is not None and not p.is_absolute():
        p = base / p
    return str(p.resolve())


def _read_csv(path: Path) -> tuple[list[str], np.ndarray, list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read features file {path}: {error}; give a UTF-8 CSV") from None
    if not rows or "path" not in rows[0]:
        raise ConfigError(f"features file {path} needs a header with a 'path' column and numeric feature columns")
    header = [h.strip() for h in rows[0]]
    at = header.index("path")
    columns = [h for i, h in enumerate(header) if i != at]
    if not columns:
        raise ConfigError(f"features file {path} has no feature columns besides 'path'")
    paths, values = [], np.empty((len(rows) - 1, len(columns)), dtype=np.float64)
    for r, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise ConfigError(f"features file {path}, line {r + 2}: {len(row)} fields, the header has {len(header)}")
        paths.append(row[at])
        cells = [c for i, c in enumerate(row) if i != at]
        for c, (name, cell) in enumerate(zip(columns, cells)):
            try:
                values[r, c] = float(cell)
            except ValueError:
                raise ConfigError(
                    f"features file {path}: column {name!r} is not numeric (line {r + 2}: {cell!r}); "
                    "keep only 'path' and numeric columns"
                ) from None
    return paths, values, columns


def _read_npz(path: Path) -> tuple[list[str], np.ndarray, list[str]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            if "paths" not in data or "X" not in data:
                raise ConfigError(
                    f"features file {path} needs arrays 'paths' (n,) and 'X' (n, d); it has {sorted(data.files)}"
                )
            paths, X = data["paths"], data["X"]
    except ConfigError:
        raise
    except ValueError as error:  # an object array needs pickle: refused
        raise ConfigError(
            f"features file {path} holds arrays that need pickle ({error}); store 'paths' as a "
            "unicode string array and 'X' as a numeric array"
        ) from None
    except (OSError, EOFError) as error:
        raise ConfigError(f"cannot read features file {path}: {error}; give an .npz from numpy.savez") from None
    if paths.dtype.kind != "U" or paths.ndim != 1:
        raise ConfigError(
            f"features file {path}: 'paths' must be a 1-D unicode string array, got {paths.dtype} {paths.shape}"
        )
    if X.dtype.kind not in "biuf" or X.ndim != 2 or len(X) != len(paths):
        raise ConfigError(
            f"features file {path}: 'X' must be numeric (n, d) with n = {len(paths)} rows, got {X.dtype} {X.shape}"
        )
    return [str(p) for p in paths], X.astype(np.float64), [f"x{i}" for i in range(X.shape[1])]


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, size: int) -> ImportedFeatures:
    from emovox.features.cache import file_fingerprint

    file = Path(path)
    paths, X, columns = (_read_npz if file.suffix.lower() == ".npz" else _read_csv)(file)
    if not paths:
        raise ConfigError(f"features file {file} has no rows")
    bad = np.argwhere(~np.isfinite(X))
    if len(bad):
        r, c = bad[0]
        raise ConfigError(
            f"features file {file}: non-finite value in column {columns[c]!r} for {paths[r]!r}; "
            "fill it or drop the column"
        )
    resolved = [_resolve(p, file.parent) for p in paths]
    seen: set[str] = set()
    for p in resolved:
        if p in seen:
            raise ConfigError(f"features file {file} lists {p} twice; keep one row per clip")
        seen.add(p)
    return ImportedFeatures(
        f"{PREFIX}{file}",
        _from_waveform,
        {"path": str(file), "sha256": file_fingerprint(file)},
        f"{X.shape[1]} features per clip read from {file}",
        dict,
        paths=tuple(resolved),
        matrix=X.astype(np.float32),
        columns=tuple(columns),
    )


def imported_feature_set(path: str | os.PathLike) -> ImportedFeatures:
    """The ``file:PATH`` feature set: a CSV (``path`` + numeric columns) or an NPZ (``paths``, ``X``).

    Raises
    ------
    ConfigError
        No such file, or a file that breaks the rules of the module docstring.
    """
    if not os.fspath(path):
        raise ConfigError("feature set 'file:' needs a path: write file:/data/my_features.csv")
    file = Path(_resolve(path))
    try:
        stat = file.stat()
    except OSError:
        raise ConfigError(f"features file {file} does not exist; give file:PATH of a CSV or NPZ") from None
    if not file.is_file():
        raise ConfigError(f"features file {file} is not a file; give file:PATH of a CSV or NPZ")
    return _load(str(file), stat.st_mtime_ns, stat.st_size)
