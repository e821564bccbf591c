"""Study files: a whole comparison (data sets × feature sets × models × seeds) in one TOML file.

Example (``emovox run study.toml``)::

    name = "egemaps-vs-whisper"
    features = ["egemaps", "mfcc-functionals", "whisper-base"]
    models = ["linear", "svm-rbf", "mlp", "gbt"]
    seeds = [0]                     # optional, default [0]
    tune = false                    # optional: inner speaker-CV tuning per fold

    [[data]]
    name = "emodb"                  # names the rows and the output folder
    corpora = ["emodb"]             # NAME or LAYOUT:PATH, as `emovox evaluate --corpus`
    protocol = "loso"

    [[data]]
    name = "ravdess"
    corpora = ["ravdess"]
    protocol = "speaker-kfold"
    folds = 6

    [[fusion]]
    name = "egemaps+whisper"
    data = "emodb"
    members = ["egemaps/svm-rbf", "whisper-base/linear"]   # FEATURES/MODEL[/seedN]
    method = "mean"                 # or "weighted" with weights = [...]

    [[grid]]                        # more cells, beside features × models above
    features = ["whisper-base"]
    models = ["linear"]

    [explore]
    projections = ["pca", "tsne"]   # 2-D maps of every data set × feature set

The runs are every data set × (``features`` × ``models``, then each
``[[grid]]`` table's ``features`` × ``models``) × seed, each cell once: a
study can pair some models with some feature sets only (gradient-boosted
trees on 5,120 Whisper values are slow, for instance).

Every key is checked before anything runs: an unknown key, model, feature
set, protocol or fusion member is a one-line :class:`~emovox.errors.ConfigError`.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emovox.errors import ConfigError

__all__ = ["DataSet", "FusionSpec", "Study", "StudyRun", "load_study", "parse_study"]

_TOP_KEYS = (
    "name",
    "features",
    "models",
    "grid",
    "seeds",
    "tune",
    "data",
    "fusion",
    "explore",
    "corpora_root",
    "cache_dir",
    "jobs",
)
_GRID_KEYS = ("features", "models")
_SAFE_NAME = re.compile(r"[A-Za-z0-9._+-]+")
_DATA_KEYS = ("name", "corpora", "protocol", "folds", "scheme", "test_corpora", "max_speakers", "target")
_FUSION_KEYS = ("name", "data", "members", "method", "weights")
_EXPLORE_KEYS = ("projections", "colors")


@dataclass(frozen=True)
class DataSet:
    """One ``[[data]]`` table: which corpora, under which protocol, predicting what."""

    name: str
    corpora: tuple[str, ...]
    protocol: str = "loso"
    folds: int = 6
    scheme: str = "native"
    test_corpora: tuple[str, ...] = ()
    max_speakers: int | None = None
    target: str = "emotion"


@dataclass(frozen=True)
class StudyRun:
    """One cell of the grid: a data set, a feature set, a model and a seed."""

    data: DataSet
    features: str
    model: str
    seed: int

    @property
    def member(self) -> str:
        """``FEATURES/MODEL/seedN``: how fusion tables and result rows name the run (a ``file:`` set as ``file-STEM``)."""
        return f"{feature_label(self.features)}/{self.model}/seed{self.seed}"

    @property
    def run_id(self) -> str:
        """``DATA/FEATURES/MODEL/seedN``: unique in the study, and its folder under ``runs/``."""
        return f"{self.data.name}/{self.member}"


@dataclass(frozen=True)
class FusionSpec:
    """One ``[[fusion]]`` table: runs of one data set whose class scores are averaged."""

    name: str
    data: str
    members: tuple[str, ...]
    method: str = "mean"
    weights: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Study:
    """A parsed study file; :meth:`runs` lists its grid in run order (data, cell, seed).

    ``cells`` are the (feature set, model) pairs, each once, in file order.
    """

    name: str
    data: tuple[DataSet, ...]
    cells: tuple[tuple[str, str], ...]
    seeds: tuple[int, ...] = (0,)
    tune: bool = False
    fusions: tuple[FusionSpec, ...] = ()
    projections: tuple[str, ...] = ()
    colors: tuple[str, ...] = ("emotion", "speaker", "corpus")
    corpora_root: str | None = None
    cache_dir: str | None = None
    jobs: int = 1
    source: str | None = field(default=None, compare=False)

    @property
    def features(self) -> tuple[str, ...]:
        """Every feature set of the study, in file order."""
        return tuple(dict.fromkeys(f for f, _ in self.cells))

    def runs(self) -> list[StudyRun]:
        return [StudyRun(d, f, m, s) for d in self.data for f, m in self.cells for s in self.seeds]

    def find_run(self, data: str, member: str) -> StudyRun:
        """The run a fusion member names: ``FEATURES/MODEL`` (first seed) or ``FEATURES/MODEL/seedN``."""
        head, _, last = member.rpartition("/")
        if re.fullmatch(r"seed\d+", last):
            seed = last
        else:
            head, seed = member, f"seed{self.seeds[0]}"
        features, _, model = head.rpartition("/")
        wanted = f"{feature_label(features)}/{model}/{seed}"
        for run in self.runs():
            if run.data.name == data and run.member == wanted:
                return run
        known = sorted({r.member for r in self.runs()})
        hint = difflib.get_close_matches(wanted, known, n=1)
        raise ConfigError(
            f"fusion member {member!r} is not a run of data set {data!r}"
            + (
                f"; did you mean {hint[0]!r}?"
                if hint
                else f"; runs are FEATURES/MODEL[/seedN] from features × models, e.g. {known[0]!r}"
            )
        )


def feature_label(features: str) -> str:
    """How a feature set names runs and folders: its name, or ``file-STEM`` for ``file:PATH``."""
    layout, sep, path = features.partition(":")
    return f"{layout}-{Path(path).stem}" if sep else features


def _unknown_keys(table: Mapping, allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1)
            raise ConfigError(
                f"{where}: unknown key {key!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else f"; expected one of {', '.join(allowed)}")
            )


def _strings(value: Any, key: str, where: str, *, required: bool = True) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: {key!r} must be a non-empty list of strings, got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: {key!r} lists a name twice: {value!r}")
    return tuple(value)


def _integer(value: Any, key: str, where: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: {key!r} must be an integer ≥ {minimum}, got {value!r}")
    return value


def _optional_path(value: Any, key: str, where: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{where}: {key!r} must be a path (a string), got {value!r}")
    return value


def _folder_name(value: Any, key: str, where: str) -> str:
    """A name that is also a folder under the output: letters, digits, '.', '_', '+', '-'; not '.' or '..'."""
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value) or value in (".", ".."):
        raise ConfigError(
            f"{where}: {key!r} must be a name of letters, digits, '.', '_', '+' or '-' "
            f"(it names a folder), got {value!r}"
        )
    return value


def _data_set(table: Any, index: int) -> DataSet:
    where = f"[[data]] #{index + 1}"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    _unknown_keys(table, _DATA_KEYS, where)
    name = _folder_name(table.get("name"), "name", where)
    return DataSet(
        name=name,
        corpora=_strings(table.get("corpora"), "corpora", where),
        protocol=str(table.get("protocol", "loso")),
        folds=_integer(table.get("folds", 6), "folds", where, minimum=2),
        scheme=str(table.get("scheme", "native")),
        test_corpora=_strings(table.get("test_corpora"), "test_corpora", where, required=False),
        max_speakers=(
            None
            if table.get("max_speakers") is None
            else _integer(table["max_speakers"], "max_speakers", where, minimum=1)
        ),
        target=str(table.get("target", "emotion")),
    )


def _fusion(table: Any, index: int) -> FusionSpec:
    where = f"[[fusion]] #{index + 1}"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    _unknown_keys(table, _FUSION_KEYS, where)
    for key in ("name", "data"):
        _folder_name(table.get(key), key, where)
    members = _strings(table.get("members"), "members", where)
    if len(members) < 2:
        raise ConfigError(f"{where}: fuse at least 2 members, got {list(members)}")
    weights = table.get("weights")
    if weights is not None:
        if not isinstance(weights, list) or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights
        ):
            raise ConfigError(f"{where}: 'weights' must be a list of numbers")
        weights = tuple(float(w) for w in weights)
    return FusionSpec(
        name=table["name"],
        data=table["data"],
        members=members,
        method=str(table.get("method", "mean")),
        weights=weights,
    )


def _cells(data: Mapping, where: str) -> tuple[tuple[str, str], ...]:
    """(feature set, model) pairs of the top-level grid and every ``[[grid]]`` table, each once."""
    grids = data.get("grid", [])
    if not isinstance(grids, list) or not all(isinstance(g, Mapping) for g in grids):
        raise ConfigError(f"{where}: write extra grids as [[grid]] tables (features, models)")
    tables = [(where, data)] if ("features" in data or "models" in data or not grids) else []
    tables += [(f"[[grid]] #{i + 1}", g) for i, g in enumerate(grids)]
    cells: list[tuple[str, str]] = []
    for label, table in tables:
        if table is not data:
            _unknown_keys(table, _GRID_KEYS, label)
        features = _strings(table.get("features"), "features", label)
        models = _strings(table.get("models"), "models", label)
        cells += [(f, m) for f in features for m in models]
    return tuple(dict.fromkeys(cells))


def _check_names(study: Study) -> None:
    """Fail on names the library does not know, before any corpus is read."""
    from emovox.corpora import corpus_names
    from emovox.evaluation.fusion import FUSION_METHODS
    from emovox.evaluation.projection import COLOR_KINDS, projection_names
    from emovox.evaluation.protocols import PROTOCOLS
    from emovox.evaluation.targets import BUILTIN_TARGETS
    from emovox.labels import resolve_scheme

    for data in study.data:
        for entry in (*data.corpora, *data.test_corpora):
            name = entry.partition(":")[0]
            if name not in corpus_names():
                raise ConfigError(
                    f"data set {data.name!r}: unknown corpus {entry!r}: expected one of "
                    f"{', '.join(corpus_names())}, optionally as LAYOUT:PATH"
                )
        own_columns = any(e.startswith("csv:") for e in data.corpora)
        if data.target == "speaker" or (data.target not in ("emotion", *BUILTIN_TARGETS) and not own_columns):
            raise ConfigError(
                f"data set {data.name!r}: unknown target {data.target!r}: expected one of "
                f"emotion, {', '.join(t for t in BUILTIN_TARGETS if t != 'speaker')}, or a column "
                "of a csv: corpus (speaker cannot be predicted across held-out speakers)"
            )
        if data.protocol not in PROTOCOLS:
            raise ConfigError(
                f"data set {data.name!r}: unknown protocol {data.protocol!r}: expected one of {', '.join(PROTOCOLS)}"
            )
        if (data.protocol == "cross-corpus") != bool(data.test_corpora):
            raise ConfigError(
                f"data set {data.name!r}: 'test_corpora' goes with protocol 'cross-corpus' and only with it"
            )
        resolve_scheme(data.scheme)
    names = [d.name for d in study.data]
    if len(set(names)) != len(names):
        raise ConfigError(f"two [[data]] tables share a name: {names}")
    for fusion in study.fusions:
        if fusion.data not in names:
            raise ConfigError(
                f"fusion {fusion.name!r}: unknown data set {fusion.data!r}; expected one of {', '.join(names)}"
            )
        if fusion.method not in FUSION_METHODS:
            raise ConfigError(
                f"fusion {fusion.name!r}: unknown method {fusion.method!r}: expected one of {', '.join(FUSION_METHODS)}"
            )
        for member in fusion.members:
            study.find_run(fusion.data, member)
        if fusion.method == "mean" and fusion.weights is not None:
            raise ConfigError(f"fusion {fusion.name!r}: method 'mean' takes no weights; write method = \"weighted\"")
        if fusion.method == "weighted" and (fusion.weights is None or len(fusion.weights) != len(fusion.members)):
            raise ConfigError(
                f"fusion {fusion.name!r}: method 'weighted' needs one weight per member ({len(fusion.members)})"
            )
        if next(d for d in study.data if d.name == fusion.data).target == "intensity":
            raise ConfigError(
                f"fusion {fusion.name!r}: data set {fusion.data!r} is regressed (intensity); "
                "fusion averages class probabilities of classification runs"
            )
    from emovox.evaluation.model_resolver import resolve_model

    for features, model in study.cells:
        resolve_model(model, features=features)  # an unknown model or feature set, or a bad features file
    if len({(f.data, f.name) for f in study.fusions}) != len(study.fusions):
        raise ConfigError("two [[fusion]] tables of one data set share a name")
    for colour in study.colors:
        if colour not in COLOR_KINDS:
            raise ConfigError(f"[explore]: unknown colouring {colour!r}: expected one of {', '.join(COLOR_KINDS)}")
    for method in study.projections:
        if method not in projection_names():
            raise ConfigError(
                f"[explore]: unknown projection {method!r}: expected one of {', '.join(projection_names())}"
            )


def parse_study(data: Mapping, *, source: str | None = None, check: bool = True) -> Study:
    """A :class:`Study` from the parsed TOML tables; ``check`` also validates protocol, scheme and fusion names."""
    where = source or "study"
    _unknown_keys(data, _TOP_KEYS, where)
    name = data.get("name", Path(source).stem if source else "study")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: 'name' must be a non-empty string")
    tables = data.get("data")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{where}: add at least one [[data]] table (name, corpora, protocol)")
    seeds = data.get("seeds", [0])
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise ConfigError(f"{where}: 'seeds' must be a non-empty list of integers, got {seeds!r}")
    explore = data.get("explore", {})
    if not isinstance(explore, Mapping):
        raise ConfigError(f"{where}: [explore] must be a table")
    _unknown_keys(explore, _EXPLORE_KEYS, f"{where} [explore]")
    fusions = data.get("fusion", [])
    if not isinstance(fusions, list):
        raise ConfigError(f"{where}: write fusions as [[fusion]] tables")
    tune = data.get("tune", False)
    if not isinstance(tune, bool):
        raise ConfigError(f"{where}: 'tune' must be true or false")
    study = Study(
        name=name,
        data=tuple(_data_set(t, i) for i, t in enumerate(tables)),
        cells=_cells(data, where),
        seeds=tuple(dict.fromkeys(seeds)),
        tune=tune,
        fusions=tuple(_fusion(t, i) for i, t in enumerate(fusions)),
        projections=_strings(explore.get("projections"), "projections", f"{where} [explore]", required=False),
        colors=_strings(explore.get("colors", ["emotion", "speaker", "corpus"]), "colors", f"{where} [explore]"),
        corpora_root=_optional_path(data.get("corpora_root"), "corpora_root", where),
        cache_dir=_optional_path(data.get("cache_dir"), "cache_dir", where),
        jobs=_integer(data.get("jobs", 1), "jobs", where, minimum=1),
        source=source,
    )
    if check:
        _check_names(study)
    return study


def load_study(path: str | os.PathLike) -> Study:
    """Read and check a study file (TOML)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib

    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"study file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read study file {str(path)!r}: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"study file {str(path)!r} is not valid TOML: {error}") from None
    study = _relative_to(parse_study(data, source=str(path), check=False), path.parent)
    _check_names(study)
    return study


def _relative_to(study: Study, folder: Path) -> Study:
    """Relative paths in the file (corpora root, cache, ``LAYOUT:PATH`` corpora, ``file:`` features) made
    relative to the file's folder, not to where the command runs."""
    from dataclasses import replace

    def absolute(path: str | None) -> str | None:
        if path is None or os.path.isabs(os.path.expanduser(path)):
            return path
        return str((folder / path).resolve())

    def entry(value: str) -> str:
        layout, sep, path = value.partition(":")
        return f"{layout}:{absolute(path)}" if sep and path else value

    data = tuple(
        replace(d, corpora=tuple(map(entry, d.corpora)), test_corpora=tuple(map(entry, d.test_corpora)))
        for d in study.data
    )
    cells = tuple((entry(f) if f.startswith("file:") else f, m) for f, m in study.cells)
    return replace(
        study, data=data, cells=cells, corpora_root=absolute(study.corpora_root), cache_dir=absolute(study.cache_dir)
    )
