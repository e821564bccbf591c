"""A user's own corpus as a CSV manifest, and records written back as one.

Columns (header row required, any order, extra columns ignored):

============  ========  ===============================================
column        required  meaning
============  ========  ===============================================
``path``      yes       audio file; relative paths resolve against the CSV's folder
``label``     yes       the corpus's own label; canonical unless mapped
``speaker``   yes       speaker id
``emotion``   no        canonical emotion (then ``label`` is kept as is)
``gender``    no        ``female``/``f``, ``male``/``m`` or empty
``language``  no        ISO 639-1 code (default: the ``language`` option)
``intensity`` no        free text
``sentence``  no        free text
``corpus``    no        corpus name (default: the ``corpus`` option)
============  ========  ===============================================

Labels become canonical emotions through the ``mapping`` option first
(``"joy=happy,other=-"``, where ``-`` drops the row), then by name or a common
alias (``anger`` -> ``angry``, see :data:`emovox.labels.EMOTION_ALIASES`).
:func:`write_manifest` writes records in this format; loading its output gives
the same records back.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from emovox.corpora.records import Record
from emovox.errors import ConfigError, CorpusError
from emovox.fileio import atomic_output
from emovox.labels import EMOTIONS, canonical_emotion, check_emotion, load_mapping

REQUIRED: tuple[str, ...] = ("path", "label", "speaker")
COLUMNS: tuple[str, ...] = (
    "path",
    "label",
    "speaker",
    "emotion",
    "gender",
    "language",
    "intensity",
    "sentence",
    "corpus",
)
_GENDERS = {"f": "female", "female": "female", "w": "female", "m": "male", "male": "male"}
#: Language of records whose manifest gives none (BCP 47 "undetermined").
UNDETERMINED = "und"


def label_mapping(mapping: str | Mapping[str, str | None] | None) -> dict[str, str | None]:
    """A corpus-label -> canonical-emotion mapping with canonical targets checked."""
    if mapping is None:
        return {}
    resolved: dict[str, str | None] = {}
    for label, target in load_mapping(mapping).items():
        if target is None:
            resolved[label] = None
            continue
        emotion = canonical_emotion(target)
        if emotion is None:
            raise ConfigError(
                f"label mapping sends {label!r} to {target!r}, which is not a canonical "
                f"emotion: expected one of {', '.join(EMOTIONS)} or '-' to drop"
            )
        resolved[label] = emotion
    return resolved


def emotion_of(label: str, mapping: Mapping[str, str | None]) -> tuple[bool, str | None]:
    """``(known, emotion)`` of a corpus label: mapping first, then canonical names/aliases.

    ``(True, None)`` means the mapping drops the label; ``(False, None)`` that it
    is neither mapped nor canonical.
    """
    if label in mapping:
        return True, mapping[label]
    emotion = canonical_emotion(label)
    return emotion is not None, emotion


def _manifest_file(root: os.PathLike | str) -> Path:
    path = Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
    if path.is_dir():
        candidates = sorted(p for p in path.glob("*.csv") if not p.name.startswith("."))
        if len(candidates) != 1:
            raise CorpusError(
                f"csv: folder {str(path)!r} holds {len(candidates)} .csv files: pass the manifest file itself"
            )
        return candidates[0]
    if not os.path.isfile(path):
        raise CorpusError(f"csv manifest {str(path)!r} does not exist: pass a .csv file")
    return path


def load_csv(
    root: os.PathLike | str,
    *,
    mapping: str | Mapping[str, str | None] | None = None,
    language: str = UNDETERMINED,
    corpus: str = "csv",
) -> list[Record]:
    """Load records from a CSV manifest (see the module docstring for the columns).

    Parameters
    ----------
    root : path
        The CSV file, or a folder holding exactly one ``.csv`` file.
    mapping : str or Mapping, optional
        Corpus label -> canonical emotion (``None``/``-`` drops); a dict, an inline
        ``"joy=happy,other=-"`` string or a JSON file.
    language : str
        Language of rows without a ``language`` value.
    corpus : str
        Corpus name of rows without a ``corpus`` value.

    Raises
    ------
    CorpusError
        On a missing column, an empty or unknown label, a missing audio file or
        a repeated path; the message names the CSV file and line.
    """
    manifest = _manifest_file(root)
    labels = label_mapping(mapping)
    base = manifest.parent
    records: list[Record] = []
    seen: dict[str, int] = {}
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            missing = [c for c in REQUIRED if c not in columns]
            if missing:
                raise CorpusError(
                    f"csv: {str(manifest)!r} lacks column(s) {', '.join(missing)}: expected a "
                    f"header with {', '.join(REQUIRED)} (optional: {', '.join(COLUMNS[3:])})"
                )
            reader.fieldnames = columns
            for row in reader:
                record = _row_record(row, reader.line_num, manifest, base, labels, language, corpus)
                if record is None:
                    continue
                if record.path in seen:
                    raise CorpusError(
                        f"csv: {str(manifest)!r} line {reader.line_num} repeats {record.path!r} "
                        f"of line {seen[record.path]}: list each file once"
                    )
                seen[record.path] = reader.line_num
                records.append(record)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CorpusError(f"csv: cannot read {str(manifest)!r}: {error}") from None
    if not records:
        raise CorpusError(f"csv: {str(manifest)!r} has no rows to load: expected one row per file")
    return sorted(records, key=lambda r: r.path)


def _row_record(
    row: dict,
    line: int,
    manifest: Path,
    base: Path,
    labels: Mapping[str, str | None],
    language: str,
    corpus: str,
) -> Record | None:
    where = f"csv: {str(manifest)!r} line {line}"

    def value(column: str) -> str:
        return (row.get(column) or "").strip()

    for column in REQUIRED:
        if not value(column):
            raise CorpusError(f"{where}: empty {column!r}: every row needs path, label and speaker")
    path = Path(os.path.expanduser(value("path")))
    path = Path(os.path.abspath(path if path.is_absolute() else base / path))
    if not os.path.isfile(path):
        raise CorpusError(f"{where}: audio file {str(path)!r} does not exist")
    label = value("label")
    emotion: str | None
    if value("emotion"):
        emotion = value("emotion")
        try:
            check_emotion(emotion)
        except ConfigError:
            raise CorpusError(
                f"{where}: emotion {emotion!r} is not canonical: expected one of {', '.join(EMOTIONS)}"
            ) from None
    else:
        known, emotion = emotion_of(label, labels)
        if not known:
            raise CorpusError(
                f"{where}: label {label!r} is not a canonical emotion ({', '.join(EMOTIONS)}): "
                f"map it, e.g. mapping '{label}=happy' or '{label}=-' to drop it"
            )
        if emotion is None:
            return None
    gender_text = value("gender").lower()
    if gender_text and gender_text not in _GENDERS:
        raise CorpusError(f"{where}: gender {value('gender')!r}: expected female, male or empty")
    return Record(
        path=str(path),
        corpus=value("corpus") or corpus,
        speaker=value("speaker"),
        label=label,
        emotion=emotion,
        language=value("language") or language,
        gender=_GENDERS.get(gender_text),
        intensity=value("intensity") or None,
        sentence=value("sentence") or None,
    )


def write_manifest(records: Iterable[Record], path: os.PathLike | str) -> Path:
    """Write records as a CSV manifest that :func:`load_csv` reads back unchanged.

    Paths are written absolute; ``None`` becomes an empty cell.
    """
    out = Path(path)
    try:
        if not out.parent.is_dir():
            raise FileNotFoundError(2, "No such file or directory")
        with atomic_output(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for record in records:
                data = record.to_dict()
                writer.writerow(["" if data[c] is None else data[c] for c in COLUMNS])
    except OSError as error:  # never a half-written manifest under the real name
        raise CorpusError(
            f"cannot write manifest {str(out)!r}: {error.strerror or error}: pass a writable path in an existing folder"
        ) from None
    return out


def read_manifest_column(root: os.PathLike | str, column: str) -> dict[str, str]:
    """One column of a CSV manifest, keyed by each row's resolved audio path.

    For targets and extra attributes beyond the :class:`Record` fields
    (``arousal``, ``valence``, a score): the keys are the absolute paths
    :func:`load_csv` gives its records (``Record.path``), so
    ``values[record.path]`` is that record's cell.

    Parameters
    ----------
    root : path
        The CSV file, or a folder holding exactly one ``.csv`` file.
    column : str
        Header name (surrounding spaces ignored).

    Returns
    -------
    dict of str -> str
        Path -> stripped cell text (``""`` for an empty cell), rows without a
        path left out.

    Raises
    ------
    ConfigError
        The manifest has no such column; the message lists its columns.
    CorpusError
        The manifest cannot be read.
    """
    manifest = _manifest_file(root)
    base = manifest.parent
    values: dict[str, str] = {}
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            if column.strip() not in columns:
                raise ConfigError(
                    f"csv: {str(manifest)!r} has no column {column!r}: its columns are {', '.join(columns) or '(none)'}"
                )
            reader.fieldnames = columns
            for row in reader:
                text = (row.get("path") or "").strip()
                if not text:
                    continue
                path = Path(os.path.expanduser(text))
                path = Path(os.path.abspath(path if path.is_absolute() else base / path))
                values[str(path)] = (row.get(column.strip()) or "").strip()
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CorpusError(f"csv: cannot read {str(manifest)!r}: {error}") from None
    return values
