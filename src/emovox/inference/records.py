"""The one flat result record: the rows of ``emovox predict --csv`` and of ``emovox batch`` (Parquet, CSV).

JSON answers (``predict --json``, the service, stream events) nest what a
table spreads over columns; the names are the same. A row is a
:class:`~emovox.inference.results.Prediction` plus where it comes from:

============== ===================================================================
column          meaning (JSON field it mirrors)
============== ===================================================================
file            the input as given (a path, a URI, ``<stdin>``) (``file``)
input_index     the input's position among the inputs, from 0 (folders expanded)
kind            ``file``: the answer for the whole input (a clip's prediction, a
                timeline's overall answer, or an input that failed);
                ``segment``: one segment of a timeline
segment         the segment's number within its timeline, from 0 (empty for ``file``)
start_s, end_s  the span the row describes, seconds from the input's start
label           an emotion of the model, ``unknown``, ``no_speech`` (``mixed`` for a
                timeline's ``file`` row without a leading emotion)
confidence      calibrated probability of the top class (0 for ``no_speech``)
speech_s        seconds of speech the answer rests on
reason          why there is no emotion (``results.REASONS``); empty for an emotion
flags           the input's raised quality flags joined by ``;`` (``quality.flags``)
score_<label>   one per class, calibrated probability (``scores``); empty for ``no_speech``
model           the model's name (``model``: ``default``, ``cnn``, an artifact folder's name)
model_version   the model's version (``model_version``: build day + config fingerprint)
error           why the input could not be analysed; empty otherwise (``error``)
============== ===================================================================

A timeline gives one ``file`` row followed by its ``segment`` rows; keep
``kind == "file"`` for one row per input. A failed input is one ``file`` row
holding ``file``, ``input_index``, ``kind``, the model and ``error``.

In CSV, seconds have 3 decimals and probabilities 4, empty cells stand for
nothing (Parquet: null), and :class:`CsvRows` writes the header and the rows
the same way for ``predict`` and ``batch``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from emovox.inference.results import Prediction, Timeline

__all__ = [
    "KINDS",
    "FILE",
    "SEGMENT",
    "result_columns",
    "score_column",
    "prediction_row",
    "error_row",
    "timeline_rows",
    "CsvRows",
    "csv_cell",
]

FILE = "file"
SEGMENT = "segment"
#: Values of the ``kind`` column.
KINDS = (FILE, SEGMENT)

#: Columns before the scores, and after them.
_HEAD = (
    "file",
    "input_index",
    "kind",
    "segment",
    "start_s",
    "end_s",
    "label",
    "confidence",
    "speech_s",
    "reason",
    "flags",
)
_TAIL = ("model", "model_version", "error")
#: Columns written with 3 decimals (seconds); scores and confidence get 4.
_SECONDS = frozenset({"start_s", "end_s", "speech_s"})


def score_column(label: str) -> str:
    """The column of a class's calibrated probability: ``score_<label>``."""
    return f"score_{label}"


def result_columns(labels: Sequence[str]) -> list[str]:
    """The columns of a result table for a model with classes ``labels``, in order."""
    return [*_HEAD, *(score_column(k) for k in labels), *_TAIL]


def prediction_row(
    p: Prediction,
    *,
    labels: Sequence[str],
    file: str,
    input_index: int | None,
    model: tuple[str, str],
    kind: str = FILE,
    segment: int | None = None,
    flags: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One answer as a row (typed values, ``None`` for nothing).

    Parameters
    ----------
    p : Prediction
    labels : sequence of str
        The model's classes (one ``score_<label>`` each).
    file : str
        The input as given.
    input_index : int or None
        The input's position among the inputs.
    model : (str, str)
        The model's name and version.
    kind : str
        ``"file"`` or ``"segment"``.
    segment : int or None
        The segment's number (``kind="segment"``).
    flags : sequence of str or None
        Overrides the prediction's own flags (a segment gets its recording's).
    """
    row: dict[str, Any] = {
        "file": file,
        "input_index": input_index,
        "kind": kind,
        "segment": segment,
        "start_s": round(float(p.start_s), 3),
        "end_s": round(float(p.end_s), 3),
        "label": p.label,
        "confidence": float(p.confidence),
        "speech_s": round(float(p.speech_s), 3),
        "reason": p.reason,
        "flags": ";".join(p.flags if flags is None else flags),
    }
    for k in labels:
        v = p.scores.get(k)
        row[score_column(k)] = None if v is None else float(v)
    row.update(model=model[0], model_version=model[1], error=None)
    return row


def error_row(
    *, labels: Sequence[str], file: str, input_index: int | None, message: str, model: tuple[str, str]
) -> dict[str, Any]:
    """The row of an input that could not be analysed: ``kind`` ``file``, the error, nothing else."""
    row = dict.fromkeys(result_columns(labels))
    row.update(file=file, input_index=input_index, kind=FILE, model=model[0], model_version=model[1], error=message)
    return row


def timeline_rows(
    t: Timeline, *, labels: Sequence[str], file: str, input_index: int | None, model: tuple[str, str]
) -> list[dict[str, Any]]:
    """A timeline's ``file`` row (:meth:`Timeline.overall`) and one ``segment`` row per segment.

    Every segment row carries the recording's quality flags (a segment has no
    quality measure of its own).
    """
    overall = t.overall()
    rows = [prediction_row(overall, labels=labels, file=file, input_index=input_index, model=model)]
    rows += [
        prediction_row(
            seg,
            labels=labels,
            file=file,
            input_index=input_index,
            model=model,
            kind=SEGMENT,
            segment=i,
            flags=overall.flags,
        )
        for i, seg in enumerate(t.segments)
    ]
    return rows


def csv_cell(column: str, value: Any) -> str:
    """A value as its CSV cell: ``""`` for nothing, seconds with 3 decimals, probabilities with 4."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}" if column in _SECONDS else f"{value:.4f}"
    return str(value)


class TextSink(Protocol):
    """Where text goes: a text file, or anything with its ``write(str)``."""

    def write(self, text: str, /) -> object: ...


class CsvRows:
    """Writes the header of :func:`result_columns`, then rows (dicts with those keys), as CSV.

    ``emovox predict --csv`` and ``emovox batch --csv`` both write through it,
    so their files share the header and the number format.
    """

    def __init__(self, fh: TextSink, labels: Sequence[str]) -> None:
        self.columns = result_columns(labels)
        self._writer = csv.writer(fh, lineterminator="\n")
        self._writer.writerow(self.columns)

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow([csv_cell(c, row.get(c)) for c in self.columns])

    def write_all(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.write(row)
