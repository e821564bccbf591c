"""Score one shard of inputs with a :class:`~emovox.inference.Predictor` into a result table.

This is the work of one Ray actor call, with no Ray in it (so it is tested and
benchmarked on its own). The rows are :mod:`emovox.inference.records`, the
rows of ``emovox predict --csv``. A file that cannot be read or decoded gets
a row with its error message and nulls elsewhere; the shard goes on. A file
without speech is an answer, not an error: its row says ``no_speech`` (null
scores), with ``--timeline`` too (its ``file`` row, no segments).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from emovox.batch.inputs import open_source
from emovox.batch.parts import result_schema
from emovox.inference.records import error_row, prediction_row, timeline_rows

__all__ = ["score_files", "table_to_parquet_bytes"]


def _error_text(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return text or type(error).__name__


class _Rows:
    """The rows of a result table (:mod:`emovox.inference.records`), gathered as columns."""

    def __init__(self, labels: Sequence[str], model: tuple[str, str]) -> None:
        self.labels = tuple(labels)
        self.model = model
        self.cols: dict[str, list] = {name: [] for name in result_schema(self.labels).names}

    def _add(self, row: dict) -> None:
        for name, values in self.cols.items():
            values.append(row[name])

    def prediction(self, index: int, path: str, p) -> None:
        """One clip's answer: a ``file`` row."""
        self._add(prediction_row(p, labels=self.labels, file=path, input_index=index, model=self.model))

    def timeline(self, index: int, path: str, t) -> None:
        """A recording's ``file`` row, then one ``segment`` row per segment."""
        for row in timeline_rows(t, labels=self.labels, file=path, input_index=index, model=self.model):
            self._add(row)

    def error(self, index: int, path: str, message: str) -> None:
        self._add(error_row(labels=self.labels, file=path, input_index=index, message=message, model=self.model))

    def table(self):
        import pyarrow as pa

        return pa.table(self.cols, schema=result_schema(self.labels))


def score_files(
    predictor, indices: Sequence[int], paths: Sequence[str], *, timeline: bool = False, chunk: int | None = None
):
    """Result rows of some inputs, in input order.

    Parameters
    ----------
    predictor : Predictor
        The loaded model.
    indices : sequence of int
        Input indices (positions in the job's input list), one per path.
    paths : sequence of str
        Local paths or URIs (remote files are read here, as bytes).
    timeline : bool
        Each input as a timeline (:meth:`Predictor.predict_timeline`): its
        ``file`` row (the overall answer) and one ``segment`` row per speech
        segment, flagged with its recording's quality flags; a recording
        without speech has only its ``file`` row (``no_speech``). Without it,
        one ``file`` row per input (:meth:`Predictor.iter_predict`).
    chunk : int or None
        Files read ahead and predicted together (default: the predictor's
        batch size); bounds the memory held by remote files' bytes.

    Returns
    -------
    pyarrow.Table
        :func:`~emovox.batch.parts.result_schema` of the predictor's labels.
    """
    rows = _Rows(predictor.labels, (predictor.model_name, predictor.model_version))
    step = max(1, int(chunk or predictor.batch_size))
    for lo in range(0, len(paths), step):
        group = list(zip(indices[lo : lo + step], paths[lo : lo + step]))
        sources = []
        for _index, path in group:
            try:
                sources.append(open_source(path))
            except Exception as error:  # noqa: BLE001 - any read failure becomes the row's error
                sources.append(error)
        if timeline:
            for (index, path), source in zip(group, sources):
                _timeline_rows(rows, predictor, index, path, source)
        else:
            _clip_rows(rows, predictor, group, sources)
    return rows.table()


def _clip_rows(rows: _Rows, predictor, group, sources) -> None:
    readable = [(item, s) for item, s in zip(group, sources) if not isinstance(s, BaseException)]
    results: dict[int, object] = {}
    try:
        for ((index, _), _), (_, result) in zip(readable, predictor.iter_predict([s for _, s in readable])):
            results[index] = result
    except Exception:  # noqa: BLE001 - a failure of the whole batch: retry file by file
        results = {}
        for (index, _), source in readable:
            try:
                results[index] = predictor.predict(source)
            except Exception as error:  # noqa: BLE001
                results[index] = error
    for (index, path), source in zip(group, sources):
        result = source if isinstance(source, BaseException) else results[index]
        if isinstance(result, BaseException):
            rows.error(index, path, _error_text(result))
        else:
            rows.prediction(index, path, result)


def _timeline_rows(rows: _Rows, predictor, index: int, path: str, source) -> None:
    if isinstance(source, BaseException):
        rows.error(index, path, _error_text(source))
        return
    try:
        t = predictor.predict_timeline(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Exception as error:  # noqa: BLE001 - the file's error goes into its row
        rows.error(index, path, _error_text(error))
        return
    rows.timeline(index, path, t)


def table_to_parquet_bytes(table) -> bytes:
    """A result table as Parquet file bytes (zstd)."""
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()
